import os
import pickle

import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gigapatch
from gigapatch.errors import CorruptTileError, InvalidArgumentError, RegionError, SlideError
from gigapatch.sources.tiff import TiffReader
from tests.helpers import openslide_region


def test_open_reports_levels_downsamples_mpp(square_path):
    slide = gigapatch.open(square_path)
    assert slide.format == "svs"
    assert slide.shape == (2048, 2048)
    assert [lvl.shape for lvl in slide.levels] == [(2048, 2048), (512, 512)]
    assert [lvl.downsample for lvl in slide.levels] == [(1.0, 1.0), (4.0, 4.0)]
    assert slide.levels[0].tile == (256, 256) and slide.levels[0].compression == "jpeg"
    assert slide.mpp == pytest.approx(0.25)
    assert slide.dtype == np.uint8 and slide.channels == 3
    assert slide.name == "square.svs"


def test_mpp_from_resolution_tags_and_none_without_them(tmp_path):
    data = np.zeros((64, 64, 3), np.uint8)
    tifffile.imwrite(
        tmp_path / "cm.tif", data, resolution=(20000, 20000), resolutionunit="CENTIMETER"
    )
    tifffile.imwrite(tmp_path / "none.tif", data)
    assert gigapatch.open(tmp_path / "cm.tif").mpp == pytest.approx(0.5)
    assert gigapatch.open(tmp_path / "none.tif").mpp is None


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_read_equals_tifffile_at_every_level(any_slide_path, data):
    slide = gigapatch.open(any_slide_path)
    level = data.draw(st.integers(0, len(slide.levels) - 1), label="level")
    lh, lw = slide.levels[level].shape
    h = data.draw(st.integers(1, min(lh, 600)), label="height")
    w = data.draw(st.integers(1, min(lw, 600)), label="width")
    ly = data.draw(st.integers(0, lh - h), label="y")
    lx = data.draw(st.integers(0, lw - w), label="x")
    y, x = slide.to_level0(ly, lx, level)
    ref = tifffile.imread(any_slide_path, series=0, level=level)[ly : ly + h, lx : lx + w]
    assert np.array_equal(slide.read(y, x, h, w, level=level), ref)


@pytest.mark.parametrize(
    ("y", "x", "h", "w", "level"),
    [
        (0, 0, 256, 256, 0),
        (1000, 1537, 299, 299, 0),
        (1500, 2300, 300, 300, 0),
        (400, 800, 100, 150, 1),
        (1796, 2596, 1, 1, 1),
    ],
)
def test_read_equals_openslide_read_region(slide_path, y, x, h, w, level):
    slide = gigapatch.open(slide_path)
    assert np.array_equal(
        slide.read(y, x, h, w, level=level), openslide_region(slide_path, y, x, h, w, level)
    )


def _count_decodes(slide):
    """Record the (level, plane, tile index) of every segment the slide decodes."""
    reader = slide._reader
    calls = []
    real = reader._segment

    def counting(level, data, plane, index, fd, out=None):
        calls.append((level, plane, index))
        return real(level, data, plane, index, fd, out=out)

    reader._segment = counting
    return calls


@pytest.mark.parametrize(
    ("y", "x", "h", "w", "tiles"),
    [
        (0, 0, 256, 256, 1),  # exactly one tile
        (10, 20, 100, 100, 1),  # inside one tile
        (200, 200, 100, 100, 4),  # across a corner
        (0, 0, 256, 2600, 11),  # a full row of tiles (the last one partial)
        (100, 300, 600, 800, 12),  # rows 0-2 x columns 1-4
    ],
)
def test_a_read_decodes_each_touched_tile_once(slide_path, y, x, h, w, tiles):
    slide = gigapatch.open(slide_path)
    calls = _count_decodes(slide)
    slide.read(y, x, h, w)
    assert len(calls) == tiles == len(set(calls))


