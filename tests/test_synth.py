import numpy as np
import pytest
import tifffile

from gigapatch.errors import InvalidArgumentError
from gigapatch.sources.jpeg import header
from gigapatch.synth import pyramid_shapes, synthesize
from tests.helpers import openslide_region


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        ((1024, 1024), [(1024, 1024)]),
        ((2048, 2048), [(2048, 2048), (512, 512)]),
        ((8192, 8192), [(8192, 8192), (2048, 2048), (512, 512)]),
        ((32768, 32768), [(32768, 32768), (8192, 8192), (2048, 2048), (512, 512)]),
        ((1800, 2600), [(1800, 2600), (450, 650)]),
    ],
)
def test_pyramid_shapes_quarter_each_level_down_to_1024(shape, expected):
    assert pyramid_shapes(*shape) == expected


def test_layout_is_aperio_svs(square_path):
    with tifffile.TiffFile(square_path) as tif:
        assert tif.is_svs
        pages = tif.pages
        assert len(pages) == 3  # level 0, thumbnail, level 1
        assert pages[0].is_tiled and pages[0].tile == (256, 256)
        assert pages[0].compression == tifffile.COMPRESSION.JPEG
        # RGB passed in; tifffile stores JPEG as YCbCr 4:2:0, as scanners do
        assert pages[0].photometric == tifffile.PHOTOMETRIC.YCBCR
        assert not pages[1].is_tiled and max(pages[1].shape[:2]) <= 768
        assert pages[2].is_tiled and pages[2].shape == (512, 512, 3)
        for page in pages:
            assert page.description.startswith("Aperio Image Library")
        assert "|AppMag = 40|MPP = 0.25" in pages[0].description
        assert pages[0].resolutionunit == tifffile.RESUNIT.CENTIMETER
        assert pages[0].resolution == pytest.approx((40000, 40000))
        assert [lvl.shape for lvl in tif.series[0].levels] == [(2048, 2048, 3), (512, 512, 3)]


def test_a_20x_slide_records_its_magnification(tmp_path):
    path = synthesize(tmp_path / "20x.svs", 512, mpp=0.5)
    with tifffile.TiffFile(path) as tif:
        assert "|AppMag = 20|MPP = 0.5" in tif.pages[0].description
    openslide = pytest.importorskip("openslide")
    with openslide.OpenSlide(str(path)) as osr:
        assert osr.properties["openslide.objective-power"] == "20"
        assert float(osr.properties["openslide.mpp-x"]) == 0.5


def test_same_seed_same_bytes_other_seed_other_pixels(tmp_path):
    a = synthesize(tmp_path / "a.tif", 512, seed=7)
    b = synthesize(tmp_path / "b.tif", 512, seed=7)
    c = synthesize(tmp_path / "c.tif", 512, seed=8)
    assert a.read_bytes() == b.read_bytes()
    assert not np.array_equal(tifffile.imread(a), tifffile.imread(c))


def test_parallel_rendering_does_not_change_bytes(tmp_path):
    one = synthesize(tmp_path / "one.tif", 1024, seed=2, workers=1)
    four = synthesize(tmp_path / "four.tif", 1024, seed=2, workers=4)
    assert one.read_bytes() == four.read_bytes()


def test_tissue_covers_about_forty_percent_and_looks_like_he(square_path):
    level1 = tifffile.imread(square_path, series=0, level=1).astype(np.float32)
    tissue = level1.mean(axis=-1) < 220
    assert 0.30 <= tissue.mean() <= 0.50
    background = level1[~tissue]
    assert background.mean() > 230  # near-white glass
    pixels = level1[tissue]
    red, green, blue = pixels[:, 0].mean(), pixels[:, 1].mean(), pixels[:, 2].mean()
    assert red > green and blue > green  # pinks and purples: green is the absorbed channel
    darkest = tifffile.imread(square_path).min(axis=-1)
    assert (darkest < 110).mean() > 0.002  # nuclei-like dark dots exist


def test_lower_levels_are_box_averages_of_the_level_above(square_path):
    with tifffile.TiffFile(square_path) as tif:
        level0 = tif.series[0].levels[0].asarray().astype(np.float32)
        level1 = tif.series[0].levels[1].asarray().astype(np.float32)
    boxed = level0.reshape(512, 4, 512, 4, 3).mean(axis=(1, 3))
    # both are JPEG-compressed: equal up to codec error
    assert np.abs(boxed - level1).mean() < 3.0


