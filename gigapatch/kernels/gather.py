"""Gather: cut patches out of an image block at given top-left positions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt

from gigapatch.errors import InvalidArgumentError, Pair, RegionError, parse_pair
from gigapatch.kernels.backend import Array, namespace_of

__all__ = ["Positions", "gather", "outside_mask"]

#: (N,) integer pixel coordinates of patch corners, on the host.
Positions: TypeAlias = Sequence[int] | npt.NDArray[np.integer[Any]]


def outside_mask(
    ys: npt.NDArray[np.integer[Any]], xs: npt.NDArray[np.integer[Any]], span: tuple[int, int],
    shape: tuple[int, int], strict: bool,
) -> npt.NDArray[np.bool_]:
    """Which patches reach outside the block; with ``strict``, any such patch is a RegionError."""
    (span_h, span_w), (bh, bw) = span, shape
    outside = (ys < 0) | (xs < 0) | (ys + span_h > bh) | (xs + span_w > bw)
    if strict and outside.any():
        bad = int(np.flatnonzero(outside)[0])
        raise RegionError(
            f"patch {bad} at y={ys[bad]}, x={xs[bad]} spanning {span_h}x{span_w} lies outside "
            f"the {bh}x{bw} block"
        )
    return outside


def _valid_range(start: int, step: int, count: int, length: int) -> tuple[int, int]:
    """``[lo, hi)``: the ``i < count`` whose sample ``start + i * step`` lies in ``[0, length)``."""
    lo = 0 if start >= 0 else (step - 1 - start) // step
    hi = 0 if start >= length else min(count, (length - start + step - 1) // step)
    return lo, max(lo, hi)


def gather(
    block: Array, ys: Positions, xs: Positions, size: Pair, *, dilation: Pair = 1,
    fill: float | None = 0, out: Array | None = None,
) -> Array:
    """Return the (N, h, w, C) patches of ``block`` whose top-left corners are (ys, xs).

    Patch ``k`` holds ``block[ys[k] + i * ry, xs[k] + j * rx]`` for ``i < h``,
    ``j < w`` (``r`` the dilation, as the rates of ``tf.image.extract_patches``);
    samples outside the block take ``fill``.

    The code is generic over the array namespace of ``block`` (NumPy, CuPy,
    array-api-strict): one strided slice copy per patch, many times faster
    than fancy indexing on either. Positions are checked on the host before any
    copy (CuPy wraps out-of-range indices silently where NumPy raises).

    Parameters
    ----------
    block
        (H, W, C) image region.
    ys, xs
        (N,) integer top-left corners, in pixels of ``block`` (may be negative).
    size
        (h, w) of each patch, or one int.
    dilation
        Sampling step inside a patch (1 = contiguous); an int or (ry, rx).
    fill
        Value of samples outside the block; ``None`` makes any such sample an
        error (``RegionError``), for callers that expect patches inside.
    out
        Optional (N, h, w, C) array of ``block``'s namespace and dtype to fill.

    Returns
    -------
    array
        ``out``, or a new array of ``block``'s namespace and device.
    """
    ys = np.asarray(ys, dtype=np.int64)
    xs = np.asarray(xs, dtype=np.int64)
    h, w = parse_pair("size", size)
    ry, rx = parse_pair("dilation", dilation)
    bh, bw = block.shape[:2]
    if ys.shape != xs.shape or ys.ndim != 1:
        raise InvalidArgumentError(
            f"ys and xs must be 1-d of equal length; got {ys.shape} and {xs.shape}"
        )
    span_h, span_w = (h - 1) * ry + 1, (w - 1) * rx + 1
    outside = outside_mask(ys, xs, (span_h, span_w), (bh, bw), fill is None)
    if out is None:
        out = _empty_like_block(block, (len(ys), h, w, block.shape[2]))
    for k, (y, x, partial) in enumerate(zip(ys.tolist(), xs.tolist(), outside.tolist(),
                                            strict=True)):
        if not partial:
            out[k, ...] = block[y : y + span_h : ry, x : x + span_w : rx, ...]
            continue
        out[k, ...] = fill
        i0, i1 = _valid_range(y, ry, h, bh)
        j0, j1 = _valid_range(x, rx, w, bw)
        if i0 < i1 and j0 < j1:
            out[k, i0:i1, j0:j1, ...] = block[
                y + i0 * ry : y + (i1 - 1) * ry + 1 : ry,
                x + j0 * rx : x + (j1 - 1) * rx + 1 : rx,
                ...,
            ]
    return out


def _empty_like_block(
    block: Array, shape: tuple[int, ...], dtype: npt.DTypeLike | None = None
) -> Array:
    """A new array of ``block``'s namespace and device, of ``dtype`` (default: the block's)."""
    if isinstance(block, np.ndarray):
        return np.empty(shape, dtype=block.dtype if dtype is None else dtype)
    xp = namespace_of(block)
    dtype = block.dtype if dtype is None else getattr(xp, np.dtype(dtype).name)
    try:
        return xp.empty(shape, dtype=dtype, device=block.device)
    except TypeError:  # namespaces whose creation functions take no device (older CuPy)
        return xp.empty(shape, dtype=dtype)
