"""Every supported format opens behind one Slide and reads like its reference reader."""

import pickle

import numpy as np
import pytest
import tifffile
import zarr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gigapatch
from gigapatch import testing
from gigapatch.errors import InvalidArgumentError, SlideError
from tests.helpers import openslide_region


def _tiff_reference(path, level, channels_first=False):
    a = tifffile.imread(path, series=0, level=level)
    if channels_first:
        return np.moveaxis(a, 0, -1)
    return a[..., None] if a.ndim == 2 else a


def _zarr_reference(path, level):
    node = zarr.open(path, mode="r")
    if isinstance(node, zarr.Array):
        a = node[...]
        return a[..., None] if a.ndim == 2 else a
    a = node[str(level)][...]
    return np.moveaxis(a, 0, -1) if a.ndim == 3 else a[..., None]


@pytest.fixture(scope="module")
def formats(tmp_path_factory):
    """name -> (path, reference(level), expected format, levels, channels, dtype, mpp)."""
    d = tmp_path_factory.mktemp("formats")
    rgb = testing.sample_rgb(700, 900, seed=1)
    fl = testing.sample_fluorescence(500, 600, channels=3, seed=2)
    made = {
        "ome-tiff-rgb": (testing.write_ome_tiff(d / "rgb.ome.tif", rgb),
                         lambda p, k: _tiff_reference(p, k), "ome-tiff", 3, 3, np.uint8, 0.5),
        "ome-tiff-cyx-16bit": (
            testing.write_ome_tiff(d / "fl.ome.tif", fl, channels_first=True, compression="zlib",
                                   tile=128, mpp=0.65),
            lambda p, k: _tiff_reference(p, k, True), "ome-tiff", 3, 3, np.uint16, 0.65),
        "tiff-tiled-pyramid": (testing.write_tiff(d / "pyr.tif", rgb, levels=3,
                                                  compression="jpeg"),
                               lambda p, k: _tiff_reference(p, k), "tiff", 3, 3, np.uint8, 0.5),
        "bigtiff-tiled-flat": (testing.write_tiff(d / "big.tif", rgb, tile=128, bigtiff=True,
                                                  mpp=None),
                               lambda p, k: _tiff_reference(p, k), "tiff", 1, 3, np.uint8, None),
        "tiff-stripped": (testing.write_tiff(d / "strips.tif", rgb, tile=None, rowsperstrip=16),
                          lambda p, k: _tiff_reference(p, k), "tiff", 1, 3, np.uint8, 0.5),
        "tiff-gray-16bit": (testing.write_tiff(d / "gray.tif", fl[1], tile=128, levels=2),
                            lambda p, k: _tiff_reference(p, k), "tiff", 2, 1, np.uint16, 0.5),
        "zarr-v2": (testing.write_zarr(d / "v2.zarr", rgb, zarr_format=2, chunks=128),
                    _zarr_reference, "zarr-v2", 1, 3, np.uint8, None),
        "zarr-v3-gray": (testing.write_zarr(d / "v3.zarr", fl[0], zarr_format=3, chunks=100),
                         _zarr_reference, "zarr-v3", 1, 1, np.uint16, None),
        "ome-zarr-0.4": (testing.write_ome_zarr(d / "o4.zarr", fl, version="0.4", chunks=128),
                         _zarr_reference, "ome-zarr-0.4", 3, 3, np.uint16, 0.5),
        "ome-zarr-0.5": (testing.write_ome_zarr(d / "o5.zarr", rgb, version="0.5", chunks=128,
                                                channels_first=False, mpp=0.25),
                         _zarr_reference, "ome-zarr-0.5", 3, 3, np.uint8, 0.25),
    }
    return made


NAMES = ["ome-tiff-rgb", "ome-tiff-cyx-16bit", "tiff-tiled-pyramid", "bigtiff-tiled-flat",
         "tiff-stripped", "tiff-gray-16bit", "zarr-v2", "zarr-v3-gray", "ome-zarr-0.4",
         "ome-zarr-0.5"]