@pytest.mark.parametrize("slide", ["square", "odd"])
def test_openslide_and_tiffslide_agree_with_tifffile_on_every_level(slide, square_path, slide_path):
    tiffslide = pytest.importorskip("tiffslide")
    path = {"square": square_path, "odd": slide_path}[slide]
    with tiffslide.TiffSlide(path) as ts, tifffile.TiffFile(path) as tif:
        levels = tif.series[0].levels
        assert ts.level_count == len(levels)
        for k, level in enumerate(levels):
            ref = level.asarray()
            h, w = ref.shape[:2]
            assert np.array_equal(openslide_region(path, 0, 0, h, w, level=k), ref)
            assert np.array_equal(np.asarray(ts.read_region((0, 0), k, (w, h)))[..., :3], ref)
    openslide = pytest.importorskip("openslide")
    with openslide.OpenSlide(str(path)) as osr:
        assert osr.properties["openslide.vendor"] == "aperio"
        assert float(osr.properties["openslide.mpp-x"]) == pytest.approx(0.25)
        assert "thumbnail" in osr.associated_images


def test_jpeg_tables_writes_aperios_abbreviated_tiles_with_the_same_pixels(tmp_path, slide_path):
    # slide_path: (1800, 2600), seed 3, complete streams; edge tiles on both levels
    path = synthesize(tmp_path / "t.svs", (1800, 2600), seed=3, jpeg_tables=True)
    assert synthesize(tmp_path / "u.svs", (1800, 2600), seed=3, jpeg_tables=True,
                      workers=1).read_bytes() == path.read_bytes()
    assert path.stat().st_size < slide_path.stat().st_size  # one copy of the tables
    with tifffile.TiffFile(path) as tif, tifffile.TiffFile(slide_path) as ref:
        assert tif.is_svs and len(tif.pages) == len(ref.pages) == 3
        for page, other in zip(tif.pages, ref.pages, strict=True):
            assert page.photometric == other.photometric == tifffile.PHOTOMETRIC.YCBCR
            assert (page.jpegtables is not None) == page.is_tiled  # the thumbnail: strips
            assert np.array_equal(page.asarray(), other.asarray())
            if page.is_tiled:
                fh = tif.filehandle
                fh.seek(page.dataoffsets[5])
                tile = header(fh.read(page.databytecounts[5]))
                assert not tile.tables and not tile.jfif  # abbreviated, no APP0
                assert (tile.height, tile.width) == page.tile
    tiffslide = pytest.importorskip("tiffslide")
    with tiffslide.TiffSlide(path) as ts:
        ref = tifffile.imread(slide_path)
        assert np.array_equal(openslide_region(path, 0, 0, 1800, 2600), ref)
        assert np.array_equal(np.asarray(ts.read_region((0, 0), 0, (2600, 1800)))[..., :3], ref)


def test_synth_cli_writes_jpeg_tables_on_request(tmp_path, capsys):
    from gigapatch.cli import main

    assert main(["synth", str(tmp_path / "a.svs"), "--size", "512", "--jpeg-tables"]) == 0
    assert main(["synth", str(tmp_path / "b.svs"), "--size", "512"]) == 0
    assert "wrote" in capsys.readouterr().out
    with tifffile.TiffFile(tmp_path / "a.svs") as a, tifffile.TiffFile(tmp_path / "b.svs") as b:
        assert a.pages[0].jpegtables is not None and b.pages[0].jpegtables is None


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"size": 100}, "size must be at least 256"),
        ({"size": 512, "tile": 200}, "tile must be a multiple of 16"),
        ({"size": 512, "tile": 8}, "tile must be at least 16"),
        ({"size": 512, "seed": -1}, "seed must be at least 0"),
        ({"size": 512, "mpp": 0}, "mpp must be a positive finite number"),
        ({"size": "big"}, "size must be an integer"),
        ({"size": 512, "jpeg_tables": 1}, "jpeg_tables must be True or False; got 1"),
    ],
)
def test_bad_arguments_are_named(tmp_path, kwargs, match):
    with pytest.raises(InvalidArgumentError, match=match):
        synthesize(tmp_path / "x.tif", **kwargs)
    assert not (tmp_path / "x.tif").exists()
