import subprocess
import sys

import numpy as np
import pytest
import tifffile
import zarr

from gigapatch.cli import main
from gigapatch.store import PatchStore
from tests.helpers import openslide_region
from tests.store.sample import make_unfinished_store


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def extract(capsys, slide, out, *flags):
    """``gigapatch extract SLIDE -o OUT FLAGS... --quiet``."""
    return run(capsys, "extract", slide, "-o", out, *flags, "--quiet")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The real demo, as a user runs it (8192² slide, 299² grid)."""
    out = tmp_path_factory.mktemp("demo")
    code = main(["demo", "--out", str(out), "--quiet"])
    assert code == 0
    return out


def test_demo_store_has_the_nodes_and_attrs_of_the_design(demo):
    group = zarr.open_group(demo / "demo-patches.zarr", mode="r")
    assert set(group.keys()) == {"images", "coords", "slide", "label", "done", "tissue",
                                 "status"}
    n = group["images"].shape[0]
    # 299² at 20x (level 0 of the 40x slide, downsampled 2x) from tissue only: about 40% of the
    # 13 x 13 grid cells of the 4096² image the slide is at 20x
    assert group["images"].shape == (n, 299, 299, 3)
    assert 0.25 * (4096 // 299) ** 2 < n < 0.6 * (4096 // 299) ** 2
    assert (group["tissue"][:] >= 0.5).all()
    assert group["images"].dtype == np.uint8
    assert group["coords"].shape == (n, 2) and group["slide"].shape == (n,)
    assert group["label"][:].tolist() == [-1] * n and group["done"][:].all()
    attrs = group.attrs["gigapatch"]
    assert attrs["format"] == 2 and attrs["plan"]["size"] == [299, 299]
    assert attrs["sources"][0]["fingerprint"].startswith("sha256:")
    assert attrs["plan"]["mpp"] == 0.5 and attrs["plan"]["min_tissue"] == 0.5
    source = attrs["sources"][0]
    assert source["path"].endswith("demo-slide.svs") and source["mpp"] == 0.25
    assert (source["level"], source["factor"], source["target_mpp"]) == (0, 2.0, 0.5)
    for key in ("size", "mtime", "level", "downsample", "shape", "label"):
        assert key in source
    assert PatchStore(demo / "demo-patches.zarr").verify() == []


def test_demo_patches_equal_openslide_read_region(demo):
    store = PatchStore(demo / "demo-patches.zarr")
    rng = np.random.default_rng(0)
    for i in rng.choice(len(store), size=40, replace=False):
        y, x = store.coords[i]
        region = openslide_region(demo / "demo-slide.svs", y, x, 598, 598).astype(np.int64)
        expected = np.rint(region.reshape(299, 2, 299, 2, 3).sum(axis=(1, 3)) / 4)
        assert np.array_equal(store[int(i)], expected.astype(np.uint8)), (i, y, x)


def test_demo_slide_is_a_real_pyramid_compressed_like_a_scan(demo):
    path = demo / "demo-slide.svs"
    with tifffile.TiffFile(path) as tif:
        shapes = [lvl.shape for lvl in tif.series[0].levels]
    assert shapes == [(8192, 8192, 3), (2048, 2048, 3), (512, 512, 3)]
    ratio = 8192 * 8192 * 3 / path.stat().st_size
    assert 10 <= ratio <= 20


def test_demo_prints_a_summary(tmp_path, capsys):
    code, out, _ = run(capsys, "demo", "--out", tmp_path, "--size", 1024, "--patch", 256, "--quiet")
    assert code == 0
    for word in ("slide", "40x (0.25 um/px)", "of 256x256 at 20x (0.5 um/px, read at level 0 "
                 "and downsampled) from tissue only", "patches/s",
                 "store", "B)", str(tmp_path)):
        assert word in out
    # running it again replaces its own outputs
    assert run(capsys, "demo", "--out", tmp_path, "--size", 2048, "--quiet")[0] == 0


def test_synth_info_extract_verify(tmp_path, capsys):
    slide = tmp_path / "s.svs"
    code, out, _ = run(capsys, "synth", slide, "--size", 1300, "--tile", 128, "--seed", 4)
    assert code == 0 and "levels 1300x1300 325x325" in out
    code, out, _ = run(capsys, "info", slide)
    assert code == 0 and "format    svs" in out and "128x128" in out and "mpp       0.25" in out
    code, out, _ = extract(capsys, slide, tmp_path / "p.zarr", "--size", 300, "--stride", 200,
                           "--workers", 2)
    assert code == 0 and "wrote 36 patches of 300x300 from 1 slide(s)" in out
    code, out, _ = run(capsys, "info", tmp_path / "p.zarr")
    assert code == 0 and "patches   36 of 300x300x3 uint8" in out and "1/1 done" in out
    code, out, _ = run(capsys, "verify", tmp_path / "p.zarr")
    assert code == 0 and "OK, 36 patches" in out
    code, out, _ = extract(capsys, slide, tmp_path / "p.zarr", "--size", 64, "--level", 1,
                           "--overwrite")
    assert code == 0 and "wrote 25 patches of 64x64" in out


@pytest.fixture(scope="module")
def small_slide(tmp_path_factory):
    from gigapatch.synth import synthesize

    return synthesize(tmp_path_factory.mktemp("cli") / "small.svs", 512)


@pytest.mark.parametrize(
    ("args", "code", "match"),
    [
        (["extract", "{missing}", "-o", "{out}", "--size", "64"], 1, "missing.svs' does not exist"),
        (["extract", "{text}", "-o", "{out}", "--size", "64"], 1, "notes.svs' is not a TIFF image"),
        (
            ["extract", "{slide}", "-o", "{out}", "--size", "600"],
            2,
            "size 600x600 does not fit in 'small.svs' at level 0 (512x512 pixels)",
        ),
        (
            ["extract", "{slide}", "-o", "{out}", "--size", "0"],
            2,
            "argument --size: expected a positive integer, got '0'",
        ),
        (
            ["extract", "{slide}", "-o", "{out}", "--size", "-5"],
            2,
            "argument --size: expected a positive integer, got '-5'",
        ),
        (
            ["extract", "{slide}", "-o", "{existing}", "--size", "64"],
            1,
            "existing.zarr' already exists; pass overwrite=True (--overwrite) to replace it",
        ),
        (
            ["extract", "{slide}", "-o", "{out}", "--size", "64", "--level", "3"],
            2,
            "level must be in the range [0, 0] for 'small.svs'; got 3",
        ),
        (["extract", "{slide}", "-o", "{out}"], 2, "the following arguments are required: --size"),
        (["extract", "{slide}", "-o", "{out}", "--size", "64", "--codec", "jpeg:101"], 2,
         "codec must be one of lz4, zstd, zstd-3, none, jpeg, jpeg:QUALITY (QUALITY an integer "
         "from 1 to 100; jpeg is jpeg:90) or jpeg:source; got 'jpeg:101'"),
        (["extract", "{slide}", "--dry-run", "--size", "64", "--codec", "gzip"], 2,
         "or jpeg:source; got 'gzip'"),
        (["info", "{missing}"], 1, "missing.svs' does not exist"),
        (["verify", "{missing}"], 1, "missing.svs' does not exist"),
        (["synth", "{out}", "--tile", "100"], 2, "tile must be a multiple of 16; got 100"),
    ],
)
def test_bad_input_is_one_line_and_a_nonzero_exit(tmp_path, capsys, small_slide, args, code, match):
    (tmp_path / "notes.svs").write_text("hello")
    (tmp_path / "existing.zarr").mkdir()
    (tmp_path / "existing.zarr" / "keep.txt").write_text("keep")
    names = {
        "missing": tmp_path / "missing.svs",
        "text": tmp_path / "notes.svs",
        "slide": small_slide,
        "out": tmp_path / "out.zarr",
        "existing": tmp_path / "existing.zarr",
    }
    result, _, err = run(capsys, *[a.format(**names) for a in args])
    assert result == code
    assert err.count("\n") == 1 and match in err and "Traceback" not in err
    assert err.startswith("gigapatch ")
    assert not (tmp_path / "out.zarr").exists()
    assert (tmp_path / "existing.zarr" / "keep.txt").read_text() == "keep"


def test_version_and_help_exit_zero(capsys):
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.startswith("gigapatch ")
    code, out, _ = run(capsys, "extract", "--help")
    assert code == 0 and "--stride" in out


def test_the_console_script_reports_errors_without_traceback(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "gigapatch.cli",
            "extract",
            str(tmp_path / "nope.svs"),
            "-o",
            str(tmp_path / "o.zarr"),
            "--size",
            "64",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"gigapatch extract: error: '{tmp_path / 'nope.svs'}' does not exist (use --on-error "
        "skip to leave out what cannot be read)"
    ]


def test_verify_fails_on_an_incomplete_store(tmp_path, capsys):
    code, _, err = run(capsys, "verify", make_unfinished_store(tmp_path / "x.zarr"))
    assert code == 1 and "2 of 2 shards not done" in err


def test_info_describes_every_format(tmp_path, capsys):
    from gigapatch import testing

    fl = testing.sample_fluorescence(300, 400, channels=2)
    paths = {
        "ome-zarr-0.5": testing.write_ome_zarr(tmp_path / "a.zarr", fl, chunks=128),
        "ome-tiff": testing.write_ome_tiff(tmp_path / "b.ome.tif", fl, channels_first=True,
                                           compression="zlib", tile=128, levels=2),
        "zarr-v2": testing.write_zarr(tmp_path / "c.zarr", fl[0], zarr_format=2, chunks=64),
    }
    for fmt, path in paths.items():
        code, out, _ = run(capsys, "info", path)
        assert code == 0, fmt
        assert f"format    {fmt}" in out and "dtype     uint16 x" in out
        assert "KB" in out or "MB" in out  # folders are summed, not 4096 bytes


def test_info_and_resume_messages_for_a_random_store(tmp_path, capsys, small_slide):
    out = tmp_path / "r.zarr"
    args = ["extract", small_slide, "-o", out, "--size", 64, "--random", 30, "--seed", 3,
            "--shard-size", 10, "--quiet"]
    assert run(capsys, *args)[0] == 0
    (out / "done" / "c" / "1").unlink()  # shard 1 not done, as after an interruption
    code, text, _ = run(capsys, *args, "--resume")
    assert code == 0 and "wrote 10 random patches" in text and "(20 were already done)" in text
    code, text, _ = run(capsys, "info", out)
    assert code == 0 and "plan      random of 64x64, at level 0, seed 3" in text
    assert "(level 0, label none, 30 patches)" in text and "label -1  none: 30 patches" in text


def _noise(h=128, w=128):
    return np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)


def test_info_on_a_zarr_image_and_on_damaged_stores(tmp_path, capsys):
    import shutil

    import gigapatch
    from gigapatch import testing

    testing.write_zarr(tmp_path / "img.zarr", _noise(), zarr_format=3, chunks=64)
    code, out, _ = run(capsys, "info", tmp_path / "img.zarr")
    assert code == 0 and "format    zarr-v3" in out
    image = _noise()
    gigapatch.extract_to_zarr(image, gigapatch.grid(image, 64), tmp_path / "s.zarr")
    shutil.rmtree(tmp_path / "s.zarr" / "done")
    for command in ("info", "verify"):
        code, _, err = run(capsys, command, tmp_path / "s.zarr")
        assert code == 1 and err.count("\n") == 1
        assert "damaged gigapatch store: it lacks done" in err


def test_zarr_folders_are_slides_on_the_command_line(tmp_path, capsys):
    from gigapatch import testing

    testing.write_ome_zarr(tmp_path / "data" / "a" / "x.zarr", _noise(), channels_first=False)
    testing.write_zarr(tmp_path / "data" / "b" / "y.zarr", _noise(), chunks=64)
    code, out, _ = run(capsys, "extract", tmp_path / "data" / "a" / "x.zarr", "-o",
                       tmp_path / "o1.zarr", "--size", 32, "--quiet")
    assert code == 0 and "wrote 16 patches" in out
    code, out, _ = run(capsys, "extract", tmp_path / "data", "--labels-from-dirs", "-o",
                       tmp_path / "o2.zarr", "--size", 32, "--quiet")
    assert code == 0 and "from 2 slide(s) in 2 classes" in out


def test_a_mask_file_that_is_not_an_image_is_one_line(tmp_path, capsys, square_path):
    (tmp_path / "notimg.png").write_text("hello")
    code, _, err = run(capsys, "extract", square_path, "-o", tmp_path / "o.zarr", "--size", 64,
                       "--random", 5, "--weights", tmp_path / "notimg.png")
    assert code == 1 and err.count("\n") == 1
    assert "cannot read mask" in err and "expected a .npy, TIFF or PNG image" in err