@pytest.mark.parametrize("name", NAMES)
def test_opens_with_levels_channels_dtype_and_mpp(formats, name):
    path, _, fmt, n_levels, channels, dtype, mpp = formats[name]
    slide = gigapatch.open(path)
    assert slide.format == fmt
    assert len(slide.levels) == n_levels
    assert slide.channels == channels and slide.dtype == dtype
    assert slide.mpp == (pytest.approx(mpp) if mpp else None)
    h0, w0 = slide.shape
    for lvl in slide.levels:
        assert lvl.downsample == pytest.approx((h0 / lvl.shape[0], w0 / lvl.shape[1]))


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_regions_at_every_level_equal_the_reference(formats, name, data):
    path, reference, *_ = formats[name]
    slide = gigapatch.open(path)
    level = data.draw(st.integers(0, len(slide.levels) - 1), label="level")
    lh, lw = slide.levels[level].shape
    h, w = data.draw(st.integers(1, min(lh, 300))), data.draw(st.integers(1, min(lw, 300)))
    ly, lx = data.draw(st.integers(0, lh - h)), data.draw(st.integers(0, lw - w))
    y, x = slide.to_level0(ly, lx, level)
    expected = reference(path, level)[ly : ly + h, lx : lx + w]
    assert np.array_equal(slide.read(y, x, h, w, level=level), expected)


@pytest.mark.parametrize("name", ["tiff-tiled-pyramid"])
def test_generic_tiled_tiff_equals_openslide_at_every_level(formats, name):
    path = formats[name][0]
    slide = gigapatch.open(path)
    rng = np.random.default_rng(0)
    for level, lvl in enumerate(slide.levels):
        lh, lw = lvl.shape
        for _ in range(5):
            h, w = rng.integers(1, min(lh, 200), 2)
            ly, lx = rng.integers(0, lh - h), rng.integers(0, lw - w)
            y, x = slide.to_level0(int(ly), int(lx), level)
            assert np.array_equal(slide.read(y, x, int(h), int(w), level=level),
                                  openslide_region(path, y, x, h, w, level))


@pytest.mark.parametrize("name", NAMES)
def test_every_format_pickles_small_and_reads_the_same(formats, name):
    slide = gigapatch.open(formats[name][0])
    blob = pickle.dumps(slide)
    assert len(blob) < 2000
    assert np.array_equal(pickle.loads(blob).read(10, 20, 30, 40), slide.read(10, 20, 30, 40))


def test_zarr_chunk_reads_touch_only_what_they_need(formats):
    path = formats["zarr-v3-gray"][0]
    slide = gigapatch.open(path)
    store = slide._reader._arrays[0].store
    seen = []
    real_get = type(store).get

    async def counting_get(self, key, *args, **kwargs):
        if "/c/" in key or key.startswith("c/"):
            seen.append(key)
        return await real_get(self, key, *args, **kwargs)

    type(store).get = counting_get
    try:
        slide.read(10, 10, 50, 50)      # inside chunk (0, 0) of 100x100 chunks
        assert len(seen) == 1
        seen.clear()
        slide.read(150, 50, 100, 100)   # rows 1-2, columns 0-1
        assert len(set(seen)) == len(seen) == 4
    finally:
        type(store).get = real_get


def test_an_open_zarr_array_object_is_a_slide(formats):
    arr = zarr.open_array(formats["zarr-v2"][0], mode="r")
    slide = gigapatch.open(arr)
    assert np.array_equal(slide.read(5, 6, 7, 8), arr[5:12, 6:14])


def test_channels_first_arrays_need_axes():
    image = np.arange(2 * 30 * 40, dtype=np.uint16).reshape(2, 30, 40)
    slide = gigapatch.open(image, axes="cyx")
    assert slide.shape == (30, 40) and slide.channels == 2
    assert np.array_equal(slide.read(3, 4, 5, 6), np.moveaxis(image, 0, -1)[3:8, 4:10])
    # without axes a 3-D array is (h, w, C): here 2 x 30 pixels with 40 channels
    assert gigapatch.open(image).shape == (2, 30)


