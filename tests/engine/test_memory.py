"""In-memory extraction: tile tasks, self-scheduling threads, and a caller's ``out=`` buffer."""

from __future__ import annotations

import itertools
import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gigapatch
from gigapatch.engine import memory
from gigapatch.engine.memory import memory_tasks, run_threads
from gigapatch.engine.tiles import touched_tiles
from gigapatch.errors import InvalidArgumentError
from gigapatch.sources import tiff
from gigapatch.testing import sample_fluorescence, sample_rgb, write_ome_tiff, write_tiff


def _reference(slide, plan):
    """Each patch read alone (``Slide.read``: no tile ranges, no tasks, no threads)."""
    h, w = plan.size
    return np.stack([slide.read(int(y), int(x), h, w, plan.level_of(int(k)))
                     for k, y, x in zip(plan.slide, plan.y, plan.x, strict=True)])


@pytest.fixture(scope="module")
def sources(tmp_path_factory, slide_path, square_path):
    """TIFF layouts the tile tasks read: JPEG tiles with edge tiles (odd), two JPEG levels
    (square), zlib tiles, strips, and one page per channel (CYX)."""
    tmp = tmp_path_factory.mktemp("memory")
    rgb = sample_rgb(700, 900, seed=4)
    return {
        "odd": gigapatch.open(slide_path),
        "square": gigapatch.open(square_path),
        "zlib": gigapatch.open(write_tiff(tmp / "zlib.tif", rgb, tile=128)),
        "strips": gigapatch.open(write_tiff(tmp / "strips.tif", rgb, tile=None,
                                            rowsperstrip=64)),
        "planes": gigapatch.open(write_ome_tiff(tmp / "planes.ome.tif",
                                                sample_fluorescence(600, 500, 3), tile=128,
                                                compression="zlib", channels_first=True,
                                                levels=2)),
    }


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(["odd", "square", "zlib", "strips", "planes"]),
       h=st.integers(1, 520), w=st.integers(1, 520), n=st.integers(1, 40),
       seed=st.integers(0, 2**16), workers=st.integers(1, 3),
       per_task=st.sampled_from([1, 3, 64]), level=st.integers(0, 1))
def test_tile_tasks_equal_patches_read_alone(sources, monkeypatch, name, h, w, n, seed,
                                              workers, per_task, level):
    slide = sources[name]
    level = min(level, len(slide.levels) - 1)
    lh, lw = slide.levels[level].shape
    h, w = min(h, lh), min(w, lw)
    monkeypatch.setattr(memory, "TILES_PER_TASK", per_task)
    plan = gigapatch.random(slide, (h, w), n, seed=seed, level=level)
    tasks = memory_tasks([slide], plan, 256)
    assert all(t.tiles is not None for t in tasks)  # random plans are in band order
    got = gigapatch.extract(slide, plan, workers=workers)
    assert np.array_equal(got, _reference(slide, plan))


def test_tile_ranges_cover_every_touched_tile_once(sources, monkeypatch):
    """The tasks' tile ranges are disjoint, and each task holds every patch that touches
    its range: together they write every pixel of every patch once."""
    slide = sources["odd"]
    monkeypatch.setattr(memory, "TILES_PER_TASK", 2)
    plan = gigapatch.random(slide, (300, 270), 60, seed=5)
    tasks = memory_tasks([slide], plan, 256)
    ranges = sorted(t.tiles for t in tasks)
    assert len(tasks) > 3
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(ranges))
    for i in range(len(plan)):
        for tile in touched_tiles(slide, 0, plan.y[i : i + 1], plan.x[i : i + 1], plan.size):
            owner = [t for t in tasks if t.tiles[0] <= tile < t.tiles[1]]
            assert len(owner) == 1 and owner[0].start <= i < owner[0].stop


def test_each_tile_is_decoded_once_in_all(sources, monkeypatch):
    """Two threads, many small tasks: every tile the patches touch is decoded exactly once
    (the tile cache and per-shard reads decoded the tiles at task edges again)."""
    slide = sources["square"]
    monkeypatch.setattr(memory, "TILES_PER_TASK", 1)
    plan = gigapatch.random(slide, 299, 200, seed=1)
    decoded: list[tuple[int, int]] = []
    lock = threading.Lock()
    original = tiff.TiffReader._segment

    def counted(self, level, data, plane, index, fd, out=None):
        with lock:
            decoded.append((level, index))
        return original(self, level, data, plane, index, fd, out=out)

    monkeypatch.setattr(tiff.TiffReader, "_segment", counted)
    gigapatch.extract(slide, plan, workers=2)
    needed = touched_tiles(slide, 0, plan.y, plan.x, plan.size)
    assert sorted(index for _, index in decoded) == needed.tolist()


def test_plans_the_tile_tasks_do_not_read_fall_back_to_blocks(sources):
    slide = sources["odd"]
    plan = gigapatch.random(slide, 200, 30, seed=2)
    shuffled = plan.take(np.random.default_rng(0).permutation(len(plan)))  # no band order
    same = gigapatch.grid(slide, 256, stride=400, padding="same")  # patches off the level
    resampled = gigapatch.grid(sources["square"], 100, mpp=0.5)  # factor 2
    for p, s in ((shuffled, slide), (same, slide), (resampled, sources["square"])):
        assert all(t.tiles is None for t in memory_tasks([s], p, 7))
    assert np.array_equal(gigapatch.extract(slide, shuffled, block_size=7),
                          _reference(slide, shuffled))
    assert np.array_equal(gigapatch.extract(slide, same, block_size=7, workers=2),
                          gigapatch.extract(slide, same, scheduler="synchronous"))


