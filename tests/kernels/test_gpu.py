"""Tier 6: CuPy against NumPy end to end, on a real device. Run ``pytest -m gpu`` on a GPU.

Skipped, visibly, where ``cupy.cuda.is_available()`` is False: CuPy imports
without a driver, so a test that only checks that it imports would not skip.
"""

import numpy as np
import pytest

from gigapatch.kernels import augment, fused_gather, launch, to_host
from gigapatch.kernels.affine import affine_gather, affine_matrices
from tests.helpers import gpu_cupy
from tests.kernels import native_harness as kn

cp = gpu_cupy()
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(cp is None, reason="no CUDA device: cupy.cuda.is_available() is False "
                                          "or CuPy is not installed (pip install -e '.[gpu]')"),
]


def _on_gpu(case: dict) -> dict:
    return {**case, "block": cp.asarray(case["block"])}


def test_random_batches_equal_numpy_bit_for_bit():
    rng = np.random.default_rng(21)
    for _ in range(200):
        case = kn.random_case(rng)
        got = fused_gather(**_on_gpu(case))
        assert isinstance(got, cp.ndarray)
        want = fused_gather(**case)
        assert np.array_equal(to_host(got), want, equal_nan=True), case


def test_one_launch_per_batch(monkeypatch):
    launches = []
    real = launch.launch
    monkeypatch.setattr(launch, "launch", lambda cupy, plan: (launches.append(plan.name),
                                                              real(cupy, plan)))
    block = np.random.default_rng(1).integers(0, 256, (700, 700, 3), dtype=np.uint8)
    ys, xs = np.arange(64) * 6, np.arange(64) * 5
    ops = np.arange(64) % 8
    kw = {"dihedral": ops, "normalize": "xception", "layout": "chw", "dtype": "float16"}
    got = fused_gather(cp.asarray(block), ys, xs, 299, **kw)
    assert launches == ["gp_gather_norm<unsigned char, gp_half>"]
    assert np.array_equal(to_host(got), fused_gather(block, ys, xs, 299, **kw))


def test_a_batch_larger_than_the_grid_cap():
    block = np.random.default_rng(2).integers(0, 256, (600, 600, 3), dtype=np.uint8)
    ys, xs = np.arange(300), np.arange(300)[::-1]
    got = fused_gather(cp.asarray(block), ys, xs, 299, normalize="imagenet")
    assert np.array_equal(to_host(got), fused_gather(block, ys, xs, 299, normalize="imagenet"))


def test_engine_style_gather_into_a_given_output():
    block = np.random.default_rng(3).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    out = cp.zeros((3, 256, 256, 3), cp.uint8)
    fused_gather(cp.asarray(block), [0, 10, 44], [0, 100, 144], 256, fill=None, out=out[:3])
    assert np.array_equal(to_host(out), fused_gather(block, [0, 10, 44], [0, 100, 144], 256))


def test_augment_on_gpu_equals_numpy():
    patches = np.random.default_rng(4).integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)
    kw = {"dihedral": np.arange(16) % 8, "normalize": "unit",
          "jitter": np.tile([[1.1, -4.0]], (16, 1))}
    got = augment(cp.asarray(patches), **kw)
    assert np.array_equal(to_host(got), augment(patches, **kw))


def test_affine_on_gpu_equals_numpy():
    block = np.random.default_rng(5).integers(0, 256, (120, 140, 3), dtype=np.uint8)
    mats = affine_matrices(4, rotation=[0, 30, -45, 90], shear=[0, 5, 0, -10], zoom=1.2)
    got = affine_gather(cp.asarray(block), [10, 20, 30, 40], [5, 6, 7, 8], 64, mats,
                        normalize="unit")
    want = affine_gather(block, [10, 20, 30, 40], [5, 6, 7, 8], 64, mats, normalize="unit")
    np.testing.assert_allclose(to_host(got), want, rtol=1e-5, atol=1e-5)
