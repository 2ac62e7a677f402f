"""Files with several images: list them, pick one by index or name, default to the largest."""

import pickle

import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gigapatch
from gigapatch import testing
from gigapatch.errors import InvalidArgumentError
from gigapatch.sources import Series, describe_file
from gigapatch.sources.series import choose_series

LISTING = (r"0 'first' 600x800 \(3 levels\), 1 'second' 900x700 \(2 levels\), "
           r"2 'macro' 100x250 \(1 level\)")


@pytest.fixture(scope="module")
def several(tmp_path_factory):
    """OME-TIFF: a 600x800 pyramid, a larger 900x700 one (not first), a small macro image."""
    images = [testing.sample_rgb(600, 800, seed=1), testing.sample_rgb(900, 700, seed=2),
              testing.sample_rgb(100, 250, seed=3)]
    return testing.write_ome_tiff_series(
        tmp_path_factory.mktemp("series") / "three.ome.tif", images,
        names=["first", "second", "macro"], levels=[3, 2, 1], mpp=[0.5, 0.25, None],
        tile=128,
    )


def test_series_are_listed_and_the_largest_is_the_default(several):
    slide = gigapatch.open(several)
    assert slide.series == (
        Series(0, "first", (600, 800), 3), Series(1, "second", (900, 700), 2),
        Series(2, "macro", (100, 250), 1),
    )
    assert slide.series_index == 1
    assert slide.shape == (900, 700) and len(slide.levels) == 2
    assert slide.mpp == pytest.approx(0.25)


@pytest.mark.parametrize(("series", "index", "mpp"), [
    (0, 0, 0.5), ("first", 0, 0.5), (np.int64(1), 1, 0.25), ("second", 1, 0.25), (2, 2, None),
    ("macro", 2, None), ("MACRO", 2, None),
])
def test_choose_by_index_or_name(several, series, index, mpp):
    slide = gigapatch.open(several, series=series)
    assert slide.series_index == index
    assert slide.shape == slide.series[index].shape
    assert len(slide.levels) == slide.series[index].levels
    assert slide.mpp == (pytest.approx(mpp) if mpp else None)


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_reads_equal_tifffile_series_levels(several, data):
    index = data.draw(st.integers(0, 2), label="series")
    slide = gigapatch.open(several, series=index)
    level = data.draw(st.integers(0, len(slide.levels) - 1), label="level")
    lh, lw = slide.levels[level].shape
    h, w = data.draw(st.integers(1, lh)), data.draw(st.integers(1, lw))
    ly, lx = data.draw(st.integers(0, lh - h)), data.draw(st.integers(0, lw - w))
    with tifffile.TiffFile(several) as tif:
        expected = tif.series[index].levels[level].asarray()[ly : ly + h, lx : lx + w]
    y, x = slide.to_level0(ly, lx, level)
    assert np.array_equal(slide.read(y, x, h, w, level=level), expected)
    batch = slide.read_regions(np.array([y, y]), np.array([x, x]), h, w, level)
    assert np.array_equal(batch[1], expected)


def test_the_chosen_series_survives_pickling(several):
    slide = gigapatch.open(several, series="first")  # not the default
    again = pickle.loads(pickle.dumps(slide))
    assert again.series_index == 0 and again.shape == (600, 800)
    assert np.array_equal(again.read(10, 20, 30, 40), slide.read(10, 20, 30, 40))


@pytest.mark.parametrize(("series", "match"), [
    (3, rf"series must be an index in \[0, 2\] or a name; got 3 \(.*three.ome.tif' has: "
        rf"{LISTING}\)"),
    (-1, r"series must be an index in \[0, 2\] or a name; got -1"),
    ("label", rf"series 'label' is not in the file \(.*three.ome.tif' has: {LISTING}\)"),
    (True, r"series must be an integer index, a name or None; got True"),
    (1.0, r"series must be an integer index, a name or None; got 1.0"),
])
def test_bad_series_list_what_the_file_has(several, series, match):
    with pytest.raises(InvalidArgumentError, match=match):
        gigapatch.open(several, series=series)


