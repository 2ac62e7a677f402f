"""Vendor formats through OpenSlide: one Slide, tifffile's pixels, a clear line without it."""

import pickle
import sys

import numpy as np
import pytest
import tifffile
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

import gigapatch
from gigapatch import testing
from gigapatch.errors import InvalidArgumentError, SlideError
from gigapatch.sources.openslide import background_of, load_openslide, rgba_to_rgb

needs_openslide = pytest.mark.skipif(load_openslide() is None,
                                     reason="the openslide extra is not installed")
EXTRA = r"pip install 'gigapatch\[openslide\]'"


@pytest.fixture(scope="module")
def vmu(tmp_path_factory):
    """A Hamamatsu VMU (only OpenSlide reads it): level 0, a 4x map, a JPEG macro."""
    image = testing.sample_rgb(320, 512, seed=4)
    macro = testing.sample_rgb(60, 150, seed=5)
    path = testing.write_hamamatsu_vmu(tmp_path_factory.mktemp("vmu") / "case.vmu", image,
                                       macro=macro, mpp=0.46, magnification=20)
    return path, image


@needs_openslide
def test_openslide_reads_every_level_of_an_svs_like_tifffile(slide_path):
    tiff = gigapatch.open(slide_path, reader="tifffile")
    osl = gigapatch.open(slide_path, reader="openslide")
    assert osl.format == "openslide-aperio" and tiff.format == "svs"
    assert osl.levels == tuple(
        type(lvl)(shape=lvl.shape, downsample=lvl.downsample, tile=lvl.tile,
                  compression="unknown") for lvl in tiff.levels
    )
    assert (osl.mpp, osl.magnification) == (tiff.mpp, tiff.magnification) == (0.25, 40.0)
    assert osl.dtype == np.uint8 and osl.channels == 3
    for level, lvl in enumerate(tiff.levels):
        whole = (0, 0, *lvl.shape)
        assert np.array_equal(osl.read(*whole, level=level), tiff.read(*whole, level=level))


@needs_openslide
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_openslide_regions_and_batches_equal_tifffile(slide_path, data):
    tiff = gigapatch.open(slide_path, reader="tifffile")
    osl = gigapatch.open(slide_path, reader="openslide")
    level = data.draw(st.integers(0, len(tiff.levels) - 1), label="level")
    lh, lw = tiff.levels[level].shape
    h, w = data.draw(st.integers(1, 300), label="h"), data.draw(st.integers(1, 300), label="w")
    n = data.draw(st.integers(1, 6), label="n")
    ly = np.array(data.draw(st.lists(st.integers(-50, lh - h + 50), min_size=n, max_size=n)))
    lx = np.array(data.draw(st.lists(st.integers(-50, lw - w + 50), min_size=n, max_size=n)))
    dy, dx = tiff.levels[level].downsample
    ys, xs = np.rint(ly * dy).astype(np.int64), np.rint(lx * dx).astype(np.int64)
    expected = tiff.read_regions(ys, xs, h, w, level, fill=7)
    assert np.array_equal(osl.read_regions(ys, xs, h, w, level, fill=7), expected)
    assert np.array_equal(osl.read(int(ys[0]), int(xs[0]), h, w, level, fill=7), expected[0])


@needs_openslide
def test_openslide_slides_pickle_as_path_and_series(slide_path, vmu):
    for source, series in ((slide_path, None), (slide_path, "thumbnail"), (vmu[0], "macro")):
        slide = gigapatch.open(source, reader="openslide", series=series)
        blob = pickle.dumps(slide)
        assert len(blob) < 500  # a path and an index, not pixels or handles
        again = pickle.loads(blob)
        assert again.format == slide.format and again.series_index == slide.series_index
        assert again.levels == slide.levels
        h, w = slide.levels[-1].shape
        level = len(slide.levels) - 1
        assert np.array_equal(again.read(0, 0, h, w, level), slide.read(0, 0, h, w, level))


@needs_openslide
def test_a_vmu_file_is_detected_and_read_exactly(vmu):
    path, image = vmu
    slide = gigapatch.open(path)  # auto: not TIFF, not Zarr, OpenSlide knows it
    assert slide.format == "openslide-hamamatsu"
    assert [lvl.shape for lvl in slide.levels] == [(320, 512), (80, 128)]
    assert slide.levels[1].downsample == (4.0, 4.0)
    assert slide.mpp == pytest.approx(0.46, abs=1e-3) and slide.magnification == 20
    assert np.array_equal(slide.read(0, 0, 320, 512), image)
    assert np.array_equal(slide.read(0, 0, 80, 128, level=1), testing.pyramid(image, 3)[2])
    assert np.array_equal(slide.read(100, 200, 30, 40), image[100:130, 200:240])


@needs_openslide
def test_associated_images_are_series(vmu, slide_path):
    path, _ = vmu
    slide = gigapatch.open(path)
    assert [(s.index, s.name, s.shape, s.levels) for s in slide.series] == [
        (0, "main", (320, 512), 2), (1, "macro", (60, 150), 1)]
    assert slide.series_index == 0
    macro = gigapatch.open(path, series="macro")
    assert macro.series_index == 1 and macro.shape == (60, 150) and len(macro.levels) == 1
    decoded = np.asarray(Image.open(path.with_name("case_macro.jpg")).convert("RGB"))
    assert np.array_equal(macro.read(0, 0, 60, 150), decoded)
    thumb = gigapatch.open(slide_path, reader="openslide", series=1)
    assert np.array_equal(thumb.read(0, 0, *thumb.shape),
                          tifffile.imread(slide_path, series=1))
    with pytest.raises(InvalidArgumentError, match=r"series 'label' is not in the file \(.*"
                       r"case.vmu' has: 0 'main' 320x512 \(2 levels\), 1 'macro' 60x150 "
                       r"\(1 level\)\)"):
        gigapatch.open(path, series="label")


