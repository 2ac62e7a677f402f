"""Failures of a run that are not the user's input: a worker killed, a full disk. Each is an
error of gigapatch's hierarchy naming the shard, the slide or the file, and what to do."""

import pickle

import dask
import pytest

import gigapatch
from gigapatch import testing
from gigapatch.engine import run as engine
from gigapatch.errors import NoSpaceError, WorkerError
from gigapatch.store import PatchStore

MANY = r"(one of \d+ tasks: )?"
DIED = (rf"a worker process died running {MANY}shard \d+ \(slide odd.svs\).*\(killed by the "
        r"system, most often for lack of memory: run with fewer workers \(--workers\) or give "
        r"each more memory\)")


def test_a_killed_local_worker_process_names_the_shard_and_slide(slide_path, tmp_path):
    slide = testing.dying_slide(slide_path)
    plan = gigapatch.grid(slide, 256)
    with pytest.raises(WorkerError, match=DIED):
        gigapatch.extract_to_zarr(slide, plan, tmp_path / "p.zarr", scheduler="processes",
                                  workers=2, shard_size=8)
    assert PatchStore(tmp_path / "p.zarr").shards_done == 0


def test_a_killed_distributed_worker_names_the_shard_and_slide(slide_path, tmp_path):
    distributed = pytest.importorskip("distributed")
    slide = testing.dying_slide(slide_path)
    plan = gigapatch.grid(slide, 256)
    # the scheduler gives up on a task after its first dead worker (default: 3 more tries)
    with (dask.config.set({"distributed.scheduler.allowed-failures": 0}),
          distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                   dashboard_address=":0") as cluster,
          pytest.raises(WorkerError, match=DIED.replace(MANY, ""))):
        gigapatch.extract_to_zarr(slide, plan, tmp_path / "d.zarr", shard_size=8,
                                  scheduler=cluster.scheduler_address)


def _write_to_a_full_disk(images, index, data, *, sync=True):
    with open("/dev/full", "wb") as fh:  # the kernel's own ENOSPC
        fh.write(data.tobytes())
        fh.flush()


def test_a_full_disk_names_the_shard_file_and_the_bytes(slide_path, tmp_path, monkeypatch):
    monkeypatch.setattr(engine, "write_shard", _write_to_a_full_disk)
    plan = gigapatch.grid(slide_path, 128)
    with pytest.raises(NoSpaceError, match=r"no space left on the device writing '.*p.zarr/"
                                           r"images/c/\d+/0/0/0' \(up to 0.4 MiB for this "
                                           r"shard\): free space or write the store "
                                           r"elsewhere, then run the same command with "
                                           r"--resume") as info:
        gigapatch.extract_to_zarr(slide_path, plan, tmp_path / "p.zarr", shard_size=8,
                                  workers=1)
    back = pickle.loads(pickle.dumps(info.value))
    assert (back.path, back.needed, str(back)) == (info.value.path, 8 * 128 * 128 * 3,
                                                    str(info.value))
