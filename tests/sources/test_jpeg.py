"""JPEG tiles as stored: headers, tables split and spliced, standalone streams of a level's
tiles that decode to exactly tifffile's pixels (with and without ``JPEGTables``)."""

import shutil

import imagecodecs
import numpy as np
import pytest
import simplejpeg
import tifffile
from hypothesis import given
from hypothesis import strategies as st

import gigapatch
from gigapatch import testing
from gigapatch.errors import CorruptTileError, SlideError
from gigapatch.sources.jpeg import TileDecodeError, header, splice_tables, split_tables
from gigapatch.sources.tilebytes import _RUN_BYTES, _runs
from gigapatch.synth import damage_tile, synthesize

_ADOBE_YCBCR = b"\xff\xee\x00\x0eAdobe\x00\x64\x00\x00\x00\x00\x01"


def _encode(image, **kwargs):
    return bytes(imagecodecs.jpeg8_encode(image, level=90, **kwargs))


def _tifffile_tiles(path, level=0):
    """Every tile of ``level`` as tifffile decodes it, (n, th, tw, S)."""
    with tifffile.TiffFile(path) as tif:
        page = tif.series[0].levels[level].keyframe
        fh = tif.filehandle
        tiles = []
        for index, (offset, count) in enumerate(
                zip(page.dataoffsets, page.databytecounts, strict=True)):
            fh.seek(offset)
            raw = fh.read(count)  # before page.decode, which may move the file position
            pixels = page.decode(raw, index, jpegtables=page.jpegtables)[0]
            tiles.append(pixels.reshape(page.tilelength, page.tilewidth, -1))
        return np.stack(tiles), page.jpegtables is not None


def test_header_reads_frame_components_and_markers():
    image = testing.sample_rgb(48, 64, seed=1)
    head = header(_encode(image, colorspace="RGB", outcolorspace="YCBCR"))
    assert (head.frame, head.precision, head.height, head.width) == (0xC0, 8, 48, 64)
    assert head.components == (1, 2, 3)
    assert head.jfif and head.adobe is None and head.tables
    grey = header(_encode(np.ascontiguousarray(image[..., 0])))
    assert grey.components == (1,) and grey.tables


def test_split_then_splice_is_the_same_picture():
    image = testing.sample_rgb(64, 80, seed=2)
    stream = _encode(image, colorspace="RGB", outcolorspace="YCBCR", subsampling="420")
    tables, tile = split_tables(stream)
    assert tables.startswith(b"\xff\xd8") and tables.endswith(b"\xff\xd9")
    assert not header(tile).tables and not header(tile).jfif  # abbreviated, no APP0
    assert b"\xff\xdb" in tables and b"\xff\xc4" in tables and b"\xff\xc0" not in tables
    whole = splice_tables(tables, tile)
    assert len(whole) < len(stream)  # the JFIF segment is gone
    assert np.array_equal(simplejpeg.decode_jpeg(whole, strict=True),
                          simplejpeg.decode_jpeg(stream, strict=True))
    with pytest.raises(ValueError):  # the tile alone lacks its tables
        simplejpeg.decode_jpeg(tile, strict=True)


def test_malformed_streams_and_tables_are_named():
    stream = _encode(testing.sample_rgb(16, 16), colorspace="RGB")
    with pytest.raises(TileDecodeError, match="does not start with a JPEG start-of-image"):
        header(b"GIF89a" + stream)
    with pytest.raises(TileDecodeError, match="runs past its end"):
        header(stream[:30])
    with pytest.raises(TileDecodeError, match="no frame header before its scan"):
        header(b"\xff\xd8\xff\xda\x00\x02")
    with pytest.raises(TileDecodeError, match="JPEGTables tag is not a JPEG table spec"):
        splice_tables(b"\xff\xd8\xff\xdb", stream)
    with pytest.raises(TileDecodeError, match="does not start with a JPEG start-of-image"):
        splice_tables(b"\xff\xd8\xff\xd9", stream[2:])


