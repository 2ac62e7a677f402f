"""Regressions for defects a review found: each test reproduces one."""

import os

import numpy as np
import pytest
import zarr

import gigapatch
from gigapatch.cli import main
from gigapatch.errors import ClusterError, InvalidArgumentError
from gigapatch.store import PatchStore


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _image(h=128, w=128):
    return np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)


def test_a_creation_killed_half_way_leaves_no_store_at_the_output(tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise KeyboardInterrupt  # as if killed while the arrays are being made

    image = _image()
    plan = gigapatch.grid(image, 32)
    monkeypatch.setattr(zarr.Group, "create_array", boom)
    with pytest.raises(KeyboardInterrupt):
        gigapatch.extract_to_zarr(image, plan, tmp_path / "o.zarr")
    monkeypatch.undo()
    assert not (tmp_path / "o.zarr").exists()
    gigapatch.extract_to_zarr(image, plan, tmp_path / "o.zarr", resume=True)
    assert PatchStore(tmp_path / "o.zarr").complete
    assert [p.name for p in tmp_path.iterdir()] == ["o.zarr"]  # the half-made folder is gone


def test_resume_into_an_empty_folder_is_a_fresh_run(tmp_path):
    (tmp_path / "o.zarr").mkdir()
    image = _image()
    gigapatch.extract_to_zarr(image, gigapatch.grid(image, 32), tmp_path / "o.zarr", resume=True)
    assert PatchStore(tmp_path / "o.zarr").complete


def test_verify_and_resume_catch_missing_or_damaged_shard_files(tmp_path, capsys):
    image = _image()
    plan = gigapatch.grid(image, 32)
    out = tmp_path / "v.zarr"
    gigapatch.extract_to_zarr(image, plan, out, shard_size=4)
    reference = PatchStore(out)[:]
    (out / "images" / "c" / "1" / "0" / "0" / "0").unlink()
    with open(out / "images" / "c" / "2" / "0" / "0" / "0", "r+b") as fh:
        fh.truncate(100)
    problems = PatchStore(out).verify()
    assert problems == [
        "shard 1 is marked done but its file is missing; run with --resume",
        "shard 2 is marked done but its index is damaged (checksum mismatch); run with --resume",
    ]
    code, _, err = run(capsys, "verify", out)
    assert code == 1 and "shard 1 is marked done but its file is missing" in err
    gigapatch.extract_to_zarr(image, plan, out, shard_size=4, resume=True)
    assert PatchStore(out).verify() == [] and np.array_equal(PatchStore(out)[:], reference)


def test_big_endian_sources_give_native_stores(tmp_path):
    image = np.arange(64 * 64 * 3).reshape(64, 64, 3).astype(">u2")
    plan = gigapatch.grid(image, 32)
    store = gigapatch.extract_to_zarr(image, plan, tmp_path / "be.zarr")
    patches = gigapatch.extract(image, plan)
    assert store.complete and patches.dtype == np.dtype("=u2") == store.images.dtype
    assert np.array_equal(store[:], patches) and np.array_equal(patches[0], image[:32, :32])


def test_resume_accepts_nan_tissue_fractions(tmp_path):
    a, b = _image(), _image()
    plan = gigapatch.grid([a, b], 64, mask=[None, np.ones((4, 4), bool)])
    assert np.isnan(plan.tissue).any()
    gigapatch.extract_to_zarr([a, b], plan, tmp_path / "t.zarr")
    gigapatch.extract_to_zarr([a, b], plan, tmp_path / "t.zarr", resume=True)


def test_info_on_a_zarr_image_and_on_damaged_stores(tmp_path, capsys):
    from gigapatch import testing

    testing.write_zarr(tmp_path / "img.zarr", _image(), zarr_format=3, chunks=64)
    code, out, _ = run(capsys, "info", tmp_path / "img.zarr")
    assert code == 0 and "format    zarr-v3" in out
    image = _image()
    gigapatch.extract_to_zarr(image, gigapatch.grid(image, 64), tmp_path / "s.zarr")
    import shutil

    shutil.rmtree(tmp_path / "s.zarr" / "done")
    for command in ("info", "verify"):
        code, _, err = run(capsys, command, tmp_path / "s.zarr")
        assert code == 1 and err.count("\n") == 1
        assert "damaged gigapatch store: it lacks done" in err


def test_zarr_folders_are_slides_on_the_command_line(tmp_path, capsys):
    from gigapatch import testing

    testing.write_ome_zarr(tmp_path / "data" / "a" / "x.zarr", _image(), channels_first=False)
    testing.write_zarr(tmp_path / "data" / "b" / "y.zarr", _image(), chunks=64)
    code, out, _ = run(capsys, "extract", tmp_path / "data" / "a" / "x.zarr", "-o",
                       tmp_path / "o1.zarr", "--size", 32, "--quiet")
    assert code == 0 and "wrote 16 patches" in out
    code, out, _ = run(capsys, "extract", tmp_path / "data", "--labels-from-dirs", "-o",
                       tmp_path / "o2.zarr", "--size", 32, "--quiet")
    assert code == 0 and "from 2 slide(s) in 2 classes" in out


def test_an_unreachable_scheduler_is_one_line_and_creates_nothing(tmp_path, capsys):
    import dask

    pytest.importorskip("distributed")
    image = _image()
    with (
        pytest.raises(ClusterError, match=r"cannot reach the Dask scheduler at 'tcp://127\.0"),
        dask.config.set({"distributed.comm.timeouts.connect": "1s"}),
    ):
        gigapatch.extract_to_zarr(image, gigapatch.grid(image, 32), tmp_path / "d.zarr",
                                  scheduler="tcp://127.0.0.1:9")
    assert not (tmp_path / "d.zarr").exists()


def test_a_mask_file_that_is_not_an_image_is_one_line(tmp_path, capsys, square_path):
    (tmp_path / "notimg.png").write_text("hello")
    code, _, err = run(capsys, "extract", square_path, "-o", tmp_path / "o.zarr", "--size", 64,
                       "--random", 5, "--weights", tmp_path / "notimg.png")
    assert code == 1 and err.count("\n") == 1
    assert "cannot read mask" in err and "expected a .npy, TIFF or PNG image" in err


def test_a_plan_made_for_other_sources_is_refused_before_any_output(tmp_path):
    plan = gigapatch.grid(np.zeros((1024, 1024, 3), np.uint8), 128)
    with pytest.raises(InvalidArgumentError, match=r"plan patch 2 at y=0, x=256 does not fit in "
                                                   r"'array' at level 0 \(300x300 pixels\)"):
        gigapatch.extract_to_zarr(np.zeros((300, 300, 3), np.uint8), plan, tmp_path / "o.zarr")
    assert not os.path.exists(tmp_path / "o.zarr")


def test_balance_needs_a_class_for_every_slide():
    images = [_image(), _image(), _image()]
    with pytest.raises(InvalidArgumentError, match=r"got \[0, 0, -1\]"):
        gigapatch.random(images, 16, 9, seed=0, labels=[0, 0, -1], balance=True)


def test_zarr_arrays_with_x_before_y(tmp_path):
    b = np.arange(6, dtype=np.uint8).reshape(2, 3)
    z = zarr.create_array(tmp_path / "xy.zarr", shape=b.shape, dtype="u1", chunks=(2, 3))
    z[:] = b
    slide = gigapatch.open(z, axes="xy")
    assert slide.shape == (3, 2)
    assert np.array_equal(slide.read(0, 0, 3, 2)[..., 0], b.T)
