"""One writer at a time: a run holds its store's lock from start to end, whatever ends it."""

import json
import os
import re
import socket
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest

import gigapatch
from gigapatch.cli import main
from gigapatch.engine import run as engine
from gigapatch.errors import StaleLockWarning, StoreLockedError
from gigapatch.store import PatchStore
from gigapatch.store.lock import LOCK_NAME

ROOT = Path(__file__).resolve().parents[2]
HOST = socket.gethostname()
SINCE = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00"


def _noise():
    return np.random.default_rng(0).integers(0, 255, (256, 256, 3), dtype=np.uint8)


def _files(path):
    base = Path(path) / "images"
    return {str(f.relative_to(base)): f.read_bytes() for f in sorted(base.rglob("*"))
            if f.is_file()}


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    """A 64-patch job of 8 shards, and a store of one uninterrupted run of it."""
    image = _noise()
    plan = gigapatch.grid(image, 32)
    reference = tmp_path_factory.mktemp("lock") / "reference.zarr"
    gigapatch.extract_to_zarr(image, plan, reference, shard_size=8, workers=1)
    return image, plan, reference


def _plant(store, **fields):
    record = {"host": HOST, "pid": 4242, "since": "2026-01-02T03:04:05+00:00",
              "token": "feedfacecafebeef", **fields}
    (Path(store) / LOCK_NAME).write_text(json.dumps(record))


def _unfinished(job, out):
    """A store of ``job`` at ``out`` whose shard 5 is not done."""
    image, plan, _ = job
    gigapatch.extract_to_zarr(image, plan, out, shard_size=8, workers=1)
    (out / "done" / "c" / "5").unlink()


def test_a_second_writer_is_refused_while_the_first_runs(job, tmp_path):
    image, plan, reference = job
    out = tmp_path / "o.zarr"
    running, go_on, stores = threading.Event(), threading.Event(), []

    def progress(done, total):
        if not running.is_set():  # the first shard is done: hold the run here
            running.set()
            assert go_on.wait(60)

    def first():
        stores.append(gigapatch.extract_to_zarr(image, plan, out, shard_size=8, workers=1,
                                                progress=progress))

    writer = threading.Thread(target=first)
    writer.start()
    try:
        assert running.wait(60)
        assert json.loads((out / LOCK_NAME).read_text())["pid"] == os.getpid()
        held = f"is being written by another run: pid {os.getpid()} on {re.escape(HOST)} since "
        for again in ({}, {"overwrite": True}, {"resume": True},
                      {"overwrite": True, "break_lock": True}):
            with pytest.raises(StoreLockedError, match=held + SINCE):
                gigapatch.extract_to_zarr(image, plan, out, shard_size=8, **again)
    finally:
        go_on.set()
        writer.join(60)
    assert len(stores) == 1 and stores[0].verify() == []
    assert _files(out) == _files(reference)  # the first run alone wrote it
    assert not (out / LOCK_NAME).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.zarr"]


def _boom(*args, **kwargs):
    raise RuntimeError("the disk is on fire")


def _interrupt(done, total):
    raise KeyboardInterrupt  # Ctrl-C in the driver


@pytest.mark.parametrize("how", ["task fails", "interrupted"])
def test_the_lock_is_released_however_a_run_ends(job, tmp_path, monkeypatch, how):
    image, plan, reference = job
    out = tmp_path / "o.zarr"
    if how == "task fails":
        monkeypatch.setattr(engine, "read_patches", _boom)
        with pytest.raises(RuntimeError, match="on fire"):
            gigapatch.extract_to_zarr(image, plan, out, shard_size=8, workers=1)
    else:
        with pytest.raises(KeyboardInterrupt):
            gigapatch.extract_to_zarr(image, plan, out, shard_size=8, workers=1,
                                      progress=_interrupt)
    assert out.exists() and not (out / LOCK_NAME).exists()
    monkeypatch.undo()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no lock to take over
        gigapatch.extract_to_zarr(image, plan, out, shard_size=8, resume=True)
    assert _files(out) == _files(reference)


def test_a_lock_left_by_a_killed_run_is_taken_over_with_a_warning(job, tmp_path):
    image, plan, reference = job
    out = tmp_path / "o.zarr"
    _unfinished(job, out)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    _plant(out, pid=int(dead.stdout))
    with pytest.warns(StaleLockWarning, match=f"from pid {int(dead.stdout)} on .*: that "
                                              "process is no longer running"):
        store = gigapatch.extract_to_zarr(image, plan, out, shard_size=8, resume=True)
    assert store.complete and _files(out) == _files(reference)
    assert not (out / LOCK_NAME).exists()


