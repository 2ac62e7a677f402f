"""The training examples run on a tiny store made the way they make one (class folders)."""

import importlib.util
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_example(name: str, *args: str) -> list[float]:
    env = {**os.environ, "KERAS_BACKEND": "torch"}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name), *args],
        capture_output=True, text=True, env=env, timeout=600, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return [float(v) for v in re.findall(r"^step \d+: loss (\S+)$", proc.stdout, re.M)]


@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory):
    """Made by train_xception.py itself (its store is missing), at 72² (Xception needs >= 71)."""
    for name in ("torch", "keras"):
        if importlib.util.find_spec(name) is None:
            pytest.skip(f"{name} is not installed (pip install -e '.[test]')")
    store = tmp_path_factory.mktemp("examples") / "patches.zarr"
    losses = run_example("train_xception.py", "--store", str(store), "--image-size", "72",
                         "--slide-size", "1024", "--steps", "3", "--batch-size", "4")
    return store, losses


def test_train_xception_makes_a_labelled_store_and_prints_finite_losses(tiny_store):
    import gigapatch

    store, losses = tiny_store
    assert len(losses) == 3 and all(math.isfinite(v) for v in losses)
    patches = gigapatch.PatchStore(store)
    assert patches.complete and patches.patch_shape == (72, 72, 3)
    assert sorted(set(patches.label.tolist())) == [0, 1]


def test_train_torch_with_two_workers(tiny_store):
    store, _ = tiny_store
    losses = run_example("train_torch.py", "--store", str(store), "--steps", "4",
                         "--batch-size", "8", "--workers", "2")
    assert len(losses) == 4 and all(math.isfinite(v) for v in losses)
