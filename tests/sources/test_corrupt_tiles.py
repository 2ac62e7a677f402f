"""Corrupt tiles are errors naming the tile, never pixels — warnings of libjpeg included."""

import pickle
import shutil

import imagecodecs
import numpy as np
import pytest
import tifffile

import gigapatch
from gigapatch import testing
from gigapatch.errors import CorruptTileError, InvalidArgumentError, SlideError
from gigapatch.synth import DAMAGES, damage_tile

# slide_path: 1800x2600, 256-px tiles (8 rows, 11 columns at level 0)
REASONS = {
    "entropy": r"Corrupt JPEG data: premature end of data segment",
    "flip": r"Corrupt JPEG data: \d+ extraneous bytes before marker 0xd9",
    "truncate": r"Premature end of JPEG file",
    "past-eof": r"its \d+ bytes at byte \d+ end past the end of the file \(\d+ bytes\)",
    "zero-count": r"its byte count is 0 \(data at byte \d+\)",
}


def _tile_bytes(path, level, index):
    with tifffile.TiffFile(path) as tif:
        page = tif.series[0].levels[level].keyframe
        offset, count = page.dataoffsets[index], page.databytecounts[index]
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(count)


@pytest.fixture(scope="module", params=DAMAGES)
def damaged(request, slide_path, tmp_path_factory):
    """(how, path): a copy of slide_path whose level-0 tile (row 2, column 3) is damaged."""
    path = tmp_path_factory.mktemp("damaged") / f"{request.param}.svs"
    shutil.copy(slide_path, path)
    return request.param, damage_tile(path, 0, 2, 3, how=request.param)


def test_each_damage_is_an_error_naming_file_tile_and_reason(damaged, slide_path):
    how, path = damaged
    slide = gigapatch.open(path)
    pattern = (rf"{how}.svs': cannot decode level 0 tile \(row 2, column 3\): .*"
               rf"{REASONS[how]}")
    with pytest.raises(CorruptTileError, match=pattern) as info:
        slide.read(2 * 256 + 10, 3 * 256 + 20, 30, 30)
    err = info.value
    assert (err.path, err.level, err.row, err.column) == (str(path), 0, 2, 3)
    assert isinstance(err, SlideError) and isinstance(err, OSError)
    # a region spanning the tile (copied from the cache path) and one exactly the tile
    # (decoded straight into the output) fail alike; so does OpenSlide's read_region
    with pytest.raises(CorruptTileError, match=r"\(row 2, column 3\)"):
        slide.read(2 * 256 - 50, 3 * 256 - 50, 300, 300)
    with pytest.raises(CorruptTileError, match=r"\(row 2, column 3\)"):
        slide.read_regions([2 * 256], [3 * 256], 256, 256)
    with pytest.raises(CorruptTileError, match=r"\(row 2, column 3\)"):
        slide.read_region((3 * 256, 2 * 256), 0, (256, 256))
    # the other tiles still read, with the right pixels
    reference = gigapatch.open(slide_path)
    for y, x in [(0, 0), (2 * 256, 4 * 256), (3 * 256, 3 * 256)]:
        assert np.array_equal(slide.read(y, x, 256, 256), reference.read(y, x, 256, 256))


def test_the_error_survives_pickling(damaged):
    _, path = damaged
    with pytest.raises(CorruptTileError) as info:
        gigapatch.open(path).read(2 * 256, 3 * 256, 256, 256)
    back = pickle.loads(pickle.dumps(info.value))
    assert type(back) is CorruptTileError and str(back) == str(info.value)
    assert (back.path, back.level, back.row, back.column, back.reason) == (
        info.value.path, 0, 2, 3, info.value.reason)


@pytest.mark.parametrize("how", ["entropy", "flip"])
def test_libjpeg_only_warns_about_these_tiles(tmp_path, slide_path, how):
    # the damage these tests rely on is the kind the issue is about: a plain decode returns
    # pixels (imagecodecs swallows libjpeg's warning), different from the tile's
    path = damage_tile(shutil.copy(slide_path, tmp_path / "d.svs"), 0, 2, 3, how=how)
    broken = imagecodecs.jpeg8_decode(_tile_bytes(path, 0, 2 * 11 + 3))
    good = imagecodecs.jpeg8_decode(_tile_bytes(slide_path, 0, 2 * 11 + 3))
    assert broken.shape == good.shape and not np.array_equal(broken, good)