@pytest.mark.parametrize(("array", "kwargs", "error", "match"), [
    (np.zeros((2, 3, 4, 5, 6), np.uint8), {}, InvalidArgumentError,
     r"an image array must have 2 or 3 dimensions \(height, width\[, channels\]\); "
     r"got shape \(2, 3, 4, 5, 6\)"),
    (np.zeros((4, 4), np.complex64), {}, SlideError, "pixel type complex64 is not supported"),
    (np.zeros((4, 4), object), {}, SlideError, "pixel type object is not supported"),
    (np.zeros((0, 4)), {}, InvalidArgumentError, r"image array is empty \(shape \(0, 4\)\)"),
    (np.zeros((3, 4, 5)), {"axes": "yxz"}, InvalidArgumentError,
     "axes must name y, x and optionally c once each"),
    (np.zeros((3, 4)), {"axes": "cyx"}, InvalidArgumentError, "one per dimension of shape"),
])
def test_bad_arrays_are_named(array, kwargs, error, match):
    with pytest.raises(error, match=match):
        gigapatch.open(array, **kwargs)


def test_bad_zarr_inputs_are_named(tmp_path):
    zarr.open_group(tmp_path / "g.zarr", mode="w").create_array("a", shape=(4, 4), dtype="u1")
    with pytest.raises(SlideError, match=r"is a Zarr group without OME-Zarr multiscales "
                                         r"metadata; open one of its arrays instead \(it has: a\)"):
        gigapatch.open(tmp_path / "g.zarr")
    testing.write_zarr(tmp_path / "five.zarr", np.zeros((2, 3, 4, 5, 6), np.uint8), chunks=2)
    with pytest.raises(InvalidArgumentError, match="must have 2 or 3 dimensions"):
        gigapatch.open(tmp_path / "five.zarr")
    (tmp_path / "plain").mkdir()
    with pytest.raises(SlideError, match="is a directory, expected an image file or a Zarr"):
        gigapatch.open(tmp_path / "plain")


def test_ome_zarr_datasets_that_are_not_arrays_are_named(tmp_path):
    testing.write_ome_zarr(tmp_path / "o.zarr", testing.sample_rgb(64, 64), levels=2, chunks=32)
    group = zarr.open_group(tmp_path / "o.zarr", mode="a")
    group.create_group("sub")
    ms = group.attrs["ome"]
    ms["multiscales"][0]["datasets"][1]["path"] = "sub"
    group.attrs["ome"] = ms
    with pytest.raises(SlideError, match=r"o.zarr: OME-Zarr datasets must name one array each; "
                                         r"got \['0', 'sub'\]"):
        gigapatch.open(tmp_path / "o.zarr")


def test_tiff_with_time_or_z_planes_is_refused(tmp_path):
    tifffile.imwrite(tmp_path / "tz.ome.tif", np.zeros((3, 2, 32, 32), np.uint8), ome=True,
                     metadata={"axes": "TZYX"})
    with pytest.raises(SlideError, match="is not a 2-D slide; only channel"):
        gigapatch.open(tmp_path / "tz.ome.tif")


def test_a_corrupt_tile_is_named_when_read_and_opening_still_works(tmp_path):
    path = testing.write_tiff(tmp_path / "c.tif", testing.sample_rgb(512, 512), tile=256,
                              compression="jpeg")
    with tifffile.TiffFile(path) as tif:
        offset = tif.pages[0].dataoffsets[3]  # tile (1, 1)
    data = bytearray(path.read_bytes())
    data[offset + 2 : offset + 400] = b"\xff" * 398  # smash the JPEG header
    path.write_bytes(bytes(data))
    slide = gigapatch.open(path)
    assert slide.read(0, 0, 256, 256).shape == (256, 256, 3)  # other tiles still read
    with pytest.raises(SlideError, match=r"c.tif': cannot decode level 0 tile \(row 1, column 1\)"):
        slide.read(300, 300, 10, 10)


def test_zarr_arrays_with_x_before_y(tmp_path):
    b = np.arange(6, dtype=np.uint8).reshape(2, 3)
    z = zarr.create_array(tmp_path / "xy.zarr", shape=b.shape, dtype="u1", chunks=(2, 3))
    z[:] = b
    slide = gigapatch.open(z, axes="xy")
    assert slide.shape == (3, 2)
    assert np.array_equal(slide.read(0, 0, 3, 2)[..., 0], b.T)
