"""Interrupted runs, resumed; distributed runs; both give the bytes of a plain run."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import zarr

import gigapatch
from gigapatch.errors import InvalidArgumentError, StaleLockWarning, StoreError
from gigapatch.store import PatchStore, ShardLayout
from gigapatch.store.columns import read_flags
from gigapatch.store.lock import LOCK_NAME

ROOT = Path(__file__).resolve().parents[2]


def _shard_files(path):
    base = Path(path) / "images"
    return {str(f.relative_to(base)): f.read_bytes() for f in sorted(base.rglob("*"))
            if f.is_file() and f.name != "zarr.json"}


def _same_store(a, b):
    sa, sb = PatchStore(a), PatchStore(b)
    assert sa.complete and sb.complete
    for name in ("coords", "slide", "label"):
        assert np.array_equal(getattr(sa, name), getattr(sb, name))
    assert _shard_files(a) == _shard_files(b)  # byte for byte


@pytest.fixture(scope="module")
def job(tmp_path_factory, square_path):
    """A grid job of 151 shards."""
    d = tmp_path_factory.mktemp("resume")
    plan = gigapatch.grid(square_path, 128, 40)
    reference = d / "reference.zarr"
    gigapatch.extract_to_zarr(square_path, plan, reference, shard_size=16, workers=2)
    return square_path, plan, reference, d


@pytest.fixture(scope="module")
def small_job(tmp_path_factory, square_path):
    """A grid job of 16 shards of 4 patches (64² at level 1), for the kill tests."""
    d = tmp_path_factory.mktemp("kill")
    plan = gigapatch.grid(square_path, 64, level=1)
    reference = d / "reference.zarr"
    gigapatch.extract_to_zarr(square_path, plan, reference, shard_size=4, workers=1)
    return square_path, plan, reference, d


# The child SIGKILLs itself at the nth call of one function, so where the run dies is fixed:
# - "read": shard n is being read; its file was never started
# - "fsync": shard n is written whole to its temporary file, not yet renamed into place (the
#   nth fsync of a shard's temporary file)
# - "mark": shard n's file is in place, its done flag not yet set (the driver is about to set
#   the flags of a batch of shards that holds it)
# One worker decodes one shard at a time and two writer threads write them, while the driver
# marks shards done as their files become durable, several at a time: how many are done when
# the process dies depends on timing, but never a shard whose file is not in place whole.
_CHILD = """
import os
import signal
import sys
import threading

import gigapatch
from gigapatch.engine import marking
from gigapatch.engine import run as engine

slide, out, where, nth = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
calls, lock = 0, threading.Lock()  # writer threads call fsync at once

def killing(real, counts=lambda *args: 1):
    def call(*args, **kwargs):
        global calls
        add = counts(*args)
        with lock:
            calls += add
            if calls >= nth:
                os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, **kwargs)
    return call

if where == "read":
    engine.read_patches = killing(engine.read_patches)
elif where == "fsync":  # of shard files only (not of the lock, flags or folders)
    os.fsync = killing(os.fsync, lambda fd: os.readlink(f"/proc/self/fd/{fd}").endswith(".tmp"))
else:  # counts the shards to mark, whatever the batches
    marking.mark_done = killing(marking.mark_done, lambda group, indices: len(indices))
