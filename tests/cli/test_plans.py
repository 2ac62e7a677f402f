"""`gigapatch extract` with the plan flags."""

import numpy as np
import pytest
import tifffile
import zarr

from gigapatch.cli import main
from gigapatch.store import PatchStore


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def class_root(tmp_path):
    rng = np.random.default_rng(1)
    for name in ("neg/a.tif", "neg/b.tif", "neg/c.tif", "pos/d.tif"):
        (tmp_path / "data" / name).parent.mkdir(parents=True, exist_ok=True)
        tifffile.imwrite(tmp_path / "data" / name, rng.integers(0, 255, (96, 96, 3), np.uint8))
    return tmp_path / "data"


def test_random_tissue_patches_with_a_seed(square_path, tmp_path, capsys):
    args = ["extract", square_path, "-o", tmp_path / "a.zarr", "--size", 128, "--random", 40,
            "--seed", 3, "--min-tissue", 0.5, "--weights", "tissue", "--quiet"]
    code, out, err = run(capsys, *args)
    assert code == 0, err
    assert "wrote 40 weighted patches of 128x128 from 1 slide(s)" in out
    store = PatchStore(tmp_path / "a.zarr")
    assert store.plan["seed"] == 3 and store.plan["weights"] == "tissue"
    assert (zarr.open_group(store.path, mode="r")["tissue"][:] >= 0.5).all()
    args[3] = tmp_path / "b.zarr"
    assert run(capsys, *args)[0] == 0
    assert np.array_equal(PatchStore(tmp_path / "b.zarr").coords, store.coords)


def test_same_padding_dilation_and_mpp(square_path, tmp_path, capsys):
    code, out, _ = run(capsys, "extract", square_path, "-o", tmp_path / "g.zarr", "--size", 50,
                       "--stride", 60, "--padding", "same", "--dilation", 2, "--mpp", 1.0,
                       "--fill", 255, "--quiet")
    assert code == 0 and "wrote 81 patches of 50x50" in out  # ceil(512 / 60) = 9 per side
    store = PatchStore(tmp_path / "g.zarr")
    assert store.plan["padding"] == "same" and store.plan["dilation"] == [2, 2]
    assert store.sources[0]["level"] == 1 and store.verify() == []


def test_labels_from_class_folders_balanced(class_root, tmp_path, capsys):
    code, out, _ = run(capsys, "extract", class_root, "--labels-from-dirs", "-o",
                       tmp_path / "c.zarr", "--size", 32, "--random", 10, "--balanced",
                       "--seed", 0, "--quiet")
    assert code == 0 and "from 4 slide(s) in 2 classes" in out
    store = PatchStore(tmp_path / "c.zarr")
    assert np.bincount(store.label).tolist() == [5, 5]
    assert store.plan["classes"] == ["neg", "pos"]
    assert [s["label"] for s in store.sources] == [0, 0, 0, 1]


def test_a_weight_map_file_and_a_glob(class_root, tmp_path, capsys):
    weights = np.zeros((4, 4))
    weights[3, 3] = 1
    np.save(tmp_path / "w.npy", weights)
    code, _, _ = run(capsys, "extract", class_root / "pos" / "d.tif", "-o", tmp_path / "w.zarr",
                     "--size", 16, "--random", 20, "--weights", tmp_path / "w.npy", "--quiet")
    assert code == 0 and (PatchStore(tmp_path / "w.zarr").coords >= 64).all()
    code, out, _ = run(capsys, "extract", str(class_root / "*" / "*.tif"), "-o",
                       tmp_path / "glob.zarr", "--size", 32, "--random", 4, "--per-slide",
                       "--quiet")
    assert code == 0 and "wrote 16 random patches of 32x32 from 4 slide(s)" in out


