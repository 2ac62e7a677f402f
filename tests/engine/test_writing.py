"""Shards written off the decoding threads: back-pressure, errors, buffers, and the order that
keeps every done flag behind durable bytes."""

import errno
import os
import pickle
import re
import threading
import time

import numpy as np
import pytest
import zarr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gigapatch
from gigapatch.engine import run as engine
from gigapatch.engine.writing import ShardWriter, WriterHandle, give_back, take_buffer
from gigapatch.errors import NoSpaceError, StoreError
from gigapatch.store import PatchStore, ShardLayout
from gigapatch.store.columns import read_flags

# ------------------------------------------------------------------ the writer alone


def test_a_full_writer_makes_the_next_hand_over_wait():
    writer = ShardWriter(threads=1, capacity=2)
    gate = threading.Event()
    tickets = [writer.submit(lambda k=k: gate.wait(10) and k) for k in range(2)]
    handed, third = threading.Event(), []
    thread = threading.Thread(target=lambda: (third.append(writer.submit(lambda: "third")),
                                              handed.set()))
    thread.start()
    assert not handed.wait(0.3) and writer.busy == 2  # blocked: two shards wait to be written
    gate.set()
    assert handed.wait(10)
    thread.join()
    assert [t.result(10) for t in tickets] == [0, 1] and third[0].result(10) == "third"
    writer.close()


@settings(max_examples=20, deadline=None)
@given(threads=st.integers(1, 3), capacity=st.integers(1, 4), jobs=st.integers(1, 12),
       handing=st.integers(1, 4))
def test_shards_in_the_writer_never_exceed_its_capacity(threads, capacity, jobs, handing):
    writer = ShardWriter(threads=threads, capacity=capacity)
    seen, lock = [], threading.Lock()

    def job():
        with lock:
            seen.append(writer.busy)
        time.sleep(0.002)

    def hand(k):
        for _ in range(k):
            writer.submit(job)
            with lock:
                seen.append(writer.busy)

    parts = [threading.Thread(target=hand, args=(len(range(h, jobs, handing)),))
             for h in range(handing)]
    for t in parts:
        t.start()
    for t in parts:
        t.join()
    writer.close()
    assert len(seen) == 2 * jobs and max(seen) <= capacity and writer.busy == 0


def test_a_failed_job_stops_the_writer_with_its_error():
    writer = ShardWriter(threads=1, capacity=4)
    gate = threading.Event()
    ran = []

    def broken_disk():
        gate.wait(10)
        raise OSError(errno.EIO, "Input/output error")

    first = writer.submit(broken_disk)
    queued = writer.submit(lambda: ran.append("queued"))
    gate.set()
    with pytest.raises(OSError, match="Input/output error"):
        first.result(10)
    with pytest.raises(OSError, match="Input/output error"):
        queued.result(10)  # skipped: never ran
    assert ran == [] and writer.failed is first.exception()
    buf = take_buffer((2, 3), np.uint8)
    with pytest.raises(OSError, match="Input/output error"):
        writer.submit(lambda: None, buffer=buf)  # refused; the buffer is given back
    assert take_buffer((2, 3), np.uint8) is buf
    with pytest.raises(OSError, match="Input/output error"):
        writer.buffer((2, 3), np.uint8)
    writer.close()


def test_closing_wakes_a_hand_over_that_waits():
    writer = ShardWriter(threads=1, capacity=1)
    gate = threading.Event()
    writer.submit(lambda: gate.wait(10))
    errors = []

    def hand():
        try:
            writer.submit(lambda: None)
        except StoreError as exc:
            errors.append(str(exc))

    thread = threading.Thread(target=hand)
    thread.start()
    time.sleep(0.1)
    closing = threading.Thread(target=writer.close, kwargs={"cancel": True})
    closing.start()
    thread.join(10)
    gate.set()
    closing.join(10)
    assert errors == ["the run writing this store has stopped: no shard is written any more"]


def test_buffers_are_reused_and_only_of_the_latest_shape():
    a = take_buffer((4, 8, 8, 3), np.uint8)
    give_back(a)
    assert take_buffer((4, 8, 8, 3), np.uint8) is a
    give_back(a)
    b = take_buffer((4, 8, 8, 1), np.uint8)  # another shape: the old ones are dropped
    give_back(b)
    assert take_buffer((4, 8, 8, 3), np.uint8) is not a


def test_a_handle_sent_to_another_process_waits_there():
    writer = ShardWriter(threads=1, capacity=1)
    handle = WriterHandle(writer)
    assert handle.deferred and handle.writer is writer
    sent = pickle.loads(pickle.dumps(handle))
    assert not sent.deferred and sent.writer is not writer
    assert sent.writer.submit(lambda: 7).result(10) == 7
    writer.close()


