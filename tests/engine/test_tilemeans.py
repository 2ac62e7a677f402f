"""Grid patches resampled from tiles averaged once: the same pixels as the region path, each
tile decoded once per run, stores shared safely by threads and forgotten between runs."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gigapatch
from gigapatch.engine import meancache, reading, tilemeans
from gigapatch.engine.meancache import MeanStore, run_scope
from gigapatch.engine.tiles import tile_decodes, touched_tiles
from gigapatch.errors import SlideError
from gigapatch.synth import synthesize
from gigapatch.testing import sample_rgb


@pytest.fixture(scope="module")
def slide40_path(tmp_path_factory):
    """A 40x slide whose sides are not tile multiples (edge tiles are cut)."""
    return synthesize(tmp_path_factory.mktemp("s") / "40x.svs", (1500, 1900), seed=7)


def _block_mean(region: np.ndarray, f: int) -> np.ndarray:
    """The reference: each output pixel the f × f block mean, rounded half to even."""
    h, w, c = region.shape[0] // f, region.shape[1] // f, region.shape[2]
    exact = np.float64 if region.dtype.kind == "f" else np.int64
    total = region.astype(exact).reshape(h, f, w, f, c).sum(axis=(1, 3))
    if region.dtype.kind == "f":
        return (total / (f * f)).astype(region.dtype)
    return np.rint(total / (f * f)).astype(region.dtype)


def _corners(rng, n, lh, lw, f, h, w):
    ly = rng.integers(0, lh - f * h + 1, n)
    lx = rng.integers(0, lw - f * w + 1, n)
    return ly - ly % f, lx - lx % f


def _check(slide, level, f, ly, lx, out):
    dy, dx = slide.levels[level].downsample
    for k in range(len(ly)):
        y0, x0 = round(int(ly[k]) * dy), round(int(lx[k]) * dx)
        region = slide.read(y0, x0, f * out.shape[1], f * out.shape[2], level)
        assert np.array_equal(out[k], _block_mean(region, f)), k


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), f=st.sampled_from([2, 4]), level=st.sampled_from([0, 1]),
       inside_run=st.booleans())
def test_patches_are_the_exact_block_means_of_their_regions(slide40_path, seed, f, level,
                                                            inside_run):
    slide = gigapatch.open(slide40_path)
    rng = np.random.default_rng(seed)
    lh, lw = slide.levels[level].shape
    h, w = int(rng.integers(1, min(lh, lw) // f // 2)), int(rng.integers(1, lw // f // 2))
    ly, lx = _corners(rng, 12, lh, lw, f, h, w)
    out = np.empty((12, h, w, 3), np.uint8)
    if inside_run:
        with run_scope():
            tilemeans.read_tile_means(slide, level, f, ly, lx, out)
    else:
        tilemeans.read_tile_means(slide, level, f, ly, lx, out)
    _check(slide, level, f, ly, lx, out)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize(("shape", "tile"), [((700, 900), (700, 900)),
                                             ((2100, 2050), (256, 256))])
def test_in_memory_sources_are_averaged_whole_or_in_virtual_tiles(dtype, shape, tile):
    # an array's "tile" is the whole level: small ones are averaged whole, large ones in
    # virtual tiles of 256²
    rng = np.random.default_rng(3)
    image = (rng.random((*shape, 2)) * 1000).astype(dtype)
    slide = gigapatch.open(image)
    assert tilemeans.working_tile(slide, 0, 2) == tile
    ly, lx = _corners(rng, 10, *shape, 2, 150, 120)
    out = np.empty((10, 150, 120, 2), dtype)
    tilemeans.read_tile_means(slide, 0, 2, ly, lx, out)
    for k in range(10):
        region = image[ly[k] : ly[k] + 300, lx[k] : lx[k] + 240]
        np.testing.assert_allclose(out[k], _block_mean(region, 2), rtol=1e-6)
        if dtype != np.float32:
            assert np.array_equal(out[k], _block_mean(region, 2))


def test_a_store_too_small_for_a_chunk_still_gives_every_pixel(slide40_path, monkeypatch):
    # 64 slots shared by four threads: tiles are evicted, and averaged privately when every
    # slot is pinned
    monkeypatch.setattr(meancache, "MEAN_BYTES", 0)
    slide = gigapatch.open(slide40_path)
    errors: list[BaseException] = []

    def work(seed: int) -> None:
        try:
            rng = np.random.default_rng(seed)
            for _ in range(3):
                h, w = int(rng.integers(40, 300)), int(rng.integers(40, 300))
                ly, lx = _corners(rng, 20, 1500, 1900, 2, h, w)
                out = np.empty((20, h, w, 3), np.uint8)
                tilemeans.read_tile_means(slide, 0, 2, ly, lx, out)
                _check(slide, 0, 2, ly, lx, out)
        except BaseException as exc:
            errors.append(exc)

    with run_scope():
        threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        (store,) = meancache._STORES.values()
        assert store.slots == 64 and not store._pins  # every pin let go
    assert not errors, errors[0]


def _counting(slide, monkeypatch):
    """Count the tiles ``slide`` reads as whole-tile regions (the tile means' decodes)."""
    counts: list[int] = []
    lock = threading.Lock()
    original = type(slide).read_regions

    def read_regions(self, ys, xs, height, width, level=0, **kwargs):
        if self is slide and (height, width) == tuple(slide.levels[level].tile):
            with lock:
                counts.append(len(ys))
        return original(self, ys, xs, height, width, level, **kwargs)

    monkeypatch.setattr(type(slide), "read_regions", read_regions)
    return counts


def test_a_run_decodes_each_tile_once_across_its_tasks(slide40_path, monkeypatch):
    slide = gigapatch.open(slide40_path)
    plan = gigapatch.grid(slide, 48, mpp=0.5)  # 96² of level 0 per patch: tiles are shared
    tiles = touched_tiles(slide, 0, plan.y, plan.x, plan.read_size(0))
    counts = _counting(slide, monkeypatch)
    got = gigapatch.extract(slide, plan, workers=1, block_size=7)  # 20 tasks
    full = len(tiles) - sum(1 for t in tiles.tolist() if t // 8 == 5 or t % 8 == 7)
    assert sum(counts) == full  # whole tiles; the cut edge tiles are read separately
    assert tile_decodes([slide], plan, shard_size=7) == len(tiles)
    counts.clear()
    again = gigapatch.extract(slide, plan, workers=2, block_size=7)
    assert np.array_equal(got, again)
    # two threads that miss one tile at the same time both decode it: rare, never most
    assert full <= sum(counts) < 1.5 * full
    for i in np.random.default_rng(0).choice(len(plan), 10, replace=False).tolist():
        y, x = int(plan.y[i]), int(plan.x[i])
        assert np.array_equal(got[i], _block_mean(slide.read(y, x, 96, 96), 2))


def test_runs_do_not_share_tiles():
    # an in-memory source may change between runs: the second run sees the new pixels
    image = sample_rgb(600, 700, seed=2)
    slide = gigapatch.open(image)
    ly, lx = np.array([0, 64, 128, 300, 470]), np.array([0, 128, 64, 500, 570])
    out = np.empty((5, 64, 64, 3), np.uint8)
    with run_scope():
        tilemeans.read_tile_means(slide, 0, 2, ly, lx, out)
    image[:] = 255 - image
    with run_scope():
        tilemeans.read_tile_means(slide, 0, 2, ly, lx, out)
    for k in range(5):
        region = image[ly[k] : ly[k] + 128, lx[k] : lx[k] + 128]
        assert np.array_equal(out[k], _block_mean(region, 2))


def test_grids_take_tile_means_and_random_patches_take_regions(slide40_path, monkeypatch):
    slide = gigapatch.open(slide40_path)
    calls: list[int] = []
    original = reading.read_tile_means

    def spy(slide, level, f, ly, lx, out):
        calls.append(len(ly))
        original(slide, level, f, ly, lx, out)

    monkeypatch.setattr(reading, "read_tile_means", spy)
    grid = gigapatch.grid(slide, 100, mpp=0.5)
    gigapatch.extract(slide, grid, workers=1)
    assert sum(calls) == len(grid)
    calls.clear()
    rand = gigapatch.random(slide, 100, 30, seed=1, mpp=0.5)
    assert (rand.y % 2).any() or (rand.x % 2).any()  # corners off the 2 x 2 lattice
    patches = gigapatch.extract(slide, rand, workers=1)
    assert not calls
    for i in range(0, 30, 7):
        y, x = int(rand.y[i]), int(rand.x[i])
        assert np.array_equal(patches[i], _block_mean(slide.read(y, x, 200, 200), 2))


def test_padded_grid_patches_outside_the_slide_take_the_fill(slide40_path):
    slide = gigapatch.open(slide40_path)
    plan = gigapatch.grid(slide, 128, mpp=0.5, padding="same", fill=255)
    patches = gigapatch.extract(slide, plan, workers=2)
    for i in (0, len(plan) - 1):
        y, x = int(plan.y[i]), int(plan.x[i])
        region = slide.read(y, x, 256, 256, fill=255)
        assert np.array_equal(patches[i], _block_mean(region, 2))


def test_a_failed_decode_lets_every_pin_and_slot_go(slide40_path, monkeypatch):
    slide = gigapatch.open(slide40_path)
    original = type(slide).read_regions
    calls = [0]

    def failing(self, *args, **kwargs):
        calls[0] += 1
        if calls[0] == 2:
            raise SlideError("tile 7 is damaged")
        return original(self, *args, **kwargs)

    ly, lx = _corners(np.random.default_rng(0), 40, 1500, 1900, 2, 200, 200)
    out = np.empty((40, 200, 200, 3), np.uint8)
    with run_scope():
        monkeypatch.setattr(type(slide), "read_regions", failing)
        with pytest.raises(SlideError, match="tile 7 is damaged"):
            tilemeans.read_tile_means(slide, 0, 2, ly, lx, out)
        monkeypatch.setattr(type(slide), "read_regions", original)
        (store,) = meancache._STORES.values()
        assert not store._pins
        free = len(store._free) + len(store._inner) + len(store._boundary)
        assert free == store.slots  # no slot lost
        tilemeans.read_tile_means(slide, 0, 2, ly, lx, out)
    _check(slide, 0, 2, ly, lx, out)


def test_tiles_the_factor_does_not_divide_take_regions(slide40_path):
    slide = gigapatch.open(slide40_path)
    assert tilemeans.working_tile(slide, 0, 3) is None  # 256 is no multiple of 3
    zeros = np.zeros(3, np.int64)
    assert not tilemeans.tile_means_apply(slide, 0, 3.0, zeros, zeros)
    assert not tilemeans.tile_means_apply(slide, 0, 1.5, zeros, zeros)
    assert tilemeans.tile_means_apply(slide, 0, 2.0, zeros + 2, zeros + 4)
    assert not tilemeans.tile_means_apply(slide, 0, 2.0, zeros + 1, zeros)
    with pytest.raises(ValueError, match="do not suit f=3"):
        tilemeans.read_tile_means(slide, 0, 3, zeros, zeros, np.empty((3, 4, 4, 3), np.uint8))


# ------------------------------------------------------------------------------ the store


def test_the_store_pins_evicts_inner_tiles_first_and_gives_slots_back():
    store = MeanStore((2, 2, 1), np.uint8, capacity=0, minimum=4)
    assert store.slots == 4
    found, missing = store.acquire([10, 11, 12, 13])
    assert not found and missing == [10, 11, 12, 13]
    slots = store.reserve(4)
    assert sorted(slots) == [0, 1, 2, 3]
    assert store.publish([10, 11, 12, 13], slots) == dict(zip([10, 11, 12, 13], slots, strict=True))
    assert store.reserve(1) == [None]  # all pinned: no slot
    store.release([10, 11, 12, 13], boundary={10, 11})
    # inner tiles (12, 13) go before boundary ones, least recently used first
    assert store.reserve(1) == [slots[2]]
    found, missing = store.acquire([10, 12])
    assert found == {10: slots[0]} and missing == [12]
    # a tile another thread published first keeps that thread's slot; ours comes back
    spare = store.reserve(1)
    assert spare == [slots[3]]
    assert store.publish([10], spare) == {10: slots[0]}
    store.give_back([slots[2]])
    store.release([10, 10], boundary=set())
    assert sorted(store._free) == sorted([slots[2], slots[3]])
    assert store.decoded == 4


def test_boundary_tiles_keep_half_the_store_at_most():
    store = MeanStore((1, 1, 1), np.uint8, capacity=0, minimum=8)
    tiles = list(range(8))
    store.publish(tiles, store.reserve(8))
    store.release(tiles, boundary=set(tiles))
    assert len(store._boundary) == 4 and list(store._inner) == [3, 2, 1, 0]
    assert store.reserve(1) == [3]  # tile t got slot t; the last demoted goes first