@pytest.mark.parametrize(
    ("extra", "code", "match"),
    [
        (["--seed", "1"], 2, "--seed applies to --random; got it without --random"),
        (["--balanced"], 2, "--balanced applies to --random"),
        (["--random", "5", "--stride", "8"], 2, "--stride applies to grids; random patches"),
        (["--random", "5", "--dilation", "2"], 2, "--dilation applies to grids"),
        (["--level", "1", "--mpp", "1"], 2, "argument --mpp: not allowed with argument --level"),
        (["--min-tissue", "2"], 2, "argument --min-tissue: expected a number in [0, 1], got '2'"),
        (["--mpp", "0"], 2, "argument --mpp: expected a positive number, got '0'"),
        (["--padding", "full"], 2, "argument --padding: invalid choice: 'full'"),
        (["--random", "5", "--weights", "nope"], 2, "weights must be None, 'tissue', an array"),
        (["--random", "5", "--weights", "gone.npy"], 2,
         "weights: no map file 'gone.npy' (expected an existing .npy file of weights)"),
        (["--mpp-tolerance", "0.1"], 2,
         "--mpp-tolerance applies to --mpp or --magnification; got it without either"),
        (["--mpp", "0.5", "--mpp-tolerance", "0.5"], 2,
         "argument --mpp-tolerance: expected a fraction in [0, 0.5), e.g. 0.02 for 2 %, "
         "got '0.5'"),
        (["--random", "5", "--balanced"], 2, "balance=True needs a class label >= 0"),
        (["--fill", "300", "--padding", "same"], 2, "fill must be representable as uint8"),
        (["--mpp", "0.1"], 2, "mpp 0.1 is finer than level 0 of 'square.svs' (0.25 µm/px"),
    ],
)
def test_bad_plan_flags_are_one_line_and_a_nonzero_exit(square_path, tmp_path, capsys, extra,
                                                        code, match):
    result, _, err = run(capsys, "extract", square_path, "-o", tmp_path / "x.zarr", "--size", 64,
                         "--quiet", *extra)
    assert result == code and err.count("\n") == 1 and match in err and "Traceback" not in err
    assert not (tmp_path / "x.zarr").exists()


def test_missing_sources_and_empty_globs(tmp_path, capsys):
    result, _, err = run(capsys, "extract", str(tmp_path / "*.svs"), "-o", tmp_path / "x.zarr",
                         "--size", 64)
    assert result == 1 and "*.svs' matches no slide file" in err
    result, _, err = run(capsys, "extract", tmp_path, "--labels-from-dirs", "-o",
                         tmp_path / "x.zarr", "--size", 64)
    assert result == 1 and "no slide files under the class folders" in err


def test_20x_from_a_40x_slide_by_mpp_or_magnification_is_the_same_store(tmp_path, capsys):
    slide = tmp_path / "40x.svs"
    code, out, _ = run(capsys, "synth", slide, "--size", 1024, "--magnification", 40)
    assert code == 0 and "mpp 0.25 (40x)" in out
    stores = []
    for flag, value in (("--mpp", 0.5), ("--magnification", 20)):
        out_path = tmp_path / f"{flag[2:]}.zarr"
        code, out, err = run(capsys, "extract", slide, "-o", out_path, "--size", 100,
                             "--random", 20, "--seed", 1, flag, value, "--quiet")
        assert code == 0, err
        stores.append(PatchStore(out_path))
    a, b = stores
    assert np.array_equal(a.coords, b.coords) and np.array_equal(a[:], b[:])
    code, out, _ = run(capsys, "info", a.path)
    assert code == 0 and "(level 0 area-averaged 2x to 0.5 um/px, label none, 20 patches)" in out
    code, out, _ = run(capsys, "info", slide)
    assert code == 0 and "magnif.   40x (recorded)" in out
    assert "downsample  mpp" in out and " 1  0.25      256x256" in out  # level 0: 0.25 µm/px
    assert a.sources[0]["factor"] == 2.0 and a.sources[0]["resampling"] == "area-integer"
    code, _, err = run(capsys, "extract", slide, "-o", tmp_path / "c.zarr", "--size", 100,
                       "--mpp", 0.1, "--quiet")
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "mpp 0.1 is finer than level 0 of '40x.svs' (0.25 µm/px, its finest)" in err
    assert not (tmp_path / "c.zarr").exists()
    code, _, err = run(capsys, "extract", slide, "-o", tmp_path / "d.zarr", "--size", 100,
                       "--mpp", 0.5, "--magnification", 20, "--quiet")
    assert code == 2 and "not allowed with argument" in err


