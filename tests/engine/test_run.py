import numpy as np
import pytest
import tifffile

import gigapatch
from gigapatch.engine import reading
from gigapatch.engine import run as engine
from gigapatch.errors import ClusterError, InvalidArgumentError, SlideError
from gigapatch.store import PatchStore
from tests.helpers import openslide_region


def _images(path):
    return PatchStore(path)[:]


def test_every_patch_equals_the_source_region(slide_path, tmp_path):
    slide = gigapatch.open(slide_path)
    plan = gigapatch.grid(slide, 299, 250)
    store = gigapatch.extract_to_zarr(slide, plan, tmp_path / "p.zarr", shard_size=16)
    assert store.complete and store.verify() == []
    level0 = tifffile.imread(slide_path)
    images, coords = store[:], store.coords
    for i in range(len(store)):
        y, x = coords[i]
        assert np.array_equal(images[i], level0[y : y + 299, x : x + 299]), i
    assert np.array_equal(coords, np.stack([plan.y, plan.x], axis=1))


def test_a_sample_equals_openslide_read_region_at_level_0_and_1(slide_path, tmp_path):
    for level, size in [(0, 256), (1, 100)]:
        plan = gigapatch.grid(slide_path, size, level=level)
        store = gigapatch.extract_to_zarr(slide_path, plan, tmp_path / f"l{level}.zarr")
        rng = np.random.default_rng(level)
        for i in rng.choice(len(store), size=min(12, len(store)), replace=False):
            y, x = store.coords[i]
            assert np.array_equal(
                store[int(i)], openslide_region(slide_path, y, x, size, size, level)
            )


def test_same_bytes_for_any_workers_scheduler_and_region_budget(slide_path, tmp_path, monkeypatch):
    plan = gigapatch.grid(slide_path, 200, 180)
    reference = _images(
        gigapatch.extract_to_zarr(
            slide_path, plan, tmp_path / "a.zarr", workers=1, shard_size=8
        ).path
    )
    for k, kwargs in enumerate(
        [
            {"workers": 2},
            {"workers": 4},
            {"workers": 2, "scheduler": "processes"},
            {"scheduler": "synchronous"},
        ]
    ):
        out = gigapatch.extract_to_zarr(
            slide_path, plan, tmp_path / f"b{k}.zarr", shard_size=8, **kwargs
        )
        assert np.array_equal(out[:], reference), kwargs
    monkeypatch.setattr(reading, "REGION_BUDGET", 300 * 300)  # one read per patch
    out = gigapatch.extract_to_zarr(slide_path, plan, tmp_path / "c.zarr", shard_size=8)
    assert np.array_equal(out[:], reference)


def test_in_memory_extract_equals_the_store(slide_path, tmp_path):
    plan = gigapatch.grid(slide_path, 128, level=1)
    patches = gigapatch.extract(slide_path, plan, block_size=5)
    store = gigapatch.extract_to_zarr(slide_path, plan, tmp_path / "p.zarr")
    assert patches.shape == (len(plan), 128, 128, 3)
    assert np.array_equal(patches, store[:])


def test_many_slides_with_labels_and_sources_recorded(slide_path, square_path, tmp_path):
    plan = gigapatch.grid([slide_path, square_path], 512)
    store = gigapatch.extract_to_zarr(
        [slide_path, square_path], plan, tmp_path / "p.zarr", labels=[0, 1], shard_size=5
    )
    assert store.slide.tolist() == plan.slide.tolist()
    assert np.array_equal(store.label, np.where(plan.slide == 0, 0, 1))
    first = store.sources[0]
    assert first["path"] == str(slide_path) and first["label"] == 0 and first["mpp"] == 0.25
    assert first["shape"] == [1800, 2600] and first["level"] == 0 and first["size"] > 0
    sq = gigapatch.open(square_path)
    i = int(np.flatnonzero(plan.slide == 1)[3])
    y, x = store.coords[i]
    assert np.array_equal(store[i], sq.read(int(y), int(x), 512, 512))