@needs_openslide
def test_transparent_pixels_become_the_background(vmu):
    path, image = vmu
    reader = gigapatch.open(path)._reader
    out = np.zeros((20, 30, 3), np.uint8)
    reader.read_level(0, 310, 500, out)  # OpenSlide pads outside the scan with transparency
    assert np.array_equal(out[:10, :12], image[310:, 500:])
    assert (out[10:] == 255).all() and (out[:, 12:] == 255).all()  # no background-color: white
    reader.background = background_of("102030")  # as a file's openslide.background-color sets
    reader.read_level(0, 310, 500, out)
    assert np.array_equal(out[:10, :12], image[310:, 500:])
    assert (out[10:] == [16, 32, 48]).all() and (out[:, 12:] == [16, 32, 48]).all()


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), colour=st.tuples(*[st.integers(0, 255)] * 3))
def test_compositing_matches_pillow_over_the_background(seed, colour):
    rng = np.random.default_rng(seed)
    rgba = rng.integers(0, 256, (9, 11, 4), dtype=np.uint8)
    rgba[0, :, 3], rgba[1, :, 3] = 255, 0
    background = np.array(colour, np.uint8)
    out = np.empty((9, 11, 3), np.uint8)
    rgba_to_rgb(rgba, background, out)
    assert np.array_equal(out[0], rgba[0, :, :3])  # opaque: convert("RGB")
    assert (out[1] == background).all()  # transparent: the background
    tile = Image.fromarray(rgba, "RGBA")  # what OpenSlide's get_thumbnail does
    pasted = Image.new("RGB", tile.size, tuple(colour))
    pasted.paste(tile, None, tile)
    assert np.abs(out.astype(int) - np.asarray(pasted)).max() <= 1


def test_background_colour_parsing():
    assert background_of("FF8000").tolist() == [255, 128, 0]
    for bad in (None, "", "xyz", "12345", "GGGGGG"):
        assert background_of(bad).tolist() == [255, 255, 255]


@needs_openslide
def test_auto_falls_back_to_openslide_for_tiffs_tifffile_layouts_refuse(tmp_path):
    image = testing.sample_rgb(300, 400, seed=1)
    path = tmp_path / "planar.tif"
    tifffile.imwrite(path, np.moveaxis(image, 2, 0), tile=(128, 128), photometric="rgb",
                     planarconfig="separate", compression="zlib")
    with pytest.raises(SlideError, match=r"planar\.tif': image with axes 'SYX'"):
        gigapatch.open(path, reader="tifffile")
    slide = gigapatch.open(path)
    assert slide.format == "openslide-generic-tiff"
    assert np.array_equal(slide.read(0, 0, 300, 400), image)


@needs_openslide
def test_a_damaged_tile_is_named_and_the_rest_still_reads(slide_path, tmp_path):
    path = tmp_path / "bad.svs"
    path.write_bytes(slide_path.read_bytes())
    with tifffile.TiffFile(path) as tif:
        offset = tif.pages[0].dataoffsets[0]
    data = bytearray(path.read_bytes())
    data[offset + 2 : offset + 400] = b"\xff" * 398
    path.write_bytes(bytes(data))
    slide = gigapatch.open(path, reader="openslide")
    with pytest.raises(SlideError, match=r"bad.svs': OpenSlide cannot read level 0 region "
                                         r"y=0, x=0, height=10, width=10"):
        slide.read(0, 0, 10, 10)
    good = gigapatch.open(slide_path, reader="tifffile").read(1000, 1000, 20, 20)
    assert np.array_equal(slide.read(1000, 1000, 20, 20), good)  # reopened after the error


@needs_openslide
def test_reader_argument_errors(slide_path, vmu, tmp_path):
    with pytest.raises(InvalidArgumentError, match="reader must be one of 'auto', 'tifffile', "
                                                   "'openslide'; got 'pillow'"):
        gigapatch.open(slide_path, reader="pillow")
    with pytest.raises(SlideError, match=r"case.vmu' is not a TIFF image \(reader='tifffile'"):
        gigapatch.open(vmu[0], reader="tifffile")
    (tmp_path / "notes.txt").write_text("not a slide")
    with pytest.raises(SlideError, match=r"notes\.txt' cannot be opened by OpenSlide"):
        gigapatch.open(tmp_path / "notes.txt", reader="openslide")
    with pytest.raises(SlideError, match=r"notes.txt' is not a TIFF image or Zarr store, nor a "
                                         "slide OpenSlide knows"):
        gigapatch.open(tmp_path / "notes.txt")
    with pytest.raises(InvalidArgumentError, match="series and reader apply when opening a path"):
        gigapatch.open(np.zeros((4, 4), np.uint8), reader="openslide")


def test_without_the_extra_one_line_says_what_to_install(monkeypatch, slide_path, vmu):
    monkeypatch.setitem(sys.modules, "openslide", None)  # `import openslide` now fails
    with pytest.raises(SlideError, match=rf"svs': reader 'openslide' needs OpenSlide, which is "
                                         rf"not installed: {EXTRA}$"):
        gigapatch.open(slide_path, reader="openslide")
    with pytest.raises(SlideError, match=rf"case.vmu' is not a TIFF image or Zarr store \(.*\); "
                                         rf"other slide formats .* need OpenSlide, which is not "
                                         rf"installed: {EXTRA}$"):
        gigapatch.open(vmu[0])
    assert gigapatch.open(slide_path).format == "svs"  # TIFF needs no extra
