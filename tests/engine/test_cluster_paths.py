"""Cluster-safe paths: workers elsewhere write where the driver said, or fail saying why."""

import os
import pickle
import re
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
import zarr

import gigapatch
from gigapatch.cli import main
from gigapatch.engine import run as engine
from gigapatch.engine.workers import TaskSlides, check_output_seen
from gigapatch.errors import SlideError, StoreError
from gigapatch.plan import as_slides
from gigapatch.store import PatchStore, StoreSpec, create_store

HINT = r"not on a filesystem this worker sees\?"


def test_workers_in_another_folder_write_the_store_where_the_driver_said(
    slide_path, tmp_path, monkeypatch, capsys
):
    distributed = pytest.importorskip("distributed")
    here, elsewhere = tmp_path / "driver", tmp_path / "worker"
    here.mkdir()
    elsewhere.mkdir()
    shutil.copy(slide_path, here / "s.svs")
    monkeypatch.chdir(here)  # the driver's working directory: relative paths mean this
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as client:
        client.run(os.chdir, str(elsewhere))  # the worker runs in another folder
        assert set(client.run(os.getcwd).values()) == {str(elsewhere)}
        argv = ["extract", "s.svs", "-o", "out.zarr", "--size", "64", "--level", "1",
                "--shard-size", "16", "--quiet", "--scheduler", cluster.scheduler_address]
        assert main(argv) == 0, capsys.readouterr().err
        (here / "out.zarr" / "done" / "c" / "2").unlink()  # as if stopped before shard 2
        (here / "out.zarr" / "images" / "c" / "2" / "0" / "0" / "0").unlink()
        assert main([*argv, "--resume"]) == 0, capsys.readouterr().err

        # a worker that cannot open a source, or see the output, names itself and the path
        gone = tmp_path / "gone.svs"
        shutil.copy(slide_path, gone)
        sources = TaskSlides(as_slides(gone))
        gone.unlink()
        with pytest.raises(SlideError, match=(
            rf"^worker tcp://[\d.]+:\d+ cannot open source '{re.escape(str(gone))}' \(.*\): "
            + HINT
        )):
            client.submit(TaskSlides.open, sources, pure=False).result()
        images = zarr.open_group(here / "out.zarr", mode="r")["images"]
        shutil.move(here / "out.zarr", here / "moved.zarr")
        with pytest.raises(StoreError, match=(
            rf"^worker tcp://[\d.]+:\d+ cannot see the output store at "
            rf"'{re.escape(str(here / 'out.zarr'))}' \(no '.*/images/zarr.json'\): " + HINT
        )):
            client.submit(check_output_seen, images, pure=False).result()
        shutil.move(here / "moved.zarr", here / "out.zarr")
    assert list(elsewhere.iterdir()) == []  # nothing written relative to the worker
    store = PatchStore(here / "out.zarr")
    assert store.verify() == [] and store.sources[0]["path"] == str(here / "s.svs")
    plan = gigapatch.grid(slide_path, 64, level=1)
    patches = gigapatch.extract(slide_path, plan)
    assert store[:].any() and np.array_equal(store[:], patches)  # real pixels, not zeros


def test_slides_pickle_with_absolute_paths(slide_path, tmp_path, monkeypatch):
    shutil.copy(slide_path, tmp_path / "s.svs")
    monkeypatch.chdir(tmp_path)
    blob = pickle.dumps(TaskSlides(as_slides("s.svs")))
    monkeypatch.chdir(Path(slide_path).parent.parent)  # another folder, as a worker's
    (again,) = pickle.loads(blob).open()
    assert again.path == str(tmp_path / "s.svs") and again.read(0, 0, 4, 4).shape == (4, 4, 3)
    (tmp_path / "s.svs").unlink()
    with pytest.raises(SlideError, match=(
        rf"^host {re.escape(socket.gethostname())} \(pid {os.getpid()}\) cannot open source "
        rf"'{re.escape(str(tmp_path / 's.svs'))}' \(.*\): " + HINT
    )):
        pickle.loads(blob).open()


def test_a_zarr_array_source_in_a_relative_folder_reopens_anywhere(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    z = zarr.open_array("image.zarr", mode="w", shape=(64, 64, 3), dtype="u1", chunks=(32, 32, 3))
    z[:] = pixels = (np.arange(64 * 64 * 3).reshape(64, 64, 3) % 251).astype(np.uint8)
    blob = pickle.dumps(TaskSlides(as_slides([zarr.open_array("image.zarr", mode="r")])))
    monkeypatch.chdir(tmp_path.parent)
    assert not z[:].any()  # the relative array now reads another (missing) folder: zeros
    (again,) = pickle.loads(blob).open()
    assert np.array_equal(again.read(0, 0, 64, 64), pixels)


def test_the_output_is_checked_on_the_worker_before_anything_is_written(tmp_path):
    spec = StoreSpec(patch_shape=(4, 4, 3), dtype=np.uint8, coords=np.zeros((3, 2), np.int64),
                     slide=np.zeros(3, np.int32), label=np.zeros(3, np.int32),
                     sources=[{"path": None}], plan={}, shard_size=2, codec="none")
    images = create_store(tmp_path / "s.zarr", spec)["images"]
    check_output_seen(images)
    shutil.rmtree(tmp_path / "s.zarr")
    with pytest.raises(StoreError, match=(
        rf"^host {re.escape(socket.gethostname())} \(pid {os.getpid()}\) cannot see the "
        rf"output store at '{re.escape(str(tmp_path / 's.zarr'))}'"
    )):
        check_output_seen(images)


@pytest.mark.parametrize("wrote", ["elsewhere", "other size"])
def test_a_shard_the_driver_does_not_see_is_never_marked_done(tmp_path, monkeypatch, wrote):
    image = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    plan = gigapatch.grid(image, 16)
    out = tmp_path / "o.zarr"
    real = engine.write_shard

    def write_shard(images, index, data, **kwargs):
        nbytes = real(images, index, data, **kwargs)
        if wrote == "elsewhere":  # as a worker writing to a disk of its own
            (out / "images" / "c" / str(index) / "0" / "0" / "0").unlink()
            return nbytes
        return nbytes + 1

    monkeypatch.setattr(engine, "write_shard", write_shard)
    seen = "is missing" if wrote == "elsewhere" else r"holds \d+ bytes"
    with pytest.raises(StoreError, match=(
        rf"^shard (\d+): a worker wrote \d+ bytes to '{re.escape(str(out))}/images/c/\1/0/0/0', "
        "but "
        rf"on the driver \({re.escape(socket.gethostname())}\) that file {seen}; do the workers "
        rf"write the output store '{re.escape(str(out))}' on a filesystem the driver sees\? "
        "The shard is not marked done$"
    )):
        gigapatch.extract_to_zarr(image, plan, out, shard_size=4, workers=1)
    assert PatchStore(out).shards_done == 0
    monkeypatch.undo()
    store = gigapatch.extract_to_zarr(image, plan, out, shard_size=4, resume=True)
    assert store.verify() == [] and np.array_equal(store[:], gigapatch.extract(image, plan))
