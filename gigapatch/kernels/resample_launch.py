"""CuPy launcher of the area resampler (``src/resample.cu``), on the machinery of ``launch.py``.

The module is compiled by NVRTC through ``cupy.RawModule`` the first time a
device resamples, with the same options as the patch kernels, then cached
per device (:func:`~gigapatch.kernels.launch.cached_module`); nothing is
compiled or imported at import time. :func:`plan_resample` computes grid,
block and every argument from shapes and dtypes alone, so the tests check
them against the kernel signature without a GPU.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gigapatch.errors import InvalidArgumentError
from gigapatch.kernels import launch
from gigapatch.kernels.launch import IN_TYPES, MAX_BLOCKS, THREADS, Launch

__all__ = ["HEADER", "SOURCE", "kernel_name", "name_expressions", "plan_resample",
           "resample_source", "run"]

SOURCE = "resample.cu"
HEADER = "resample_core.cuh"
# The core computes i * hs, (i + 1) * hs + h - 1 and hs * ws in 32-bit int.
INT_LIMIT = 2**31


def resample_source(header: str | None = None, body: str | None = None) -> str:
    """The translation unit NVRTC compiles: ``resample.cu`` with its core header inlined.

    ``header``/``body`` replace the shipped texts (the tests compile broken copies).
    """
    return launch.translation_unit(SOURCE, HEADER, header=header, body=body)


def kernel_name(dtype: Any) -> str:
    """The instantiation that resamples blocks of ``dtype``."""
    dtype = np.dtype(dtype)
    if dtype not in IN_TYPES:
        raise InvalidArgumentError(
            f"the GPU resampler takes blocks of {', '.join(map(str, IN_TYPES))}; got {dtype}"
        )
    return f"gp_resample_area<{IN_TYPES[dtype]}>"


def name_expressions() -> tuple[str, ...]:
    """Every instantiation the module is built with."""
    return tuple(kernel_name(t) for t in IN_TYPES)


def plan_resample(block: Any, out: Any) -> Launch:
    """The launch that resamples the (n, hs, ws, c) ``block`` into the (n, h, w, c) ``out``.

    Both arrays are passed through (C-contiguous device arrays at run time);
    scalars are NumPy scalars of the exact C type of each kernel parameter.
    """
    n, hs, ws, c = (int(v) for v in block.shape)
    h, w = int(out.shape[1]), int(out.shape[2])
    if hs * ws >= INT_LIMIT or (hs + 1) * h >= INT_LIMIT or (ws + 1) * w >= INT_LIMIT:
        raise InvalidArgumentError(
            f"the GPU resampler takes patches of < 2**31 pixels; got {hs}x{ws} -> {h}x{w}"
        )
    grid = (max(1, min(MAX_BLOCKS, -(-(h * w) // THREADS))), max(1, min(MAX_BLOCKS, n)))
    args = (block, np.int64(n), np.int32(hs), np.int32(ws), np.int32(c), out, np.int32(h),
            np.int32(w))
    return Launch(kernel_name(block.dtype), grid, (THREADS,), args)


def get_kernel(cupy: Any, name: str) -> Any:
    """The ``cupy.RawKernel`` of instantiation ``name`` on the current device."""
    module = launch.cached_module(cupy, "resample", resample_source, name_expressions)
    return module.get_function(name)


def run(cupy: Any, plan: Launch) -> None:
    """Run ``plan`` on the current device (asynchronously, on the current stream)."""
    get_kernel(cupy, plan.name)(plan.grid, plan.block, plan.args)
