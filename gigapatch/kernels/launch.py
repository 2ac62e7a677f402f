"""CuPy launcher of the fused patch kernels (``src/patches.cu``).

The kernels are compiled by NVRTC through ``cupy.RawModule`` the first time
they are used on a device, then cached per device; nothing is compiled or
imported at import time. The source handed to NVRTC is one translation unit:
``patches.cu`` with ``gigapatch_core.cuh`` inlined, so CuPy's on-disk cache,
keyed on the source text, sees every change to the header.

What a launch needs is computed by :func:`plan_launch` from shapes and dtypes
alone, so the tests check grid, block and every argument's C type against
the kernel signature without a GPU.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from gigapatch.errors import InvalidArgumentError
from gigapatch.kernels.normalize import Layout

__all__ = [
    "COMPILE_OPTIONS",
    "IN_TYPES",
    "MAX_BLOCKS",
    "OUT_TYPES",
    "THREADS",
    "Launch",
    "cached_module",
    "get_kernel",
    "kernel_name",
    "kernel_source",
    "name_expressions",
    "plan_launch",
    "translation_unit",
]

SOURCE_DIR = Path(__file__).resolve().parent / "src"
HEADER = "gigapatch_core.cuh"
SOURCES = ("patches.cu",)
# Exactly what RawModule passes to NVRTC (the compile gate of the tests uses the same tuple).
COMPILE_OPTIONS = ("--std=c++17", "--fmad=false")
THREADS = 256
MAX_BLOCKS = 65535

# C type of each supported source dtype, and of each normalized output dtype.
IN_TYPES: dict[np.dtype[Any], str] = {
    np.dtype(np.uint8): "unsigned char", np.dtype(np.uint16): "unsigned short",
    np.dtype(np.float32): "float",
}
OUT_TYPES: dict[np.dtype[Any], str] = {
    np.dtype(np.float32): "float", np.dtype(np.float16): "gp_half",
}


def kernel_source(header: str | None = None, body: str | None = None) -> str:
    """The translation unit NVRTC compiles: ``patches.cu`` with the core header inlined.

    ``header``/``body`` replace the shipped texts (the tests compile broken copies).
    """
    return translation_unit(SOURCES[0], HEADER, header=header, body=body)


def translation_unit(
    body_file: str, header_file: str, *, header: str | None = None, body: str | None = None
) -> str:
    """``src/body_file`` with its ``#include "header_file"`` replaced by the header's text.

    One translation unit per module, so CuPy's on-disk cache (keyed on the
    source text) sees every change to the header.
    """
    header = (SOURCE_DIR / header_file).read_text() if header is None else header
    body = (SOURCE_DIR / body_file).read_text() if body is None else body
    include = f'#include "{header_file}"'
    if include not in body:
        raise InvalidArgumentError(f"kernel body must contain {include!r}")
    return body.replace(include, header)


def kernel_name(in_dtype: npt.DTypeLike, out_dtype: npt.DTypeLike, normalized: bool) -> str:
    """The template instantiation that handles ``in_dtype`` → ``out_dtype``."""
    src, dst = np.dtype(in_dtype), np.dtype(out_dtype)
    if src not in IN_TYPES:
        raise InvalidArgumentError(
            f"the GPU kernels take blocks of {', '.join(map(str, IN_TYPES))}; got {src}"
        )
    if not normalized:
        return f"gp_gather_raw<{IN_TYPES[src]}>"
    return f"gp_gather_norm<{IN_TYPES[src]}, {OUT_TYPES[dst]}>"


def name_expressions() -> tuple[str, ...]:
    """Every instantiation the module is built with (all are compiled, all can be launched)."""
    raw = [kernel_name(t, t, False) for t in IN_TYPES]
    norm = [kernel_name(t, o, True) for t in IN_TYPES for o in OUT_TYPES]
    return tuple(raw + norm)


@dataclass(frozen=True)
class Launch:
    """One kernel launch: which instantiation, grid (pixel blocks, patches), block, arguments."""

    name: str
    grid: tuple[int, int]
    block: tuple[int]
    args: tuple[Any, ...]


def plan_launch(
    block: Any, ys: Any, xs: Any, ops: Any, out: Any, *, size: tuple[int, int],
    dilation: tuple[int, int], fill: float, layout: Layout, jitter: Any = None,
    use_jitter: bool = False, divisor: Any = None, offset: Any = None,
    clip: tuple[float, float] = (0.0, 0.0),
) -> Launch:
    """The launch of one fused batch; arrays are passed through (device arrays at run time).

    Scalars are NumPy scalars of the exact C type of the kernel parameter:
    CuPy passes a NumPy scalar by its dtype, so a wrong width would shift every
    later argument. ``jitter`` is always an array (a placeholder when
    ``use_jitter`` is False); ``divisor`` given means the normalizing kernel.
    """
    normalized = divisor is not None
    bh, bw, c = (int(v) for v in block.shape)
    h, w = size
    n = int(ys.shape[0])
    if h * w >= 2**31:
        raise InvalidArgumentError(f"the GPU kernels take patches of < 2**31 pixels; got {size}")
    grid = (max(1, min(MAX_BLOCKS, -(-(h * w) // THREADS))), max(1, min(MAX_BLOCKS, n)))
    head = (block, np.int32(bh), np.int32(bw), np.int32(c), ys, xs, ops)
    tail = (np.int64(n), np.int32(h), np.int32(w), np.int32(dilation[0]),
            np.int32(dilation[1]))
    first = np.int32(layout == "chw")
    args: tuple[Any, ...]
    if not normalized:
        fill_native = np.asarray(fill, dtype=block.dtype)[()]
        args = (*head, out, *tail, fill_native, first)
    else:
        args = (*head, jitter, np.int32(use_jitter), divisor, offset, np.float32(clip[0]),
                np.float32(clip[1]), out, *tail, np.float32(fill), first)
    return Launch(kernel_name(block.dtype, out.dtype, normalized), grid, (THREADS,), args)


_modules: dict[tuple[str, int], Any] = {}
_lock = threading.Lock()


def _module(cupy: Any) -> Any:
    """The compiled module of the current device, built on first use (NVRTC), then cached."""
    return cached_module(cupy, "patches", kernel_source, name_expressions)


def cached_module(
    cupy: Any, key: str, code: Callable[[], str], names: Callable[[], tuple[str, ...]]
) -> Any:
    """Module ``key`` of the current device: ``RawModule(code(), COMPILE_OPTIONS, names())``.

    Built the first time a device asks for it, then cached per (key, device).
    """
    device = cupy.cuda.Device().id
    with _lock:
        if (key, device) not in _modules:
            _modules[key, device] = cupy.RawModule(
                code=code(), options=COMPILE_OPTIONS, name_expressions=names()
            )
        return _modules[key, device]


def get_kernel(cupy: Any, name: str) -> Any:
    """The ``cupy.RawKernel`` of instantiation ``name`` on the current device."""
    return _module(cupy).get_function(name)


def launch(cupy: Any, plan: Launch) -> None:
    """Run ``plan`` on the current device (asynchronously, on the current stream)."""
    get_kernel(cupy, plan.name)(plan.grid, plan.block, plan.args)