def test_slide_pickles_as_its_path_and_reads_the_same(slide_path):
    slide = gigapatch.open(slide_path)
    slide.read(0, 0, 16, 16)  # opens the handle
    blob = pickle.dumps(slide)
    assert len(blob) < 1000
    copy = pickle.loads(blob)
    assert np.array_equal(copy.read(500, 700, 64, 64), slide.read(500, 700, 64, 64))


def test_close_then_read_reopens(slide_path):
    slide = gigapatch.open(slide_path)
    before = slide.read(0, 0, 32, 32)
    slide.close()
    assert np.array_equal(slide.read(0, 0, 32, 32), before)


def test_in_memory_array_is_a_one_level_slide():
    image = np.arange(30 * 40 * 3, dtype=np.uint16).reshape(30, 40, 3)
    slide = gigapatch.open(image)
    assert slide.format == "array" and slide.shape == (30, 40) and slide.dtype == np.uint16
    assert np.array_equal(slide.read(5, 6, 7, 8), image[5:12, 6:14])
    gray = gigapatch.open(image[..., 0])
    assert gray.channels == 1 and gray.read(0, 0, 2, 2).shape == (2, 2, 1)
    assert np.array_equal(pickle.loads(pickle.dumps(slide)).read(0, 0, 3, 3), image[:3, :3])


def test_stripped_tiff_reads_like_tifffile(tmp_path):
    image = np.random.default_rng(0).integers(0, 255, (300, 200, 3), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "strips.tif", image, rowsperstrip=7, compression="zlib")
    slide = gigapatch.open(tmp_path / "strips.tif")
    assert slide.levels[0].tile == (7, 200)
    assert np.array_equal(slide.read(13, 17, 100, 150), image[13:113, 17:167])


def test_region_outside_is_a_clear_error(slide_path):
    slide = gigapatch.open(slide_path)
    with pytest.raises(RegionError, match=r"outside 'odd.svs' \(level 0 is 1800x2600 pixels\)"):
        slide.read(1700, 0, 200, 200)
    with pytest.raises(RegionError, match="outside"):
        slide.read(-1, 0, 10, 10)
    with pytest.raises(InvalidArgumentError, match=r"level must be in the range \[0, 1\]"):
        slide.read(0, 0, 10, 10, level=2)
    with pytest.raises(InvalidArgumentError, match="height must be a positive integer; got 0"):
        slide.read(0, 0, 0, 10)


