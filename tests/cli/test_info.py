"""``gigapatch info STORE``: what a store holds, and a quiet end when stdout closes early."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from gigapatch.cli import EXIT_BROKEN_PIPE, main
from gigapatch.store import StoreSpec, create_store
from tests.store.sample import make_class_store

ROOT = Path(__file__).resolve().parents[2]


def test_info_on_a_store_names_classes_and_counts(tmp_path, capsys):
    store, slides = make_class_store(tmp_path)
    assert main(["info", str(store.path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"store     {store.path} (") and out[0].endswith(" on disk)")
    assert out[1].startswith("format    gigapatch store format 2 (Zarr v3)")
    assert out[3] == "shards    8/8 done, 8 patches each, codec lz4"
    assert out[4] == "plan      grid of 16x16, at level 0, stride 16x16, classes benign, tumor"
    assert out[5:7] == ["label 0   benign: 40 patches from 2 slides",
                        "label 1   tumor: 20 patches from 1 slide"]
    assert out[8] == f"source 1   {slides / 'benign' / 'b.tif'} (level 0, label 0 (benign), 20 " \
                     "patches)"
    assert len(out) == 10


def test_info_on_a_jpeg_store_prints_codec_quality_and_psnr(tmp_path, capsys):
    import gigapatch
    from gigapatch.testing import sample_rgb

    image = sample_rgb(256, 256, seed=3)
    out = tmp_path / "j.zarr"
    gigapatch.extract_to_zarr(image, gigapatch.grid(image, 64), out, codec="jpeg:95",
                              shard_size=8, workers=1)
    assert main(["info", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[3] == "shards    2/2 done, 8 patches each, codec jpeg:95"
    psnr = gigapatch.PatchStore(out).attrs["psnr_db"]
    assert psnr > 38
    assert lines[4] == (f"quality   JPEG quality 95, 4:2:0; PSNR {psnr:.1f} dB against the "
                        "uncompressed patches (16 sampled)")


def test_info_piped_into_head_ends_quietly(tmp_path):
    # a store of 3000 sources: info prints ~200 KB, far more than a pipe holds, so head's
    # exit closes the pipe while info still writes
    n = 3000
    create_store(tmp_path / "big.zarr", StoreSpec(
        patch_shape=(2, 2, 1), dtype=np.uint8, coords=np.zeros((n, 2)), slide=np.arange(n),
        label=np.zeros(n), sources=[{"path": f"/data/slides/case-{k:05d}.svs", "level": 0,
                                     "label": 0} for k in range(n)], plan={}, shard_size=64,
    ))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        f"{sys.executable} -m gigapatch.cli info {tmp_path / 'big.zarr'} | head -1; "
        "echo status ${PIPESTATUS[0]}",
        shell=True, executable="/bin/bash", capture_output=True, text=True, env=env, timeout=120,
    )
    assert "Traceback" not in done.stderr and "Broken pipe" not in done.stderr, done.stderr
    assert done.stderr == ""
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"store     {tmp_path / 'big.zarr'} (")
    assert lines[1] == f"status {EXIT_BROKEN_PIPE}"
