"""The fused patch pipeline: gather → flip/rotate → jitter → cast → normalize, in one pass.

On a CuPy block this is one launch of ``src/patches.cu``; on NumPy (and any
array-API namespace) the same results come from one strided view per patch,
written once into the output.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt

from gigapatch.errors import InvalidArgumentError, Pair, parse_pair
from gigapatch.kernels import launch as _launch
from gigapatch.kernels.backend import Array, astype, namespace_of
from gigapatch.kernels.gather import Positions, _empty_like_block, gather, outside_mask
from gigapatch.kernels.host import HostNormalizer
from gigapatch.kernels.normalize import (
    Layout,
    Normalization,
    Normalize,
    OutputDtype,
    parse_layout,
    parse_normalize,
    parse_output_dtype,
)
from gigapatch.kernels.transforms import clip_range, dihedral_view, parse_dihedral, parse_jitter

__all__ = ["Normalize", "augment", "fused_gather"]


def fused_gather(
    block: Array, ys: Positions, xs: Positions, size: Pair, *, dilation: Pair = 1,
    fill: float | None = 0,
    dihedral: Sequence[int] | npt.NDArray[np.integer[Any]] | None = None,
    jitter: Sequence[Sequence[float]] | npt.NDArray[np.floating[Any]] | None = None,
    normalize: Normalize = None,
    dtype: OutputDtype | npt.DTypeLike | None = None,
    layout: Layout = "hwc",
    out: Array | None = None,
) -> Array:
    """Cut, transform and normalize the patches of ``block`` at (ys, xs).

    Patch ``k`` is :func:`~gigapatch.kernels.gather` 's patch, turned by
    dihedral code ``dihedral[k]`` (see :mod:`gigapatch.kernels.transforms`),
    then, with a normalization, ``clip(x * c_k + b_k)`` for jitter row
    ``(c_k, b_k)`` and ``x / divisor + offset`` per channel, in float32, stored
    as ``dtype``.

    Parameters
    ----------
    block
        (H, W, C) image region: NumPy, CuPy (one kernel launch) or any
        array-API array.
    ys, xs, size, dilation, fill
        As for :func:`~gigapatch.kernels.gather`; ``fill`` is in source units
        and must be representable in the block's dtype.
    dihedral
        (N,) codes in 0..7, or None for none.
    jitter
        (N, 2) rows of (contrast, brightness), or None; needs ``normalize``.
    normalize
        None (output keeps the source dtype), a preset name (``"xception"``,
        ``"imagenet"``, ``"unit"``), a :class:`Normalization` or a mapping with
        ``divisor``/``offset``, ``scale``/``offset`` or ``mean``/``std``.
    dtype
        ``"float32"`` (default) or ``"float16"`` with a normalization.
    layout
        ``"hwc"`` (N, h, w, C) or ``"chw"`` (N, C, h, w).
    out
        Optional output array of the right shape, dtype and namespace.

    Returns
    -------
    array
        ``out`` or a new array on ``block``'s device.
    """
    ys = np.asarray(ys, dtype=np.int64)
    xs = np.asarray(xs, dtype=np.int64)
    size = h, w = parse_pair("size", size)
    dil = ry, rx = parse_pair("dilation", dilation)
    if block.ndim != 3 or ys.ndim != 1 or ys.shape != xs.shape:
        raise InvalidArgumentError(
            f"block must be (H, W, C) and ys, xs 1-d of equal length; got block "
            f"{tuple(block.shape)}, ys {ys.shape}, xs {xs.shape}"
        )
    n, (bh, bw, c) = len(ys), tuple(int(v) for v in block.shape)
    norm = parse_normalize(normalize)
    src_dtype = host_dtype(block.dtype)
    out_dtype = parse_output_dtype(dtype, norm, src_dtype)
    layout = parse_layout(layout)
    ops = parse_dihedral(dihedral, n, size)
    jit = parse_jitter(jitter, n)
    if jit is not None and norm is None:
        raise InvalidArgumentError("jitter needs a normalization (normalize=...); got None")
    span = ((h - 1) * ry + 1, (w - 1) * rx + 1)
    outside = outside_mask(ys, xs, span, (bh, bw), fill is None)
    fill_value = _parse_fill(fill, src_dtype)
    shape = (n, h, w, c) if layout == "hwc" else (n, c, h, w)
    cp = _cuda_namespace(block)
    if cp is None and not isinstance(block, np.ndarray):
        check_namespace_dtype(block, out_dtype)
    if out is None and cp is not None:
        out = cp.empty(shape, dtype=out_dtype)
    out = _check_out(out, block, shape, out_dtype)
    if n == 0:
        return out
    if cp is not None:
        _run_cuda(cp, block, ys, xs, ops, jit, norm, out, size, dil, fill_value, layout)
        return out
    if norm is None and ops is None and layout == "hwc":
        return gather(block, ys, xs, size, dilation=dil, fill=fill_value, out=out)
    xp = namespace_of(block)
    lo, hi = clip_range(src_dtype)
    normalize_patch = divisor = offset = None
    if norm is not None and xp is np:
        normalize_patch = HostNormalizer(norm, (h, w, c), src_dtype, out, layout, (lo, hi))
    elif norm is not None:
        divisor, offset = _device_vectors(norm, c, layout, xp, block)
    for k in range(n):
        y, x = int(ys[k]), int(xs[k])
        if outside[k]:
            src = gather(block, [y], [x], size, dilation=dil, fill=fill_value)[0, ...]
        else:
            src = block[y : y + span[0] : ry, x : x + span[1] : rx, :]
        if ops is not None:
            src = dihedral_view(src, int(ops[k]), xp)
        cb = None if jit is None else (jit[k, 0], jit[k, 1])
        if normalize_patch is not None:
            normalize_patch(k, src, cb)
            continue
        if layout == "chw":
            src = (getattr(xp, "permute_dims", None) or xp.transpose)(src, (2, 0, 1))
        if norm is None:
            out[k, ...] = src
        else:
            _normalize_into(xp, out, k, src, divisor, offset, cb, (lo, hi))
    return out


def augment(patches: Array, **options: Any) -> Array:
    """:func:`fused_gather` on a stack of patches (N, h, w, C) already cut, e.g. at training.

    Takes ``dihedral``, ``jitter``, ``normalize``, ``dtype``, ``layout``, ``out``.
    The stack is seen as one (N·h, w, C) block with patch ``k`` at row ``k·h``,
    so the GPU runs the same single kernel.
    """
    if patches.ndim != 4:
        raise InvalidArgumentError(f"patches must be (N, h, w, C); got shape {patches.shape}")
    n, h, w, c = (int(v) for v in patches.shape)
    allowed = {"dihedral", "jitter", "normalize", "dtype", "layout", "out"}
    if set(options) - allowed:
        raise InvalidArgumentError(
            f"augment takes {', '.join(sorted(allowed))}; got {', '.join(sorted(options))}"
        )
    xp = namespace_of(patches)  # the standard has no reshape method, only xp.reshape
    block = xp.reshape(patches, (n * h, w, c)) if n else patches[:0, :, 0, :]
    return fused_gather(block, np.arange(n) * h, np.zeros(n, np.int64), (h, w), **options)


def check_namespace_dtype(block: Array, dtype: np.dtype[Any]) -> None:
    """Refuse an output dtype that ``block``'s namespace lacks (the standard has no float16)."""
    if not hasattr(namespace_of(block), dtype.name):
        raise InvalidArgumentError(
            f"dtype {dtype.name} is not available for {type(block).__module__} arrays; "
            "use float32"
        )