@pytest.fixture(scope="module")
def jpeg_files(tmp_path_factory):
    """Tiled JPEG TIFFs by name: complete streams, abbreviated ones (YCbCr 4:2:0, Aperio's RGB
    without a colour marker, YCbCr 4:4:4, grey), with edge tiles."""
    folder = tmp_path_factory.mktemp("jpeg")
    image = testing.sample_rgb(500, 700, seed=5)
    return {
        "complete": synthesize(folder / "c.svs", (600, 700), seed=2),
        "tables": synthesize(folder / "t.svs", (600, 700), seed=2, jpeg_tables=True),
        "rgb": testing.write_abbreviated_jpeg(folder / "r.tif", image, colorspace="rgb"),
        "ycbcr": testing.write_abbreviated_jpeg(folder / "y.tif", image, colorspace="ycbcr"),
        "grey": testing.write_abbreviated_jpeg(folder / "g.tif", image[..., 1]),
    }


@pytest.mark.parametrize("name", ["complete", "tables", "rgb", "ycbcr", "grey"])
def test_standalone_tiles_decode_to_tifffiles_pixels_bit_for_bit(jpeg_files, name):
    path = jpeg_files[name]
    expected, has_tables = _tifffile_tiles(path)
    assert has_tables == (name != "complete")
    slide = gigapatch.open(path)
    assert slide.jpeg_problem(0) is None
    streams = slide.jpeg_tiles(0, range(len(expected)))
    colorspace = "GRAY" if expected.shape[-1] == 1 else "RGB"
    for stream, tile in zip(streams, expected, strict=True):
        assert stream is not None and header(stream).tables  # standalone
        assert np.array_equal(simplejpeg.decode_jpeg(stream, colorspace=colorspace,
                                                     strict=True), tile)
        assert np.array_equal(imagecodecs.jpeg8_decode(stream).reshape(tile.shape), tile)
    # and what the slide reads where the tiles lie inside the image
    th, tw = slide.levels[0].tile
    assert np.array_equal(slide.read(th, tw, th, tw).reshape(expected[0].shape),
                          expected[slide.levels[0].shape[1] // tw + 2])


def test_rgb_tiles_need_the_spliced_colour_marker(jpeg_files):
    # without its Adobe marker a stream of RGB components decodes as YCbCr: wrong pixels
    slide = gigapatch.open(jpeg_files["rgb"])
    stream = slide.jpeg_tiles(0, [4])[0]
    assert header(stream).adobe == 0
    bare = stream.replace(b"\xff\xee\x00\x0eAdobe\x00\x64\x00\x00\x00\x00\x00", b"")
    assert len(bare) == len(stream) - 16
    assert not np.array_equal(imagecodecs.jpeg8_decode(bare), _tifffile_tiles(
        jpeg_files["rgb"])[0][4])


def test_tiles_of_every_level_and_the_same_pixels_with_or_without_tables(jpeg_files):
    complete = gigapatch.open(jpeg_files["complete"])
    tables = gigapatch.open(jpeg_files["tables"])
    for level in range(len(complete.levels)):
        n = len(_tifffile_tiles(jpeg_files["complete"], level)[0])
        a, b = complete.jpeg_tiles(level, range(n)), tables.jpeg_tiles(level, range(n))
        for x, y in zip(a, b, strict=True):
            assert np.array_equal(simplejpeg.decode_jpeg(x), simplejpeg.decode_jpeg(y))


def _tiff(path, image, **kwargs):
    tifffile.imwrite(path, image, photometric="rgb", metadata=None, **kwargs)
    return gigapatch.open(path)


def test_levels_whose_tiles_cannot_pass_say_why(tmp_path):
    image = testing.sample_rgb(256, 256, seed=3)
    assert _tiff(tmp_path / "z.tif", image, tile=(128, 128), compression="zlib").jpeg_problem(
        0) == "level 0 is stored with adobe_deflate compression, not JPEG"
    assert "stored with lzw compression, not JPEG" in _tiff(
        tmp_path / "l.tif", image, tile=(128, 128), compression="lzw").jpeg_problem(0)
    strips = _tiff(tmp_path / "s.tif", image, rowsperstrip=64, compression="jpeg")
    assert strips.jpeg_problem(0) == "level 0 is stored in strips, not tiles"
    with pytest.raises(SlideError, match="level 0 is stored in strips, not tiles"):
        strips.jpeg_tiles(0, [0])
    array = gigapatch.open(image)
    assert array.jpeg_problem(0) == ("'array' is a array source, not a TIFF of JPEG tiles "
                                     "read with tifffile")
    with pytest.raises(SlideError, match="not a TIFF of JPEG tiles"):
        array.jpeg_tiles(0, [0])
    zarr_slide = gigapatch.open(testing.write_zarr(tmp_path / "a.zarr", image))
    assert "is a zarr-v3 source, not a TIFF of JPEG tiles" in zarr_slide.jpeg_problem(0)


def test_rgb_tiles_whose_own_marker_says_ycbcr_cannot_pass(tmp_path):
    # the TIFF says RGB (tifffile decodes without colour transform) and the stream's Adobe
    # marker says YCbCr: a standalone stream cannot carry both
    image = testing.sample_rgb(128, 128, seed=4)
    tiles = []
    for y in (0, 64):
        for x in (0, 64):
            stream = _encode(np.ascontiguousarray(image[y : y + 64, x : x + 64]),
                             colorspace="RGB", outcolorspace="RGB")
            tables, tile = split_tables(stream)
            tiles.append(tile[:2] + _ADOBE_YCBCR + tile[2:])
    path = tmp_path / "a.tif"
    tifffile.imwrite(path, iter(tiles), shape=(128, 128, 3), dtype=np.uint8, tile=(64, 64),
                     compression="jpeg", jpegtables=tables, photometric="rgb",
                     subsampling=(1, 1), compressionargs={"outcolorspace": "rgb"},
                     metadata=None)
    assert gigapatch.open(path).jpeg_problem(0) == (
        "the tiles of level 0 carry an Adobe marker saying YCbCr where the TIFF says RGB: "
        "one stream cannot say both")


def test_tiles_whose_frame_is_not_the_tile_cannot_pass(tmp_path):
    image = testing.sample_rgb(64, 64, seed=6)
    small = _encode(np.ascontiguousarray(image[:32, :32]), colorspace="RGB",
                    outcolorspace="YCBCR")
    path = tmp_path / "a.tif"
    tifffile.imwrite(path, iter([small] * 4), shape=(128, 128, 3), dtype=np.uint8,
                     tile=(64, 64), compression="jpeg", photometric="rgb", metadata=None)
    assert gigapatch.open(path).jpeg_problem(0) == (
        "the JPEG frames of level 0 are 32x32 pixels, not its 64x64 tiles")


def test_a_truncated_tile_is_a_corrupt_tile_not_a_stream(tmp_path, jpeg_files):
    path = damage_tile(shutil.copy(jpeg_files["tables"], tmp_path / "d.svs"), 0, 1, 2,
                       how="truncate")
    slide = gigapatch.open(path)
    across = -(-700 // 256)
    good = slide.jpeg_tiles(0, [0, 1])
    assert all(s is not None for s in good)
    with pytest.raises(CorruptTileError, match=r"\(row 1, column 2\): its JPEG stream has no "
                                               r"end marker \(truncated\)"):
        slide.jpeg_tiles(0, [0, across + 2])
    path = damage_tile(shutil.copy(jpeg_files["tables"], tmp_path / "z.svs"), 0, 0, 1,
                       how="zero-count")
    with pytest.raises(CorruptTileError, match=r"\(row 0, column 1\): its byte count is 0"):
        gigapatch.open(path).jpeg_tiles(0, [1])


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 5 << 20)), max_size=40))
def test_runs_cover_every_tile_once_back_to_back_and_bounded(layout):
    # (gap before the tile: 0 back to back, 3 sparse; its byte count)
    offsets, counts, at = [], [], 1000
    for gap, count in layout:
        if gap == 3:
            offsets.append(0)
            counts.append(0)
            continue
        at += gap
        offsets.append(at)
        counts.append(count)
        at += count
    offsets, counts = np.asarray(offsets, np.int64), np.asarray(counts, np.int64)
    runs = _runs(offsets, counts)
    assert [k for a, b in runs for k in range(a, b)] == list(range(len(offsets)))
    for a, b in runs:
        assert b > a
        assert all(offsets[k + 1] == offsets[k] + counts[k] for k in range(a, b - 1))
        assert b - a == 1 or offsets[b - 1] + counts[b - 1] - offsets[a] <= _RUN_BYTES
        assert b - a == 1 or counts[a:b].min() > 0  # a sparse tile stands alone


def test_tiles_in_any_order_and_repeated_are_the_same_streams(jpeg_files):
    slide = gigapatch.open(jpeg_files["tables"])
    n = 9
    forward = slide.jpeg_tiles(0, range(n))
    assert slide.jpeg_tiles(0, list(range(n))[::-1]) == forward[::-1]
    assert slide.jpeg_tiles(0, [3, 3, 0]) == [forward[3], forward[3], forward[0]]
    assert slide.jpeg_tiles(0, []) == []