def test_bad_files_are_named(tmp_path, slide_path):
    (tmp_path / "empty.svs").write_bytes(b"")
    (tmp_path / "text.svs").write_text("not an image")
    data = slide_path.read_bytes()
    (tmp_path / "header.svs").write_bytes(data[:600])
    (tmp_path / "cut.svs").write_bytes(data[: len(data) // 2])
    cases = [
        (tmp_path / "missing.svs", "missing.svs' does not exist"),
        (tmp_path, "is a directory, expected an image file"),
        (tmp_path / "empty.svs", "empty.svs' is empty, expected a TIFF image"),
        (tmp_path / "text.svs", "text.svs' is not a TIFF image"),
        (tmp_path / "header.svs", "header.svs' is (corrupt|not a readable TIFF|truncated)"),
    ]
    for path, match in cases:
        with pytest.raises(SlideError, match=match):
            gigapatch.open(path)


def test_a_truncated_file_opens_and_fails_only_where_data_is_missing(tmp_path, slide_path,
                                                                     caplog):
    data = slide_path.read_bytes()
    (tmp_path / "cut.svs").write_bytes(data[: len(data) // 2])
    with caplog.at_level("WARNING", logger="gigapatch"):
        slide = gigapatch.open(tmp_path / "cut.svs")
    assert "cut.svs' is truncated: 40 of 88 segments of level 0 end past the end" in caplog.text
    assert np.array_equal(slide.read(0, 0, 256, 256), gigapatch.open(slide_path).read(0, 0, 256,
                                                                                      256))
    with pytest.raises(CorruptTileError, match=r"cut.svs': cannot decode level 0 tile \(row 6, "
                       r"column 10\): its \d+ bytes at byte \d+ end past the end of the file"):
        slide.read(1790, 2590, 10, 10)


def test_open_rejects_other_types():
    with pytest.raises(InvalidArgumentError, match="source must be a path, a NumPy or Zarr array"):
        gigapatch.open(42)


def test_reader_is_independent_of_the_tifffile_handle(slide_path):
    # the TIFF is parsed with tifffile, whose handle is closed at once: pixels come through
    # the reader's own descriptor, opened on the first read and again after each close
    reference = tifffile.imread(slide_path)
    reader = TiffReader(str(slide_path))
    assert reader._fd is None
    for y, x in [(0, 0), (300, 2580), (1790, 10)]:
        out = np.zeros((10, 20, 3), np.uint8)
        reader.read_level(0, y, x, out)
        assert np.array_equal(out, reference[y : y + 10, x : x + 20])
        fd = reader._fd
        assert fd is not None and os.path.samestat(os.fstat(fd), os.stat(slide_path))
        reader.close()
        reader.close()  # idempotent
        assert reader._fd is None
        with pytest.raises(OSError):
            os.fstat(fd)  # closed, not leaked


@pytest.mark.parametrize(("y", "x", "h", "w"), [
    (-10, -20, 50, 60), (1780, 2590, 40, 30), (-5, 100, 2000, 10), (3000, 0, 5, 5),
])
def test_read_with_fill_pads_outside_pixels(slide_path, y, x, h, w):
    slide = gigapatch.open(slide_path)
    level0 = tifffile.imread(slide_path)
    padded = np.full((1800 + 4000, 2600 + 4000, 3), 7, np.uint8)
    padded[2000:3800, 2000:4600] = level0
    expected = padded[2000 + y : 2000 + y + h, 2000 + x : 2000 + x + w]
    assert np.array_equal(slide.read(y, x, h, w, fill=7), expected)


def test_level_for_mpp_picks_the_level_within_tolerance(square_path, tmp_path):
    slide = gigapatch.open(square_path)  # mpp 0.25 and 1.0
    assert slide.level_for_mpp(0.25) == 0
    assert slide.level_for_mpp(1.05) == 1
    with pytest.raises(InvalidArgumentError, match=r"no level of 'square.svs' has mpp within 10% "
                       r"of 0.5 \(levels' mpp: 0: 0.25, 1: 1\)"):
        slide.level_for_mpp(0.5)
    with pytest.raises(InvalidArgumentError, match="mpp must be a positive finite number; got -1"):
        slide.level_for_mpp(-1)
    with pytest.raises(InvalidArgumentError, match="does not record its pixel size"):
        gigapatch.open(np.zeros((4, 4))).level_for_mpp(0.5)


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_read_regions_equals_one_read_per_region(slide_path, data):
    slide = gigapatch.open(slide_path)
    level = data.draw(st.integers(0, 1))
    lh, lw = slide.levels[level].shape
    h, w = data.draw(st.integers(1, 300)), data.draw(st.integers(1, 300))
    n = data.draw(st.integers(0, 12))
    ly = data.draw(st.lists(st.integers(-h // 2, lh - h // 2), min_size=n, max_size=n))
    lx = data.draw(st.lists(st.integers(-w // 2, lw - w // 2), min_size=n, max_size=n))
    corners = [slide.to_level0(y, x, level) for y, x in zip(ly, lx, strict=True)]
    ys, xs = [c[0] for c in corners], [c[1] for c in corners]
    got = slide.read_regions(ys, xs, h, w, level, fill=9)
    assert got.shape == (n, h, w, 3)
    for k in range(n):
        assert np.array_equal(got[k], slide.read(ys[k], xs[k], h, w, level, fill=9))


def test_read_regions_decodes_each_tile_once_and_aligned_tiles_in_place(slide_path):
    slide = gigapatch.open(slide_path)
    calls = []
    real = slide._reader._segment
    outs = [np.empty((7, 256, 256, 3), np.uint8), np.empty((2, 256, 256, 3), np.uint8)]

    def counting(level, data, plane, index, fd, out=None):
        # "in place": decoded straight into a slot of the caller's output (not a tile buffer)
        calls.append((index, out is not None and any(np.shares_memory(out, o) for o in outs)))
        return real(level, data, plane, index, fd, out=out)

    slide._reader._segment = counting
    # 4 aligned 256² patches (one tile each) and 3 overlapping unaligned ones
    ys = [0, 0, 256, 256, 100, 120, 140]
    xs = [0, 256, 0, 256, 100, 130, 160]
    out = slide.read_regions(ys, xs, 256, 256, out=outs[0])
    decoded = [index for index, _ in calls]
    assert sorted(decoded) == [0, 1, 11, 12]  # tiles of rows 0-1 x columns 0-1, once each
    assert {index for index, direct in calls if direct} == set()  # shared: none in place
    calls.clear()
    slide.read_regions([0, 512], [768, 1024], 256, 256, out=outs[1])
    assert calls == [(3, True), (2 * 11 + 4, True)]  # each decoded straight into its slot
    calls.clear()
    again = [slide.read(ys[k], xs[k], 256, 256) for k in range(7)]
    # the 4 aligned reads decode straight into their own output; the 3 unaligned ones find
    # the 4 tiles they share in the thread's tile cache: no decode again
    assert sorted(index for index, _ in calls) == [0, 1, 11, 12]
    for k in range(7):
        assert np.array_equal(out[k], again[k])


def test_tile_cache_keeps_slides_apart_and_recovers_from_a_failed_decode(slide_path, tmp_path):
    from gigapatch.sources.tilecache import TileCache
    from gigapatch.synth import synthesize

    other = gigapatch.open(synthesize(tmp_path / "other.svs", (1800, 2600), seed=9))
    mine = gigapatch.open(slide_path)
    a, b = mine.read(300, 300, 200, 200), other.read(300, 300, 200, 200)
    assert not np.array_equal(a, b)  # same tile indices, other slide: never the cached tile
    assert np.array_equal(mine.read(300, 300, 200, 200), a)
    cache = TileCache((2, 2, 1), np.uint8, capacity=0)
    assert cache.slots == 4
    tiles = [cache.take() for _ in range(4)]
    for k, t in enumerate(tiles):
        t[...] = k
        cache.put(k, t)
    fifth = cache.take()  # the oldest (key 0) is evicted to make room
    assert cache.get(0) is None and fifth is tiles[0]
    cache.give_back(fifth)  # its decode failed: free again, never stored under a key
    assert cache.take() is fifth and cache.get(1) is tiles[1]


def test_read_regions_checks_its_arguments(slide_path):
    slide = gigapatch.open(slide_path)
    with pytest.raises(RegionError, match=r"outside 'odd\.svs'"):
        slide.read_regions([0, 1700], [0, 0], 200, 200)
    with pytest.raises(InvalidArgumentError, match="ys and xs must be 1-d of equal length"):
        slide.read_regions([0, 1], [0], 10, 10)
    with pytest.raises(InvalidArgumentError, match=r"out must have shape \(1, 10, 10, 3\)"):
        slide.read_regions([0], [0], 10, 10, out=np.empty((1, 10, 10, 1), np.uint8))


def test_read_into_a_given_array(slide_path):
    slide = gigapatch.open(slide_path)
    buf = np.zeros((40, 50, 3), np.uint8)
    assert slide.read(100, 200, 40, 50, out=buf) is buf
    assert np.array_equal(buf, slide.read(100, 200, 40, 50))
    assert slide.read(-10, -10, 40, 50, fill=3, out=buf) is buf and buf[0, 0, 0] == 3
    with pytest.raises(InvalidArgumentError, match=r"out must have shape \(40, 50, 3\)"):
        slide.read(0, 0, 40, 50, out=np.zeros((40, 50), np.uint8))