def test_progress_reports_every_shard_in_the_driver(slide_path, tmp_path):
    plan = gigapatch.grid(slide_path, 256)
    seen = []
    gigapatch.extract_to_zarr(
        slide_path,
        plan,
        tmp_path / "p.zarr",
        shard_size=10,
        progress=lambda done, total: seen.append((done, total)),
    )
    n = len(plan)
    assert len(seen) == -(-n // 10) and seen[-1] == (n, n)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_a_failing_read_leaves_an_incomplete_store(slide_path, tmp_path, monkeypatch):
    plan = gigapatch.grid(slide_path, 256)
    calls = {"n": 0}
    real = engine.read_patches

    def flaky(slides, rows, device="cpu", out=None):
        calls["n"] += 1
        if calls["n"] == 3:
            raise SlideError("'odd.svs': cannot decode level 0 segment 5: corrupt")
        return real(slides, rows, device, out=out)

    monkeypatch.setattr(engine, "read_patches", flaky)
    with pytest.raises(SlideError, match="cannot decode"):
        gigapatch.extract_to_zarr(slide_path, plan, tmp_path / "p.zarr", shard_size=8, workers=1)
    store = PatchStore(tmp_path / "p.zarr")
    assert not store.complete and store.shards_done == 2
    assert "not done" in store.verify()[0]


def test_engine_checks_its_arguments(slide_path, tmp_path):
    plan = gigapatch.grid(slide_path, 256)
    with pytest.raises(
        InvalidArgumentError,
        match=r"labels must give one integer label >= -1 per slide \(1\); got \(0, 1\)",
    ):
        gigapatch.extract_to_zarr(slide_path, plan, tmp_path / "a.zarr", labels=[0, 1])
    with pytest.raises(InvalidArgumentError, match="plan refers to slide 1 but 1 sources"):
        gigapatch.extract_to_zarr(
            slide_path, gigapatch.grid([slide_path] * 2, 256), tmp_path / "b.zarr"
        )
    with pytest.raises(InvalidArgumentError, match="workers must be a positive integer; got 0"):
        gigapatch.extract_to_zarr(slide_path, plan, tmp_path / "c.zarr", workers=0)
    with pytest.raises(InvalidArgumentError, match="scheduler must be one of threads, processes"):
        gigapatch.extract(slide_path, plan, scheduler="cluster")
    with pytest.raises(InvalidArgumentError, match="plan must be a PatchPlan; got list"):
        gigapatch.extract(slide_path, [1, 2])
    mixed = [np.zeros((300, 300, 3), np.uint8), np.zeros((300, 300, 1), np.uint8)]
    with pytest.raises(InvalidArgumentError, match="must share dtype and channels"):
        gigapatch.extract(mixed, gigapatch.grid(mixed, 100))
    for name in ("a.zarr", "b.zarr", "c.zarr"):
        assert not (tmp_path / name).exists()


def test_unsynced_shards_have_the_same_bytes(slide_path, tmp_path, monkeypatch):
    import os as os_module

    plan = gigapatch.grid(slide_path, 256)
    synced = []
    real_fsync = os_module.fsync
    monkeypatch.setattr(os_module, "fsync",
                        lambda fd: (synced.append(os_module.readlink(f"/proc/self/fd/{fd}")),
                                    real_fsync(fd)))
    a = gigapatch.extract_to_zarr(slide_path, plan, tmp_path / "a.zarr", shard_size=8)
    n_synced = len(synced)
    b = gigapatch.extract_to_zarr(slide_path, plan, tmp_path / "b.zarr", shard_size=8, sync=False)
    shard_files = [p for p in synced[:n_synced] if p.endswith(".tmp") and "/images/" in p]
    flags = [p for p in synced if "/done/c/" in p and not p.endswith(".tmp")]
    assert len(shard_files) == len(flags) == a.n_shards  # each shard, then its flag
    folders = [p for p in synced if p.startswith(str(tmp_path / "a.zarr" / "images" / "c"))
               and os_module.path.isdir(p)]
    assert len(folders) >= a.n_shards  # each shard's folder too: the renames last
    unsynced = synced[n_synced:]  # only the writer lock (its file and folder) is synced then
    assert not [p for p in unsynced if p.endswith(".tmp") or "/done" in p or "/images" in p]
    assert np.array_equal(a[:], b[:])


def test_big_endian_sources_give_native_stores(tmp_path):
    image = np.arange(64 * 64 * 3).reshape(64, 64, 3).astype(">u2")
    plan = gigapatch.grid(image, 32)
    store = gigapatch.extract_to_zarr(image, plan, tmp_path / "be.zarr")
    patches = gigapatch.extract(image, plan)
    assert store.complete and patches.dtype == np.dtype("=u2") == store.images.dtype
    assert np.array_equal(store[:], patches) and np.array_equal(patches[0], image[:32, :32])


def test_an_unreachable_scheduler_is_one_line_and_creates_nothing(tmp_path):
    import dask

    pytest.importorskip("distributed")
    image = np.zeros((128, 128, 3), np.uint8)
    with (
        pytest.raises(ClusterError, match=r"cannot reach the Dask scheduler at 'tcp://127\.0"),
        dask.config.set({"distributed.comm.timeouts.connect": "1s"}),
    ):
        gigapatch.extract_to_zarr(image, gigapatch.grid(image, 32), tmp_path / "d.zarr",
                                  scheduler="tcp://127.0.0.1:9")
    assert not (tmp_path / "d.zarr").exists()


def test_a_plan_made_for_other_sources_is_refused_before_any_output(tmp_path):
    plan = gigapatch.grid(np.zeros((1024, 1024, 3), np.uint8), 128)
    with pytest.raises(InvalidArgumentError, match=r"plan patch 2 at y=0, x=256 does not fit in "
                                                   r"'array' at level 0 \(300x300 pixels\)"):
        gigapatch.extract_to_zarr(np.zeros((300, 300, 3), np.uint8), plan, tmp_path / "o.zarr")
    assert not (tmp_path / "o.zarr").exists()
