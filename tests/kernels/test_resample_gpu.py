"""Tier 6 of the area resampler: CuPy against NumPy on a real device (``pytest -m gpu``).

Skipped, visibly, where ``cupy.cuda.is_available()`` is False. Integer
dtypes must agree bit for bit (the kernel computes the same exact fraction
and rounds it the same way); float32 within float32 rounding.
"""

import numpy as np
import pytest

from gigapatch.kernels import area_resample, resample_launch, to_host
from tests.helpers import gpu_cupy
from tests.kernels import resample_harness as rh

cp = gpu_cupy()
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(cp is None, reason="no CUDA device: cupy.cuda.is_available() is False "
                                          "or CuPy is not installed (pip install -e '.[gpu]')"),
]


def _equal(got, want) -> bool:
    if want.dtype == np.float32:
        return np.allclose(got, want, rtol=1e-5, atol=1e-3)
    return np.array_equal(got, want)


def test_random_batches_equal_numpy():
    rng = np.random.default_rng(31)
    for _ in range(200):
        case = rh.random_case(rng)
        got = area_resample(cp.asarray(case["block"]), case["out_hw"])
        assert isinstance(got, cp.ndarray)
        want = area_resample(**case)
        assert got.dtype == want.dtype and _equal(to_host(got), want), case["out_hw"]


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("out_hw", [299, 256], ids=["f2", "598-256"])
def test_one_launch_for_a_real_batch(monkeypatch, dtype, out_hw):
    launches = []
    real = resample_launch.run
    monkeypatch.setattr(resample_launch, "run", lambda cupy, plan: (launches.append(plan.name),
                                                                    real(cupy, plan)))
    block = rh.random_block(np.random.default_rng(1), 64, 598, 598, 3, dtype)
    got = area_resample(cp.asarray(block), out_hw)
    assert launches == [resample_launch.kernel_name(dtype)]
    assert _equal(to_host(got), area_resample(block, out_hw))


def test_into_a_slice_of_a_preallocated_output():
    block = rh.random_block(np.random.default_rng(2), 3, 592, 592, 3, np.uint8)
    out = cp.zeros((5, 299, 299, 3), cp.uint8)
    area_resample(cp.asarray(block), 299, out=out[1:4])
    assert np.array_equal(to_host(out[1:4]), area_resample(block, 299))
    assert int(out[0].max()) == 0 and int(out[4].max()) == 0