def host_dtype(dtype: Any) -> np.dtype[Any]:
    """The NumPy dtype of any namespace's dtype (array-api-strict's print as ``ns.name``)."""
    try:
        found: np.dtype[Any] = np.dtype(dtype)
    except TypeError:
        found = np.dtype(str(dtype).rsplit(".", 1)[-1])
    return found


def _parse_fill(fill: float | None, dtype: np.dtype[Any]) -> float:
    """``fill`` as a value of ``dtype`` (0 when None: never used, the bounds were checked)."""
    if fill is None:
        return 0
    dtype = np.dtype(dtype)
    ok = isinstance(fill, int | float | np.number) and not isinstance(fill, bool)
    if ok and np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        ok = float(fill).is_integer() and info.min <= fill <= info.max
    if not ok:
        raise InvalidArgumentError(
            f"fill must be None or a number representable as {dtype}; got {fill!r}"
        )
    value: float = np.asarray(fill, dtype=dtype).item()  # an int for integer dtypes
    return value


def _check_out(out: Array | None, block: Array, shape: tuple[int, ...],
               dtype: np.dtype[Any]) -> Array:
    if out is None:
        return _empty_like_block(block, shape, dtype)
    if tuple(out.shape) != shape or host_dtype(out.dtype) != dtype:
        raise InvalidArgumentError(
            f"out must have shape {shape} and dtype {dtype}; got {tuple(out.shape)} and "
            f"{out.dtype}"
        )
    return out