def test_mpp_tolerance_decides_whether_a_near_level_is_read_as_it_is(tmp_path, capsys):
    slide = tmp_path / "40x.svs"
    code, out, _ = run(capsys, "synth", slide, "--size", 2048)
    assert code == 0 and "levels 2048x2048 512x512, mpp 0.25" in out  # 0.25 and 1.0 µm/px
    read = {}
    for tol in (None, 0.15):  # level 1 (1.0 µm/px) is 11 % off 0.9: outside 2 %, inside 15 %
        out_path = tmp_path / f"t{tol}.zarr"
        flags = [] if tol is None else ["--mpp-tolerance", tol]
        code, _, err = run(capsys, "extract", slide, "-o", out_path, "--size", 32, "--random",
                           4, "--seed", 0, "--mpp", 0.9, "--quiet", *flags)
        assert code == 0, err
        source = PatchStore(out_path).sources[0]
        read[tol] = (source["level"], source["factor"], source["resampling"])
    assert read[None] == (0, 3.6, "area") and read[0.15] == (1, 1.0, "none")


def test_series_are_listed_by_info_and_chosen_by_extract(tmp_path, capsys):
    from gigapatch.testing import write_ome_tiff_series

    rng = np.random.default_rng(5)
    small = rng.integers(0, 255, (300, 260, 3), np.uint8)
    large = rng.integers(0, 255, (640, 512, 3), np.uint8)
    path = write_ome_tiff_series(tmp_path / "two.ome.tif", [small, large], names=["small", "big"],
                                 levels=2, compression="none")
    code, out, err = run(capsys, "info", path)
    assert code == 0, err
    assert "series  * 1 'big' 640x512" in out and "series    0 'small' 300x260" in out
    code, out, _ = run(capsys, "info", path, "--series", "small")
    assert "series  * 0 'small'" in out
    for series, shape in (("0", (300, 260)), ("big", (640, 512))):
        out_path = tmp_path / f"{series}.zarr"
        code, _, err = run(capsys, "extract", path, "-o", out_path, "--size", 100,
                           "--series", series, "--quiet")
        assert code == 0, err
        store = PatchStore(out_path)
        assert store.sources[0]["shape"] == list(shape)
        image = small if shape == (300, 260) else large
        y, x = (int(v) for v in store.coords[-1])
        assert np.array_equal(store[len(store) - 1], image[y : y + 100, x : x + 100])
    code, _, err = run(capsys, "extract", path, "-o", tmp_path / "x.zarr", "--size", 100,
                       "--series", "7", "--quiet")
    assert code == 2 and err.count("\n") == 1 and "series" in err and "'big'" in err


def test_a_series_without_a_pixel_size_is_named_when_asked_for_an_mpp(tmp_path, capsys):
    slide = tmp_path / "40x.svs"
    assert run(capsys, "synth", slide, "--size", 1024)[0] == 0  # series 1: the thumbnail
    code, _, err = run(capsys, "extract", slide, "--series", 1, "-o", tmp_path / "x.zarr",
                       "--size", 32, "--mpp", 0.5, "--quiet")
    assert code == 2 and err == (
        "gigapatch extract: error: '40x.svs' series 1 ('Thumbnail') does not record its pixel "
        "size (mpp); choose a level instead or another series\n")


def test_device_gpu_without_a_gpu_is_one_line(square_path, tmp_path, capsys):
    from gigapatch.kernels import backend

    if backend.resolve_device("auto") == "gpu":
        pytest.skip("a CUDA device is present: --device gpu is valid here")
    code, _, err = run(capsys, "extract", square_path, "-o", tmp_path / "g.zarr", "--size", 64,
                       "--mpp", 0.5, "--random", 4, "--device", "gpu", "--quiet")
    assert code == 1 and err.count("\n") == 1 and "Traceback" not in err
    assert "device 'gpu' needs CuPy and a CUDA device" in err and "gigapatch[gpu]" in err
    assert err.rstrip().endswith("or use device='cpu' (--device cpu)")
    assert not (tmp_path / "g.zarr").exists()
