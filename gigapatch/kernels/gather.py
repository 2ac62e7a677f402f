"""Gather: cut patches out of an image block at given top-left positions."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gigapatch.errors import RegionError

__all__ = ["gather"]


def gather(
    block,
    ys: Sequence[int] | np.ndarray,
    xs: Sequence[int] | np.ndarray,
    size: tuple[int, int],
    *,
    out=None,
):
    """Return the (N, h, w, C) patches of ``block`` whose top-left corners are (ys, xs).

    The code is generic over the array namespace of ``block`` (NumPy, CuPy):
    it copies one slice per patch, which is many times faster than fancy
    indexing on either. Positions are bounds-checked on the host before any
    copy (CuPy wraps out-of-range indices silently where NumPy raises).

    Parameters
    ----------
    block
        (H, W, C) image region.
    ys, xs
        (N,) integer top-left corners, in pixels of ``block``.
    size
        (h, w) of each patch.
    out
        Optional (N, h, w, C) array of ``block``'s namespace and dtype to fill.

    Returns
    -------
    array
        ``out``, or a new array of ``block``'s namespace.
    """
    ys = np.asarray(ys, dtype=np.int64)
    xs = np.asarray(xs, dtype=np.int64)
    h, w = size
    bh, bw = block.shape[:2]
    if ys.shape != xs.shape or ys.ndim != 1:
        raise ValueError(f"ys and xs must be 1-d of equal length; got {ys.shape} and {xs.shape}")
    if len(ys) and (ys.min() < 0 or xs.min() < 0 or ys.max() + h > bh or xs.max() + w > bw):
        bad = int(np.flatnonzero((ys < 0) | (xs < 0) | (ys + h > bh) | (xs + w > bw))[0])
        raise RegionError(
            f"patch {bad} at y={ys[bad]}, x={xs[bad]} of size {h}x{w} lies outside the "
            f"{bh}x{bw} block"
        )
    if out is None:
        out = _empty_like_block(block, (len(ys), h, w, block.shape[2]))
    for i, (y, x) in enumerate(zip(ys.tolist(), xs.tolist(), strict=True)):
        out[i, ...] = block[y : y + h, x : x + w, ...]
    return out


def _empty_like_block(block, shape: tuple[int, ...]):
    """A new array of ``block``'s namespace, dtype and device."""
    if isinstance(block, np.ndarray):
        return np.empty(shape, dtype=block.dtype)
    xp = block.__array_namespace__()
    try:
        return xp.empty(shape, dtype=block.dtype, device=block.device)
    except TypeError:  # namespaces whose creation functions take no device (older CuPy)
        return xp.empty(shape, dtype=block.dtype)