def test_an_ambiguous_name_is_refused(tmp_path):
    images = [testing.sample_rgb(64, 64, seed=k) for k in range(2)]
    path = testing.write_ome_tiff_series(tmp_path / "twins.ome.tif", images, names=["x", "x"],
                                         levels=1, tile=64)
    with pytest.raises(InvalidArgumentError, match=r"series name 'x' is ambiguous, choose by "
                                                   r"index \(.*0 'x' 64x64 \(1 level\), 1 'x'"):
        gigapatch.open(path, series="x")
    assert gigapatch.open(path).series_index == 0  # equal sizes: the first


def test_svs_thumbnail_is_a_series(slide_path):
    slide = gigapatch.open(slide_path)
    assert [(s.name, s.shape, s.levels) for s in slide.series] == [
        ("Baseline", (1800, 2600), 2), ("Thumbnail", (450, 650), 1)]
    thumb = gigapatch.open(slide_path, series="thumbnail")
    assert np.array_equal(thumb.read(0, 0, 450, 650), tifffile.imread(slide_path, series=1))


def test_single_image_sources_have_one_series(tmp_path):
    path = testing.write_zarr(tmp_path / "a.zarr", testing.sample_rgb(50, 60), chunks=32)
    slide = gigapatch.open(path, series=0)
    assert slide.series == (Series(0, "a.zarr", (50, 60), 1),) and slide.series_index == 0
    with pytest.raises(InvalidArgumentError, match=r"got 1 \(.*a.zarr' has: 0 'a.zarr' 50x60"):
        gigapatch.open(path, series=1)
    with pytest.raises(InvalidArgumentError, match="series and reader apply when opening a path; "
                                                   "got series=0, reader='auto' with a ndarray"):
        gigapatch.open(np.zeros((4, 4), np.uint8), series=0)
    assert gigapatch.open(np.zeros((4, 5), np.uint8)).series == (Series(0, "array", (4, 5), 1),)


def test_describe_file_lists_the_series_of_an_opened_slide(several):
    plain = describe_file(several)
    assert set(plain) == {"path", "size", "mtime"}
    record = describe_file(several, slide=gigapatch.open(several, series="macro"))
    assert record["series_index"] == 2
    assert record["series"] == [
        {"index": 0, "name": "first", "shape": [600, 800], "levels": 3},
        {"index": 1, "name": "second", "shape": [900, 700], "levels": 2},
        {"index": 2, "name": "macro", "shape": [100, 250], "levels": 1},
    ]


@given(shapes=st.lists(st.tuples(st.integers(1, 50), st.integers(1, 50)), min_size=1,
                       max_size=6))
def test_the_default_is_the_first_with_the_most_pixels(shapes):
    available = [Series(k, f"s{k}", shape, 1) for k, shape in enumerate(shapes)]
    pixels = [h * w for h, w in shapes]
    assert choose_series(available, None, "f") == pixels.index(max(pixels))


@pytest.mark.parametrize(("asked", "index"), [("Baseline", 0), ("main", 0), ("MAIN", 0),
                                              ("thumbnail", 1), ("Macro", 2)])
def test_an_svs_main_image_answers_to_either_readers_name(asked, index):
    tifffile_names = [Series(0, "Baseline", (900, 800), 3), Series(1, "Thumbnail", (90, 80), 1),
                      Series(2, "Macro", (100, 250), 1)]
    openslide_names = [Series(0, "main", (900, 800), 3), Series(1, "thumbnail", (90, 80), 1),
                       Series(2, "macro", (100, 250), 1)]
    for available in (tifffile_names, openslide_names):
        assert choose_series(available, asked, "f.svs") == index


def test_a_real_svs_main_image_by_the_other_readers_name(tmp_path):
    from gigapatch.synth import synthesize

    path = synthesize(tmp_path / "s.svs", 1024, workers=1)
    assert gigapatch.open(path, series="main").series_index == 0  # tifffile calls it Baseline
    pytest.importorskip("openslide")
    slide = gigapatch.open(path, reader="openslide", series="Baseline")
    assert slide.series_index == 0 and slide.shape == (1024, 1024)