# ------------------------------------------------------------------ in a run


@pytest.fixture
def image():
    return np.random.default_rng(3).integers(0, 255, (96, 128, 3), dtype=np.uint8)


def _durable_before_done(events, store_path):
    """Every flag set comes after its shard's temporary file and its folder were synced."""
    base = str(store_path / "images" / "c")
    flagged = 0
    for k, (what, detail) in enumerate(events):
        if what != "flags":
            continue
        synced = [d for w, d in events[:k] if w == "fsync"]
        for index in detail:
            folder = f"{base}/{index}/0/0"
            assert any(re.fullmatch(rf"{re.escape(folder)}/\.0\..*\.tmp", p) for p in synced), index
            assert folder in synced, index
            flagged += 1
    return flagged


@pytest.mark.parametrize("scheduler", ["threads", "synchronous"])
def test_no_shard_is_marked_done_before_its_bytes_are_durable(image, tmp_path, monkeypatch,
                                                             scheduler):
    from gigapatch.engine import marking

    events, lock = [], threading.Lock()
    real_fsync, real_mark = os.fsync, marking.mark_done

    def fsync(fd):
        real_fsync(fd)
        with lock:
            events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))

    def mark_done(group, indices, **kwargs):
        with lock:
            events.append(("flags", list(indices)))
        real_mark(group, indices, **kwargs)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(marking, "mark_done", mark_done)
    plan = gigapatch.grid(image, 16)
    out = tmp_path / "o.zarr"
    store = gigapatch.extract_to_zarr(image, plan, out, shard_size=4, workers=2,
                                      scheduler=scheduler)
    assert _durable_before_done(events, out) == store.n_shards == 12
    assert store.verify() == []


@settings(max_examples=6, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fail_at=st.integers(1, 12), workers=st.integers(1, 3),
       how=st.sampled_from(["EIO", "ENOSPC"]))
def test_a_writer_that_fails_after_n_shards_leaves_only_whole_shards_done(
        image, tmp_path_factory, monkeypatch, fail_at, workers, how):
    out = tmp_path_factory.mktemp("fail") / "o.zarr"
    plan = gigapatch.grid(image, 16)
    real, calls, lock = engine.write_shard, [0], threading.Lock()

    def failing(images, index, data, **kwargs):
        with lock:
            calls[0] += 1
            fail = calls[0] == fail_at
        if fail:  # as the disk would, after part of the file
            layout = ShardLayout.of(images)
            path = layout.path(index)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.with_name(".0.partial.tmp").write_bytes(b"half a shard")
            raise OSError(getattr(errno, how), os.strerror(getattr(errno, how)), str(path))
        return real(images, index, data, **kwargs)

    monkeypatch.setattr(engine, "write_shard", failing)
    error = NoSpaceError if how == "ENOSPC" else OSError
    with pytest.raises(error, match="no space left" if how == "ENOSPC" else "Input/output"):
        gigapatch.extract_to_zarr(image, plan, out, shard_size=4, workers=workers)
    group = zarr.open_group(out, mode="r")
    flags, layout = read_flags(group), ShardLayout.of(group["images"])
    done = [i for i in range(len(flags)) if flags[i]]
    assert len(done) < fail_at  # the failed shard and those after it in the writer: not done
    assert [layout.problem(i, int(flags[i])) for i in done] == [None] * len(done)
    monkeypatch.undo()
    store = gigapatch.extract_to_zarr(image, plan, out, shard_size=4, resume=True)
    assert store.verify() == [] and np.array_equal(store[:], gigapatch.extract(image, plan))


def test_a_full_disk_on_a_cluster_worker_is_the_same_error(image, tmp_path, monkeypatch):
    distributed = pytest.importorskip("distributed")

    def full(images, index, data, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(engine, "write_shard", full)
    plan = gigapatch.grid(image, 16)
    with (distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                   dashboard_address=":0") as cluster,
          pytest.raises(NoSpaceError, match=r"no space left on the device writing '.*o.zarr/"
                                            r"images/c/\d+/0/0/0' \(up to 0.0 MiB for this "
                                            r"shard\)")):
        gigapatch.extract_to_zarr(image, plan, tmp_path / "o.zarr", shard_size=4,
                                  scheduler=cluster.scheduler_address)
    assert PatchStore(tmp_path / "o.zarr").shards_done == 0


def test_a_cluster_worker_writes_while_it_decodes_the_next_shard(image, tmp_path):
    distributed = pytest.importorskip("distributed")
    plan = gigapatch.grid(image, 16)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=":0") as cluster:
        store = gigapatch.extract_to_zarr(image, plan, tmp_path / "o.zarr", shard_size=4,
                                          scheduler=cluster.scheduler_address)
    assert store.verify() == [] and np.array_equal(store[:], gigapatch.extract(image, plan))
