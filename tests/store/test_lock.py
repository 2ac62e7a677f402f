"""The writer lock of a store: taken once, refused to a second writer, stale ones taken over."""

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gigapatch.errors import StaleLockWarning, StoreExistsError, StoreLockedError
from gigapatch.store import PatchStore, StoreSpec, create_store, is_store
from gigapatch.store.lock import LOCK_NAME, LockHolder, StoreLock, abandoned, lock_holder

# printable text without lone surrogates (some hypothesis set-ups warn about those, and
# pytest turns warnings into errors)
TEXT = st.characters(exclude_categories=("Cs",))

HOST = socket.gethostname()


def _spec(n=10):
    return StoreSpec(
        patch_shape=(4, 4, 3), dtype=np.uint8,
        coords=np.stack([np.arange(n), np.zeros(n, np.int64)], axis=1),
        slide=np.zeros(n, np.int32), label=np.zeros(n, np.int32),
        sources=[{"path": None, "name": "a", "shape": [64, 64], "downsample": [1, 1]}],
        plan={"kind": "grid", "size": [4, 4]}, shard_size=4, codec="none",
    )


def _dead_pid():
    """The pid of a process that has ended (and was reaped)."""
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    return int(proc.stdout)


def _plant(store, **fields):
    """Write a lock file into ``store`` as another run would have."""
    record = {"host": HOST, "pid": 4242, "since": "2026-01-02T03:04:05+00:00",
              "token": "feedfacecafebeef", **fields}
    (store / LOCK_NAME).write_text(json.dumps(record))
    return record


def _siblings(path):
    return sorted(p.name for p in path.parent.iterdir())


# ------------------------------------------------------------------ the lock itself

def test_a_lock_is_taken_once_and_names_its_holder(tmp_path):
    first = StoreLock(tmp_path)
    first.acquire()
    record = json.loads((tmp_path / LOCK_NAME).read_text())
    assert (record["host"], record["pid"], record["token"]) == (HOST, os.getpid(), first.token)
    assert record["since"].endswith("+00:00")
    with pytest.raises(StoreLockedError, match=re.escape(
        f"store '{tmp_path}' is being written by another run: pid {os.getpid()} on {HOST} "
        f"since {record['since']}; wait for it to finish or stop it (if pid {os.getpid()} is "
        f"not a gigapatch run, delete '{tmp_path / LOCK_NAME}')"
    )):
        StoreLock(tmp_path, break_lock=True).acquire()  # a live holder here is never broken
    first.check()
    first.release()
    assert not (tmp_path / LOCK_NAME).exists()
    with StoreLock(tmp_path) as again:
        again.acquire()
        assert again.held
    assert not (tmp_path / LOCK_NAME).exists()


def test_release_and_check_never_touch_another_runs_lock(tmp_path):
    lock = StoreLock(tmp_path)
    lock.acquire()
    other = _plant(tmp_path, host="elsewhere.invalid")  # broken by a run on another host
    with pytest.raises(StoreLockedError, match=(
        rf"this run lost the lock of store '{tmp_path}': it is now held by pid 4242 on "
        r"elsewhere.invalid since 2026-01-02T03:04:05\+00:00; stopping"
    )):
        lock.check()
    lock.release()
    assert json.loads((tmp_path / LOCK_NAME).read_text()) == other
    (tmp_path / LOCK_NAME).unlink()
    lock = StoreLock(tmp_path)
    lock.acquire()
    (tmp_path / LOCK_NAME).unlink()
    with pytest.raises(StoreLockedError, match="its lock file was removed"):
        lock.check()


def test_a_lock_left_by_a_dead_process_here_is_taken_over_with_a_warning(tmp_path):
    pid = _dead_pid()
    _plant(tmp_path, pid=pid)
    lock = StoreLock(tmp_path)
    with pytest.warns(StaleLockWarning, match=(
        rf"taking over the lock of store '{tmp_path}' from pid {pid} on {HOST} since "
        r"2026-01-02T03:04:05\+00:00: that process is no longer running"
    )):
        lock.acquire()
    assert json.loads((tmp_path / LOCK_NAME).read_text())["token"] == lock.token
    lock.release()


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs /proc")
def test_a_reused_pid_or_a_reboot_does_not_pass_for_the_holder(tmp_path):
    me = LockHolder.me()
    assert me.running() and me.started is not None
    assert not LockHolder(HOST, me.pid, me.since, "t", started=me.started + 1).running()
    assert not LockHolder(HOST, me.pid, me.since, "t", boot="another boot").running()
    assert LockHolder("elsewhere.invalid", 1, me.since, "t").running()  # cannot be told