def _cuda_namespace(block: Array) -> ModuleType | None:
    """CuPy when ``block`` is a CuPy array (the fused kernel runs), else None.

    The launcher tests replace this to drive the CUDA path with NumPy arrays
    and a host-compiled kernel.
    """
    if type(block).__module__.split(".")[0] != "cupy":
        return None
    from gigapatch.kernels.backend import array_module

    return array_module("gpu")


def _device_vectors(
    norm: Normalization, c: int, layout: Layout, xp: ModuleType, block: Array
) -> tuple[Array, ...]:
    """Per-channel divisor and offset, shaped to broadcast against one patch, on its device."""
    shape = (c,) if layout == "hwc" else (c, 1, 1)
    arrays = [np.reshape(v, shape) for v in norm.arrays(c)]
    return tuple(to_device(xp, v, block) for v in arrays)


def to_device(xp: ModuleType, host: npt.NDArray[Any], block: Array) -> Array:
    """``host`` as an array of ``xp`` on ``block``'s device (CuPy's asarray takes no device)."""
    if xp is np:
        return host
    try:
        return xp.asarray(host, device=block.device)
    except TypeError:
        return xp.asarray(host)


def _normalize_into(
    xp: ModuleType, out: Array, k: int, src: Array, divisor: Array, offset: Array,
    jitter: tuple[float, float] | None, clip: tuple[float, float],
) -> None:
    """``out[k] = (clip(src * c + b) if jitter) / divisor + offset``, float32 ops in order."""
    x = astype(xp, src, xp.float32)
    if jitter is not None:
        x = xp.clip(x * float(jitter[0]) + float(jitter[1]), float(clip[0]), float(clip[1]))
    out[k, ...] = astype(xp, x / divisor + offset, out.dtype)


def _run_cuda(
    cp: ModuleType, block: Array, ys: npt.NDArray[np.integer[Any]],
    xs: npt.NDArray[np.integer[Any]], ops: npt.NDArray[np.int32] | None,
    jitter: npt.NDArray[np.float32] | None,
    norm: Normalization | None, out: Array, size: tuple[int, int], dilation: tuple[int, int],
    fill: float, layout: Layout,
) -> None:
    """One launch of the fused kernel on ``block``'s device."""
    if not out.flags.c_contiguous:
        raise InvalidArgumentError("out must be C-contiguous on the GPU; got a strided array")
    n = len(ys)
    block = cp.ascontiguousarray(block)
    ys_d, xs_d = cp.asarray(ys), cp.asarray(xs)
    ops_d = cp.asarray(np.zeros(n, np.int32) if ops is None else ops)
    kwargs: dict[str, Any] = {}
    if norm is not None:
        divisor, offset = norm.arrays(block.shape[2])
        kwargs = {
            "jitter": cp.asarray(np.zeros((1, 2), np.float32) if jitter is None else jitter),
            "use_jitter": jitter is not None, "divisor": cp.asarray(divisor),
            "offset": cp.asarray(offset), "clip": clip_range(block.dtype),
        }
    plan = _launch.plan_launch(block, ys_d, xs_d, ops_d, out, size=size, dilation=dilation,
                               fill=fill, layout=layout, **kwargs)
    _launch.launch(cp, plan)
