"""Tier 4: the kernel core compiled with g++ (and AddressSanitizer) against NumPy.

The harness runs the exact per-thread code of the CUDA kernels for every
thread index, through the real launcher (``fused._run_cuda`` → ``plan_launch``),
so argument order, index arithmetic, dihedral maps, fill, jitter, the float16
rounding and both layouts are all compared with the NumPy path.
"""

import ctypes
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from gigapatch.kernels import fused_gather, launch
from tests.kernels import native_harness as kn

HEADER = (launch.SOURCE_DIR / launch.HEADER).read_text()


def _mutated(old: str, new: str) -> str:
    assert HEADER.count(old) == 1, old
    return HEADER.replace(old, new)


@pytest.fixture(scope="module")
def gxx():
    if shutil.which("g++") is None:
        pytest.skip("g++ is not installed: the host-compiled kernel core cannot be checked")


@pytest.fixture(scope="module")
def core(kernel_core):
    return kernel_core


def test_core_equals_numpy_on_random_cases(core):
    assert kn.compare_random(core, 400, seed=1) == []


@pytest.mark.parametrize("case", [
    {"block": np.arange(3, dtype=np.uint8).reshape(1, 1, 3), "ys": [0, -1, 1], "xs": [0, 0, -5],
     "size": 1},
    {"block": np.full((2, 3, 1), 9, np.uint16), "ys": [-100, 1], "xs": [50, -2], "size": 4,
     "fill": 65535, "dihedral": [7, 5], "normalize": "unit", "dtype": "float16"},
    {"block": np.arange(60, dtype=np.float32).reshape(4, 5, 3), "ys": [0], "xs": [0],
     "size": 3, "dilation": (9, 1), "dihedral": [3], "normalize": "imagenet", "layout": "chw"},
    {"block": np.arange(256, dtype=np.uint8).reshape(16, 16, 1), "ys": [2**40], "xs": [-2**40],
     "size": 2, "fill": 3},
    {"block": np.zeros((5, 5, 4), np.uint8) + 255, "ys": [0, 1], "xs": [1, 0], "size": (2, 5),
     "dihedral": [6, 2], "normalize": "xception", "jitter": [[2.0, 10.0], [0.0, -5.0]]},
], ids=["1x1-block", "all-outside-u16", "dilation-beyond-block", "far-away", "jitter-clips"])
def test_core_equals_numpy_on_edge_cases(core, case):
    calls = []
    got = kn.host_fused(core, calls, **case)
    assert len(calls) == 1  # one launch for the whole batch
    want = fused_gather(**case)
    assert got.dtype == want.dtype and np.array_equal(got, want)


def test_float_to_half_rounds_like_numpy(core):
    rng = np.random.default_rng(2)
    special = np.array([0.0, -0.0, 1.0, 65504.0, 65519.99, 65520.0, 1e9, -np.inf, np.inf,
                        2.0**-24, 2.0**-25, 2.0**-25 * 1.0001, 3 * 2.0**-25, 2.0**-14,
                        2.0**-14 * (1 - 2.0**-11), 1 + 2.0**-11, 1 + 3 * 2.0**-11], np.float32)
    bits = rng.integers(0, 2**32, 300_000, dtype=np.uint64).astype(np.uint32)
    values = np.concatenate([special, -special, bits.view(np.float32),
                             rng.normal(0, 3, 100_000).astype(np.float32)])
    values = values[~np.isnan(values)]
    out = np.empty(values.shape, np.uint16)
    core.gp_half_bits_n(ctypes.c_void_p(values.ctypes.data), ctypes.c_void_p(out.ctypes.data),
                        ctypes.c_int64(values.size))
    with np.errstate(over="ignore"):
        want = values.astype(np.float16).view(np.uint16)
    assert np.array_equal(out, want)
    nan = np.array([np.nan], np.float32)
    core.gp_half_bits_n(ctypes.c_void_p(nan.ctypes.data), ctypes.c_void_p(out.ctypes.data), 1)
    assert np.isnan(out[:1].view(np.float16)[0])


def test_an_off_by_one_in_the_core_is_caught(gxx, tmp_path):
    broken = kn.build(tmp_path, header=_mutated("*sj = w - 1 - i;", "*sj = w - i;"))
    assert len(kn.compare_random(ctypes.CDLL(str(broken)), 200, seed=1)) > 0


def _run_asan(lib: Path, cases: int) -> subprocess.CompletedProcess:
    return kn.run_asan(Path(kn.__file__), lib, cases)


def test_core_under_address_sanitizer(gxx, tmp_path):
    proc = _run_asan(kn.build(tmp_path, asan=True), 300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "300 cases agree" in proc.stdout


def test_address_sanitizer_catches_an_out_of_bounds_read(gxx, tmp_path):
    header = _mutated("yy >= bh", "yy > bh")
    proc = _run_asan(kn.build(tmp_path, header=header, asan=True), 300)
    assert proc.returncode != 0
    assert "AddressSanitizer: heap-buffer-overflow" in proc.stderr