def test_grid_of_several_slides_equals_synchronous_and_processes(slide_path, square_path):
    slides = [gigapatch.open(slide_path), gigapatch.open(square_path)]
    plan = gigapatch.grid(slides, 256)
    threads = gigapatch.extract(slides, plan, workers=2)
    assert np.array_equal(threads, gigapatch.extract(slides, plan, scheduler="synchronous"))
    assert np.array_equal(threads, gigapatch.extract(slides, plan, scheduler="processes",
                                                     workers=2, block_size=40))


# ------------------------------------------------------------------------------ out=


@pytest.mark.parametrize("scheduler", ["threads", "synchronous", "processes"])
def test_out_is_filled_and_returned(slide_path, scheduler):
    slide = gigapatch.open(slide_path)
    plan = gigapatch.random(slide, 299, 25, seed=3)
    expected = gigapatch.extract(slide, plan)
    out = np.full((25, 299, 299, 3), 7, np.uint8)
    got = gigapatch.extract(slide, plan, out=out, scheduler=scheduler, workers=2, block_size=8)
    assert got is out and np.array_equal(out, expected)
    again = gigapatch.extract(slide, plan.rows(0, 10), out=out[:10])  # a leading slice: C order
    assert np.array_equal(again, expected[:10])


def test_out_of_an_empty_plan(slide_path):
    slide = gigapatch.open(slide_path)
    plan = gigapatch.random(slide, 64, 4, seed=0).rows(0, 0)
    out = np.empty((0, 64, 64, 3), np.uint8)
    assert gigapatch.extract(slide, plan, out=out) is out


def _read_only() -> np.ndarray:
    a = np.zeros((3, 32, 32, 3), np.uint8)
    a.flags.writeable = False
    return a


@pytest.mark.parametrize(("out", "message"), [
    ([[0]], r"^out must be a writable C-contiguous numpy array of shape \(3, 32, 32, 3\) and "
            r"dtype uint8; got list$"),
    (np.zeros((3, 32, 32, 4), np.uint8), r"; got shape \(3, 32, 32, 4\)$"),
    (np.zeros((2, 32, 32, 3), np.uint8), r"; got shape \(2, 32, 32, 3\)$"),
    (np.zeros((3, 32, 32, 3), np.float32), r"; got dtype float32$"),
    (np.zeros((3, 32, 64, 3), np.uint8)[:, :, ::2], r"; got a non-contiguous array$"),
    (np.zeros((3, 32, 32, 3), np.uint8, order="F"), r"; got a non-contiguous array$"),
    (_read_only(), r"; got a read-only array$"),
    (np.zeros((3, 32, 32, 3), np.int16)[..., ::-1], r"; got dtype int16, a non-contiguous array$"),
])
def test_out_is_checked_strictly(slide_path, out, message):
    slide = gigapatch.open(slide_path)
    plan = gigapatch.random(slide, 32, 3, seed=0)
    with pytest.raises(InvalidArgumentError, match=message):
        gigapatch.extract(slide, plan, out=out)


# ------------------------------------------------------------------------------ threads


def test_run_threads_runs_each_task_once():
    seen: list[int] = []
    lock = threading.Lock()

    def work(i: int) -> None:
        with lock:
            seen.append(i)

    for workers in (1, 2, 5):
        seen.clear()
        run_threads(50, workers, work)
        assert sorted(seen) == list(range(50))


def test_run_threads_raises_the_first_error_and_stops_taking_work():
    done: list[int] = []

    def work(i: int) -> None:
        if i == 3:
            raise ValueError("task 3 failed")
        done.append(i)

    with pytest.raises(ValueError, match=r"^task 3 failed$"):
        run_threads(1000, 2, work)
    assert len(done) < 999  # the threads stopped taking tasks after the failure


def test_read_regions_tiles_is_checked(slide_path, sources):
    slide = gigapatch.open(slide_path)
    out = np.zeros((1, 10, 10, 3), np.uint8)
    with pytest.raises(InvalidArgumentError, match=r"^tiles= fills part of out: pass out=$"):
        slide.read_regions([0], [0], 10, 10, tiles=(0, 1))
    for bad in ((0, 1.5), (3, 3), (-1, 4), [0, 1], (True, 2)):
        with pytest.raises(InvalidArgumentError, match=r"^tiles must be a pair of tile indices "
                                                       r"\(first, stop\), 0 <= first < stop; got "):
            slide.read_regions([0], [0], 10, 10, out=out, tiles=bad)
    with pytest.raises(InvalidArgumentError, match=r"^tiles= reads regions inside the level"):
        slide.read_regions([-5], [0], 10, 10, out=out, tiles=(0, 1), fill=0)
    array = gigapatch.open(np.zeros((64, 64, 3), np.uint8))
    assert not array.reads_tiles and slide.reads_tiles
    with pytest.raises(InvalidArgumentError, match=r"^tiles= needs a reader that decodes by"):
        array.read_regions([0], [0], 10, 10, out=out, tiles=(0, 1))