def test_a_damaged_lower_level_tile_is_named_with_its_level(tmp_path, square_path):
    path = damage_tile(shutil.copy(square_path, tmp_path / "l1.svs"), 1, 1, 0)
    slide = gigapatch.open(path)
    assert slide.read(0, 0, 4, 4, level=0).shape == (4, 4, 3)
    with pytest.raises(CorruptTileError, match=r"level 1 tile \(row 1, column 0\)"):
        slide.read(4 * 300, 0, 10, 10, level=1)


def test_damage_tile_checks_its_arguments(tmp_path, slide_path):
    path = shutil.copy(slide_path, tmp_path / "d.svs")
    with pytest.raises(InvalidArgumentError, match="how must be one of entropy, flip"):
        damage_tile(path, how="melt")
    with pytest.raises(InvalidArgumentError, match=r"tile \(row 8, column 0\) is outside level 0"):
        damage_tile(path, 0, 8, 0)
    with pytest.raises(InvalidArgumentError, match="level must be below 2; got 5"):
        damage_tile(path, 5)


@pytest.mark.parametrize("colorspace", ["rgb", "ycbcr", "grey"])
def test_aperio_abbreviated_streams_decode_as_tifffile_does(tmp_path, colorspace):
    # shared JPEGTables and no JFIF/Adobe marker: the tables and (for RGB) the colour
    # transform are spliced in; without the splice the RGB tiles decode as YCbCr
    image = testing.sample_rgb(500, 700, seed=2)
    if colorspace == "grey":
        path = testing.write_abbreviated_jpeg(tmp_path / "a.tif", image[..., 1])
    else:
        path = testing.write_abbreviated_jpeg(tmp_path / "a.tif", image, colorspace=colorspace)
    slide = gigapatch.open(path)
    got = slide.read(0, 0, 500, 700)
    expected = tifffile.imread(path)
    assert np.array_equal(got.reshape(expected.shape), expected)
    source = image[..., 1:2] if colorspace == "grey" else image
    assert np.abs(got.astype(int) - source).mean() < 4  # close to the picture, not YCbCr


def test_jpeg_strips_decode_and_a_cut_strip_is_named(tmp_path):
    image = testing.sample_rgb(300, 200, seed=4)
    path = tmp_path / "s.tif"
    tifffile.imwrite(path, image, rowsperstrip=64, compression="jpeg", photometric="rgb")
    slide = gigapatch.open(path)
    assert np.array_equal(slide.read(0, 0, 300, 200), tifffile.imread(path))
    with tifffile.TiffFile(path, mode="r+") as tif:
        counts = list(tif.pages[0].databytecounts)
        counts[2] //= 2
        tif.pages[0].tags["StripByteCounts"].overwrite(counts)
    slide = gigapatch.open(path)
    assert slide.read(0, 0, 128, 200).shape == (128, 200, 3)
    with pytest.raises(CorruptTileError, match=r"level 0 tile \(row 2, column 0\): .*Premature"):
        slide.read(130, 0, 10, 10)


def test_short_uncompressed_and_sparse_segments(tmp_path):
    image = testing.sample_rgb(256, 512, seed=5)
    path = testing.write_tiff(tmp_path / "raw.tif", image, tile=256, compression=None)
    with tifffile.TiffFile(path, mode="r+") as tif:
        page = tif.pages[0]
        counts, offsets = list(page.databytecounts), list(page.dataoffsets)
        counts[0] -= 100
        page.tags["TileByteCounts"].overwrite(counts)
    with pytest.raises(CorruptTileError, match=r"\(row 0, column 0\): it holds 196508 bytes, "
                                               r"its pixels need 196608"):
        gigapatch.open(path).read(0, 0, 10, 10)
    with tifffile.TiffFile(path, mode="r+") as tif:  # offset and count 0: never written
        page = tif.pages[0]
        page.tags["TileByteCounts"].overwrite([0, counts[1]])
        page.tags["TileOffsets"].overwrite([0, offsets[1]])
    slide = gigapatch.open(path)
    assert not slide.read(0, 0, 256, 256).any()
    assert np.array_equal(slide.read(0, 256, 256, 256), image[:, 256:])