@pytest.mark.parametrize("again", [{"resume": True}, {"overwrite": True}])
def test_a_lock_of_another_host_is_broken_only_when_asked(job, tmp_path, again):
    image, plan, reference = job
    out = tmp_path / "o.zarr"
    _unfinished(job, out)
    _plant(out, host="node7.cluster")
    with pytest.raises(StoreLockedError, match=(
        "locked by a run on another host: pid 4242 on node7.cluster since 2026-01-02T03:04:05"
        r"\+00:00; if that run is gone, pass break_lock=True \(--break-lock\)"
    )):
        gigapatch.extract_to_zarr(image, plan, out, shard_size=8, **again)
    assert not PatchStore(out).done[5]  # nothing was touched
    with pytest.warns(StaleLockWarning, match="breaking the lock .* on node7.cluster"):
        gigapatch.extract_to_zarr(image, plan, out, shard_size=8, break_lock=True, **again)
    assert _files(out) == _files(reference) and not (out / LOCK_NAME).exists()


def test_a_run_that_loses_its_lock_stops_before_marking_another_shard(job, tmp_path):
    image, plan, _ = job
    out = tmp_path / "o.zarr"

    marked = []  # shards done when the lock was broken: the first batch marked done

    def broken_by_another_host(done, total):
        marked.append(marked[-1] if marked else PatchStore(out).shards_done)
        _plant(out, host="node7.cluster")

    with pytest.raises(StoreLockedError, match=(
        f"this run lost the lock of store '{re.escape(str(out))}': it is now held by pid 4242 "
        "on node7.cluster since .*; stopping so that two runs do not write it at once"
    )):
        gigapatch.extract_to_zarr(image, plan, out, shard_size=8, workers=1,
                                  progress=broken_by_another_host)
    assert PatchStore(out).shards_done == marked[0] >= 1  # none marked after the lock was broken
    assert json.loads((out / LOCK_NAME).read_text())["host"] == "node7.cluster"  # left alone


# ------------------------------------------------------------------ the command line

def _cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _extract(capsys, slide, out, *flags):
    return _cli(capsys, "extract", slide, "-o", out, "--size", "64", "--level", "1",
                "--shard-size", "16", "--quiet", *flags)


_HOLD = """
import sys
from gigapatch.store.lock import StoreLock

lock = StoreLock(sys.argv[1])
lock.acquire()
print("held", flush=True)
sys.stdin.read()
lock.release()
"""


def test_cli_refuses_a_store_another_process_writes_in_one_line(slide_path, tmp_path, capsys):
    out = tmp_path / "o.zarr"
    assert _extract(capsys, slide_path, out)[0] == 0
    with subprocess.Popen([sys.executable, "-c", _HOLD, str(out)], cwd=ROOT, text=True,
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE) as holder:
        assert holder.stdout.readline() == "held\n"
        for flags in ((), ("--overwrite",), ("--resume",), ("--overwrite", "--break-lock")):
            code, _, err = _extract(capsys, slide_path, out, *flags)
            assert code == 1 and err.count("\n") == 1 and "Traceback" not in err, flags
            assert re.fullmatch(
                f"gigapatch extract: error: (output|store) '{re.escape(str(out))}' is being "
                f"written by another run: pid {holder.pid} on {re.escape(HOST)} since {SINCE}"
                ".*\n", err), err
        holder.stdin.close()  # the holder releases its lock and ends
        assert holder.wait(30) == 0
    assert PatchStore(out).verify() == [] and not (out / LOCK_NAME).exists()


def test_cli_breaks_a_lock_of_another_host_only_with_break_lock(slide_path, tmp_path, capsys):
    out = tmp_path / "o.zarr"
    assert _extract(capsys, slide_path, out)[0] == 0
    _plant(out, host="node7.cluster")
    code, _, err = _extract(capsys, slide_path, out, "--resume")
    assert code == 1 and err == (
        f"gigapatch extract: error: store '{out}' is locked by a run on another host: pid 4242 "
        "on node7.cluster since 2026-01-02T03:04:05+00:00; if that run is gone, pass "
        "break_lock=True (--break-lock)\n")
    with warnings.catch_warnings():
        warnings.simplefilter("always", StaleLockWarning)  # shown, as a user sees it
        code, _, err = _extract(capsys, slide_path, out, "--resume", "--break-lock")
    assert code == 0 and err == (
        f"gigapatch extract: warning: breaking the lock of store '{out}' held by pid 4242 on "
        "node7.cluster since 2026-01-02T03:04:05+00:00 (break_lock)\n")
    assert not (out / LOCK_NAME).exists()