plan = gigapatch.grid(slide, 64, level=1)
gigapatch.extract_to_zarr(slide, plan, out, shard_size=4, workers=1)
"""
KILL_POINTS = [("read", 1), ("fsync", 4), ("mark", 11)]


def _done_shards_are_whole(out):
    """Every shard marked done has its whole file, with the digest its flag holds."""
    group = zarr.open_group(out, mode="r")
    flags, layout = read_flags(group), ShardLayout.of(group["images"])
    done = [i for i in range(len(flags)) if flags[i]]
    assert [layout.problem(i, int(flags[i])) for i in done] == [None] * len(done)
    return done


def test_sigkill_at_fixed_points_then_resume_gives_the_same_bytes(small_job):
    slide, plan, reference, d = small_job
    outs = {point: d / f"killed-{point[0]}-{point[1]}.zarr" for point in KILL_POINTS}
    children = {  # run side by side: each dies at its own fixed point
        point: subprocess.Popen([sys.executable, "-c", _CHILD, str(slide), str(out), point[0],
                                 str(point[1])], cwd=ROOT)
        for point, out in outs.items()
    }
    for (where, nth), proc in children.items():
        assert proc.wait(timeout=120) == -signal.SIGKILL, (where, nth)
    for (where, nth), out in outs.items():
        killed = PatchStore(out)
        done = _done_shards_are_whole(out)
        assert killed.n_shards == 16 and killed.shards_done <= nth - 1, (where, nth)
        files = [f.name for f in (out / "images").rglob("*") if f.name != "zarr.json"
                 and f.is_file()]
        temporary = [name for name in files if name.endswith(".tmp")]
        in_place = len(files) - len(temporary)
        if where == "read":  # nothing was handed to the writer yet
            assert (temporary, in_place, done) == ([], 0, []), (where, nth)
        elif where == "fsync":  # the nth shard file synced is half-written; the other writer
            # thread may hold another (synced, not yet renamed; or being written)
            assert 1 <= len(temporary) <= 2 and nth - 2 <= in_place <= nth - 1, (where, nth)
            assert in_place + len(temporary) >= nth, (where, nth)
        else:  # the nth shard's file is in place; the writers may be writing the next ones
            assert len(temporary) <= 2 and in_place >= nth, (where, nth)
        assert killed.verify()[0].endswith("the extraction did not finish")
        assert (out / LOCK_NAME).exists()  # the killed run's lock stays behind
        seen: list[int] = []
        with pytest.warns(StaleLockWarning, match="that process is no longer running"):
            gigapatch.extract_to_zarr(slide, plan, out, shard_size=4, resume=True,
                                      progress=lambda done, total, seen=seen: seen.append(done))
        assert not (out / LOCK_NAME).exists()
        kept = len(done) * 4  # the finished shards are kept, the others written once each
        assert seen == ([kept] if kept else []) + list(range(kept + 4, 65, 4)), (where, nth)
        _same_store(out, reference)


def test_resume_of_a_complete_store_does_nothing_and_changes_nothing(job):
    slide, plan, reference, _ = job
    before = _shard_files(reference)
    calls = []
    gigapatch.extract_to_zarr(slide, plan, reference, shard_size=16, resume=True,
                              progress=lambda *a: calls.append(a))
    assert calls == [(len(plan), len(plan))]
    assert _shard_files(reference) == before


def test_resume_without_a_store_is_a_fresh_run(job, tmp_path):
    slide, plan, reference, _ = job
    gigapatch.extract_to_zarr(slide, plan, tmp_path / "new.zarr", shard_size=16, resume=True)
    _same_store(tmp_path / "new.zarr", reference)


def test_resume_refuses_a_different_request(job, tmp_path, slide_path):
    slide, plan, reference, _ = job
    with pytest.raises(StoreError, match=r"cannot resume .*differs in plan \(count, stride\)"):
        gigapatch.extract_to_zarr(slide, gigapatch.grid(slide, 128, 64), reference,
                                  shard_size=16, resume=True)
    with pytest.raises(StoreError, match=r"differs in shard size \(16 vs 8\)"):
        gigapatch.extract_to_zarr(slide, plan, reference, shard_size=8, resume=True)
    with pytest.raises(StoreError, match=r"source 0 odd.svs \(path, size, mtime, shape\)"):
        gigapatch.extract_to_zarr(slide_path, gigapatch.grid(slide_path, 128, 40), reference,
                                  shard_size=16, resume=True)
    copy = tmp_path / "copy.svs"
    copy.write_bytes(Path(slide).read_bytes())
    gigapatch.extract_to_zarr(copy, plan, tmp_path / "c.zarr", shard_size=16)
    os.utime(copy, (1, 1))  # the slide changed on disk since
    with pytest.raises(StoreError, match=r"\(mtime\)"):
        gigapatch.extract_to_zarr(copy, plan, tmp_path / "c.zarr", shard_size=16, resume=True)
    with pytest.raises(InvalidArgumentError, match="resume and overwrite exclude each other"):
        gigapatch.extract_to_zarr(slide, plan, reference, resume=True, overwrite=True)


def test_a_torn_done_flag_counts_as_not_done(job, tmp_path):
    slide, plan, reference, _ = job
    out = tmp_path / "torn.zarr"
    gigapatch.extract_to_zarr(slide, plan, out, shard_size=16)
    flag = out / "done" / "c" / "3"
    flag.write_bytes(b"")  # as if killed while writing it
    store = PatchStore(out)
    assert store.shards_done == store.n_shards - 1 and not store.done[3]
    gigapatch.extract_to_zarr(slide, plan, out, shard_size=16, resume=True)
    _same_store(out, reference)


def test_a_distributed_local_cluster_gives_the_same_bytes(job, tmp_path):
    distributed = pytest.importorskip("distributed")
    slide, plan, reference, _ = job
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster:
        gigapatch.extract_to_zarr(slide, plan, tmp_path / "d.zarr", shard_size=16,
                                  scheduler=cluster.scheduler_address)
        with distributed.Client(cluster) as client:
            patches = gigapatch.extract(slide, plan.rows(0, 100), scheduler=client, block_size=30)
    _same_store(tmp_path / "d.zarr", reference)
    assert np.array_equal(patches, PatchStore(reference)[:100])


def test_scheduler_names_are_checked(job):
    slide, plan, *_ = job
    with pytest.raises(InvalidArgumentError, match="scheduler must be one of threads, processes, "
                                                   "synchronous, a scheduler address"):
        gigapatch.extract(slide, plan, scheduler="slurm")


def test_cli_resume_and_overwrite_exclude_each_other(job, capsys):
    from gigapatch.cli import main

    slide, _, reference, _ = job
    code = main(["extract", str(slide), "-o", str(reference), "--size", "128", "--resume",
                 "--overwrite"])
    err = capsys.readouterr().err
    assert code == 2 and "not allowed with argument" in err and err.count("\n") == 1
    assert zarr.open_group(reference, mode="r")["done"][:].all()


def test_cli_resume_of_a_random_plan_reuses_the_recorded_seed(job, tmp_path, capsys):
    from gigapatch.cli import main

    slide = str(job[0])
    out = str(tmp_path / "r.zarr")
    assert main(["extract", slide, "-o", out, "--size", "64", "--random", "40", "--quiet",
                 "--shard-size", "8"]) == 0
    seed = PatchStore(out).plan["seed"]
    assert seed is not None
    flag = Path(out) / "done" / "c" / "2"
    flag.unlink()  # as if the run had stopped before shard 2 was marked
    assert main(["extract", slide, "-o", out, "--size", "64", "--random", "40", "--quiet",
                 "--shard-size", "8", "--resume"]) == 0
    assert PatchStore(out).complete and PatchStore(out).plan["seed"] == seed
    capsys.readouterr()


def _noise(h=128, w=128):
    return np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)


def test_a_creation_killed_half_way_leaves_no_store_at_the_output(tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise KeyboardInterrupt  # as if killed while the arrays are being made

    image = _noise()
    plan = gigapatch.grid(image, 32)
    monkeypatch.setattr(zarr.Group, "create_array", boom)
    with pytest.raises(KeyboardInterrupt):
        gigapatch.extract_to_zarr(image, plan, tmp_path / "o.zarr")
    monkeypatch.undo()
    assert not (tmp_path / "o.zarr").exists()
    gigapatch.extract_to_zarr(image, plan, tmp_path / "o.zarr", resume=True)
    assert PatchStore(tmp_path / "o.zarr").complete
    assert [p.name for p in tmp_path.iterdir()] == ["o.zarr"]  # the half-made folder is gone


def test_resume_into_an_empty_folder_is_a_fresh_run(tmp_path):
    (tmp_path / "o.zarr").mkdir()
    image = _noise()
    gigapatch.extract_to_zarr(image, gigapatch.grid(image, 32), tmp_path / "o.zarr", resume=True)
    assert PatchStore(tmp_path / "o.zarr").complete


def test_verify_and_resume_catch_missing_or_damaged_shard_files(tmp_path):
    image = _noise()
    plan = gigapatch.grid(image, 32)
    out = tmp_path / "v.zarr"
    gigapatch.extract_to_zarr(image, plan, out, shard_size=4)
    reference = PatchStore(out)[:]
    (out / "images" / "c" / "1" / "0" / "0" / "0").unlink()
    with open(out / "images" / "c" / "2" / "0" / "0" / "0", "r+b") as fh:
        fh.truncate(100)
    assert PatchStore(out).verify() == [
        "shard 1 (patches 4-7) is marked done but its file is missing",
        "shard 2 (patches 8-11) is marked done but its index is damaged (checksum mismatch)",
    ]
    gigapatch.extract_to_zarr(image, plan, out, shard_size=4, resume=True)
    assert PatchStore(out).verify() == [] and np.array_equal(PatchStore(out)[:], reference)


def test_resume_accepts_nan_tissue_fractions(tmp_path):
    a, b = _noise(), _noise()
    plan = gigapatch.grid([a, b], 64, mask=[None, np.ones((4, 4), bool)])
    assert np.isnan(plan.tissue).any()
    gigapatch.extract_to_zarr([a, b], plan, tmp_path / "t.zarr", shard_size=4)
    (tmp_path / "t.zarr" / "done" / "c" / "1").unlink()  # shard 1 not done
    seen = []
    gigapatch.extract_to_zarr([a, b], plan, tmp_path / "t.zarr", shard_size=4, resume=True,
                              progress=lambda done, total: seen.append(done))
    store = PatchStore(tmp_path / "t.zarr")
    assert store.complete and seen == [4, 8]  # shard 0 kept, shard 1 written again
    assert np.array_equal(store.tissue, plan.tissue, equal_nan=True)


def test_resume_refuses_a_slide_rewritten_in_place_with_the_same_size_and_time(tmp_path):
    from gigapatch.synth import synthesize

    a = synthesize(tmp_path / "a.svs", (600, 700), seed=1)
    b = synthesize(tmp_path / "b.svs", (600, 700), seed=2)
    size = max(a.stat().st_size, b.stat().st_size)
    for path in (a, b):  # zeros after a TIFF's end change nothing it holds
        with open(path, "ab") as fh:
            fh.write(bytes(size - path.stat().st_size))
    plan = gigapatch.grid(a, 64)
    out = tmp_path / "s.zarr"
    gigapatch.extract_to_zarr(a, plan, out, shard_size=8)
    (out / "done" / "c" / "1").unlink()  # as after a kill
    stat = a.stat()
    a.write_bytes(b.read_bytes())  # another scan, same name, same size ...
    os.utime(a, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # ... and the same time
    assert a.stat().st_size == stat.st_size and a.stat().st_mtime_ns == stat.st_mtime_ns
    with pytest.raises(StoreError, match=r"cannot resume .* source 0 a.svs \(its content changed "
                                         r"on disk since the store was made"):
        gigapatch.extract_to_zarr(a, gigapatch.grid(a, 64), out, shard_size=8, resume=True)
    assert not PatchStore(out).done[1]  # nothing was written