def test_a_lock_held_on_another_host_needs_break_lock(tmp_path):
    _plant(tmp_path, host="node7.cluster")
    with pytest.raises(StoreLockedError, match=(
        rf"store '{tmp_path}' is locked by a run on another host: pid 4242 on node7.cluster "
        r"since 2026-01-02T03:04:05\+00:00; if that run is gone, pass break_lock=True "
        r"\(--break-lock\)$"
    )):
        StoreLock(tmp_path).acquire()
    lock = StoreLock(tmp_path, break_lock=True)
    with pytest.warns(StaleLockWarning, match="breaking the lock of store .* held by pid 4242 "
                                              "on node7.cluster"):
        lock.acquire()
    assert lock.held and json.loads((tmp_path / LOCK_NAME).read_text())["host"] == HOST


def test_an_unreadable_lock_needs_break_lock(tmp_path):
    (tmp_path / LOCK_NAME).write_bytes(b"\x00 not json")
    with pytest.raises(StoreLockedError, match="has a lock file that cannot be read"):
        StoreLock(tmp_path).acquire()
    assert lock_holder(tmp_path) is None
    with pytest.warns(StaleLockWarning, match="breaking the unreadable lock"):
        StoreLock(tmp_path, break_lock=True).acquire()


def test_of_many_runs_taking_over_one_stale_lock_exactly_one_gets_it(tmp_path, monkeypatch):
    _plant(tmp_path, pid=_dead_pid())
    real_unlink = Path.unlink

    def slow_unlink(self, *args, **kwargs):  # widens the window between reading and removing
        if self.name == LOCK_NAME:
            time.sleep(0.02)
        return real_unlink(self, *args, **kwargs)

    monkeypatch.setattr(Path, "unlink", slow_unlink)
    locks = [StoreLock(tmp_path) for _ in range(8)]
    outcome = {}
    start = threading.Barrier(len(locks))

    def take(k):
        start.wait()
        try:
            locks[k].acquire()
            outcome[k] = "held"
        except StoreLockedError as exc:
            outcome[k] = str(exc)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StaleLockWarning)
        threads = [threading.Thread(target=take, args=(k,)) for k in range(len(locks))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    winners = [k for k, v in outcome.items() if v == "held"]
    assert len(winners) == 1 and len(outcome) == len(locks)
    assert json.loads((tmp_path / LOCK_NAME).read_text())["token"] == locks[winners[0]].token
    assert sorted(p.name for p in tmp_path.iterdir()) == [LOCK_NAME]  # nothing moved aside


@given(host=st.text(TEXT, min_size=1), pid=st.integers(1, 2**31), since=st.text(TEXT),
       token=st.text(TEXT), started=st.none() | st.integers(0, 2**62),
       boot=st.none() | st.text(TEXT))
def test_a_holder_record_reads_back_as_written(host, pid, since, token, started, boot):
    holder = LockHolder(host, pid, since, token, started, boot)
    assert LockHolder.parse(holder.encode()) == holder


def test_a_partial_record_is_no_holder():
    assert LockHolder.parse(b"") is None
    assert LockHolder.parse(b'{"host": "a", "pid": 1') is None
    assert LockHolder.parse(b'{"host": "a", "pid": "x", "since": "", "token": ""}') is None


# ------------------------------------------------------------------ stores and the lock

def test_a_created_store_is_unlocked_and_readers_ignore_a_lock(tmp_path):
    path = tmp_path / "s.zarr"
    create_store(path, _spec())
    assert not (path / LOCK_NAME).exists()
    with StoreLock(path) as lock, warnings.catch_warnings():
        lock.acquire()
        warnings.simplefilter("error")  # not even zarr's note on a file it does not know
        store = PatchStore(path)
        assert is_store(path) and len(store) == 10 and store.shards_done == 0
        assert store.verify()[0].startswith("3 of 3 shards not done")
        assert store.coords.shape == (10, 2) and store.tissue is None


def test_a_store_another_run_writes_is_neither_replaced_nor_reused(tmp_path):
    path = tmp_path / "s.zarr"
    create_store(path, _spec())
    before = sorted(p.relative_to(path) for p in path.rglob("*"))
    with StoreLock(path) as lock:
        lock.acquire()
        held = rf"'{path}' is being written by another run: pid {os.getpid()} on {HOST}"
        with pytest.raises(StoreLockedError, match=held):
            create_store(path, _spec(12), overwrite=True)
        with pytest.raises(StoreLockedError, match=held):
            create_store(path, _spec(12))
    assert sorted(p.relative_to(path) for p in path.rglob("*")) == before  # nothing deleted
    assert len(PatchStore(path)) == 10 and _siblings(path) == ["s.zarr"]
    create_store(path, _spec(12), overwrite=True)  # unlocked now
    assert len(PatchStore(path)) == 12 and _siblings(path) == ["s.zarr"]


def test_a_store_made_meanwhile_by_another_run_is_not_renamed_over(tmp_path, monkeypatch):
    """Run A checks the output (absent) and builds; run B creates the store meanwhile; A's
    rename into place fails, A is refused and leaves nothing behind."""
    path = tmp_path / "s.zarr"
    real_rename, paused, b_done = os.rename, threading.Event(), threading.Event()

    def rename(src, dst):
        if str(dst) == str(path) and not paused.is_set():  # run A, about to put its store
            paused.set()
            assert b_done.wait(30)
        return real_rename(src, dst)

    monkeypatch.setattr(os, "rename", rename)
    failure = []

    def run_a():
        try:
            create_store(path, _spec(10))
        except Exception as exc:
            failure.append(exc)

    a = threading.Thread(target=run_a)
    a.start()
    assert paused.wait(30)
    with StoreLock(path) as lock_b:  # run B makes the store and still writes it
        create_store(path, _spec(12), lock=lock_b)
        b_done.set()
        a.join(30)
    assert len(failure) == 1 and isinstance(failure[0], StoreLockedError)
    assert str(failure[0]) == (
        f"output {str(path)!r} was created by another run meanwhile: {lock_b.holder.describe()}")
    assert len(PatchStore(path)) == 12 and _siblings(path) == ["s.zarr"]


def test_concurrent_fresh_creations_make_one_store_and_refuse_the_others(tmp_path):
    path = tmp_path / "s.zarr"
    start = threading.Barrier(4)
    outcome = {}

    def create(k):
        start.wait()
        try:
            create_store(path, _spec(10 + k))
            outcome[k] = None
        except (StoreExistsError, StoreLockedError) as exc:
            outcome[k] = str(exc)

    threads = [threading.Thread(target=create, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    made = [k for k, v in outcome.items() if v is None]
    assert len(made) == 1 and len(outcome) == 4, outcome
    assert len(PatchStore(path)) == 10 + made[0]
    for message in outcome.values():
        assert message is None or message.startswith(f"output {str(path)!r}"), message
    assert _siblings(path) == ["s.zarr"] and not (path / LOCK_NAME).exists()


def test_only_folders_of_runs_that_are_gone_are_cleaned_up(tmp_path):
    path = tmp_path / "s.zarr"
    folders = {name: tmp_path / f".s.zarr.{name}" for name in (
        "creating-dead", "replaced-dead", "creating-live", "creating-nolock-old",
        "creating-nolock-new")}
    for folder in folders.values():
        folder.mkdir()
    for name in ("creating-dead", "replaced-dead"):
        _plant(folders[name], pid=_dead_pid())
    StoreLock(folders["creating-live"]).acquire()  # a run of this process, still building
    old = time.time() - 3600
    os.utime(folders["creating-nolock-old"], (old, old))
    assert [abandoned(folders[n]) for n in sorted(folders)] == [
        True, False, False, True, True]
    create_store(path, _spec())
    assert _siblings(path) == [".s.zarr.creating-live", ".s.zarr.creating-nolock-new", "s.zarr"]


def test_a_creation_that_fails_leaves_no_folder_and_no_lock(tmp_path, monkeypatch):
    import zarr

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(zarr.Group, "create_array", boom)
    with StoreLock(tmp_path / "s.zarr") as lock, pytest.raises(KeyboardInterrupt):
        create_store(tmp_path / "s.zarr", _spec(), lock=lock)
    assert list(tmp_path.iterdir()) == []
