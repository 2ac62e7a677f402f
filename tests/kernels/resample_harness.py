"""Test helper: the area resampler's CUDA path run by its host-compiled twin (g++).

``build`` compiles ``tests/kernels/native/resample_harness.cpp`` (the core
header ``resample_core.cuh`` with a host loop over the thread index);
:func:`host_resample` drives :func:`area_resample` through the real launcher
(``resample_launch.plan_resample``) with ``native_harness.HostKernel`` in
place of the ``cupy.RawKernel``. Run as a script
(``python tests/kernels/resample_harness.py LIB CASES``) it compares random
cases with NumPy: the AddressSanitizer build is run that way, in a
subprocess with ``libasan`` preloaded.
"""

from __future__ import annotations

import ctypes
import sys
from pathlib import Path

import numpy as np

from gigapatch.kernels import resample, resample_launch
from tests.kernels import native_harness as kn

HARNESS = Path(__file__).resolve().parent / "native" / "resample_harness.cpp"


def build(out_dir: Path, *, header: str | None = None, asan: bool = False) -> Path:
    """Compile the resampler harness (with a changed core header if given)."""
    return kn.build(out_dir, header=header, asan=asan, harness=HARNESS,
                    header_name=resample_launch.HEADER)


def host_resample(lib, calls: list | None = None, **kwargs):
    """:func:`area_resample` through the CUDA launcher, run by the host harness ``lib``."""
    calls = [] if calls is None else calls
    saved = resample._cuda_namespace, resample_launch.get_kernel
    resample._cuda_namespace = lambda block: kn.FAKE_CUPY
    resample_launch.get_kernel = lambda cupy, name: kn.HostKernel(lib, name, calls)
    try:
        return resample.area_resample(**kwargs)
    finally:
        resample._cuda_namespace, resample_launch.get_kernel = saved


def random_block(rng: np.random.Generator, n: int, hs: int, ws: int, c: int, dtype) -> np.ndarray:
    """Random pixels over the whole range of ``dtype`` (floats: 0..1000 with fractions)."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return rng.uniform(0, 1000, (n, hs, ws, c)).astype(dtype)
    return rng.integers(0, np.iinfo(dtype).max, (n, hs, ws, c), endpoint=True, dtype=dtype)


def random_case(rng: np.random.Generator) -> dict:
    """Random area_resample arguments: integer and non-integer factors, extremes included."""
    dtype = rng.choice([np.uint8, np.uint16, np.float32])
    hs, ws = (int(v) for v in rng.integers(1, 30, 2))
    if rng.random() < 0.4:  # integer factors
        f, g = (int(v) for v in rng.integers(1, 5, 2))
        h, w = max(1, hs // f), max(1, ws // g)
        hs, ws = h * f, w * g
    else:
        h, w = int(rng.integers(1, hs + 1)), int(rng.integers(1, ws + 1))
    n, c = int(rng.integers(1, 5)), int(rng.choice([1, 2, 3, 4]))
    block = random_block(rng, n, hs, ws, c, dtype)
    if rng.random() < 0.2:  # saturated: the largest sums, the rounding at the top
        block[...] = np.iinfo(dtype).max if dtype != np.float32 else 1e4
    return {"block": block, "out_hw": (h, w)}


def compare_random(lib, cases: int, seed: int) -> list[str]:
    """Run random cases on the harness and on NumPy; describe every disagreement.

    Integer dtypes must agree bit for bit; float32 within float32 rounding.
    """
    rng = np.random.default_rng(seed)
    failures = []
    for i in range(cases):
        case = random_case(rng)
        got = host_resample(lib, **case)
        want = resample.area_resample(**case)
        block = case["block"]
        if block.dtype == np.float32:
            ok = got.dtype == want.dtype and np.allclose(got, want, rtol=1e-5, atol=1e-3)
        else:
            ok = got.dtype == want.dtype and np.array_equal(got, want)
        if not ok:
            failures.append(f"case {i}: {block.dtype} {block.shape} -> {case['out_hw']}")
    return failures


if __name__ == "__main__":  # the ASan run: python tests/kernels/resample_harness.py LIB CASES
    problems = compare_random(ctypes.CDLL(sys.argv[1]), int(sys.argv[2]), seed=13)
    print("\n".join(problems) or f"{sys.argv[2]} cases agree")
    sys.exit(1 if problems else 0)
