"""Per-patch transforms from host-drawn parameters: the 8 flips/rotations and intensity jitter.

The kernels never draw random numbers: they take arrays of parameters, one
row per patch, that :mod:`gigapatch.kernels.augment` (or the caller) drew.

Dihedral code ``op`` in 0..7: rotate by ``90° * (op % 4)`` counter-clockwise
(``np.rot90``), then, when ``op >= 4``, flip left-right. So output pixel
``(i, j)`` of an ``n × n`` patch ``p`` is::

    j' = n - 1 - j if op >= 4 else j
    op % 4 == 0: p[i, j']     1: p[j', n-1-i]     2: p[n-1-i, n-1-j']     3: p[n-1-j', i]

Jitter row ``(contrast, brightness)``: ``x' = clip(x * contrast + brightness,
lo, hi)`` in float32, before normalization, with ``[lo, hi]`` the range of
an integer source dtype (no clipping for floats).
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt

from gigapatch.errors import InvalidArgumentError
from gigapatch.kernels.backend import Array

__all__ = ["DIHEDRAL", "apply_dihedral", "dihedral_view", "parse_dihedral", "parse_jitter"]

DIHEDRAL = tuple(range(8))


def parse_dihedral(
    ops: Sequence[int] | npt.NDArray[np.integer[Any]] | None, n: int, size: tuple[int, int]
) -> npt.NDArray[np.int32] | None:
    """Check ``ops`` (N dihedral codes) and return them as int32, or None for identity."""
    if ops is None:
        return None
    arr = np.asarray(ops)
    if arr.shape != (n,) or not (np.issubdtype(arr.dtype, np.integer) or arr.size == 0):
        raise InvalidArgumentError(
            f"dihedral must be {n} integer codes in 0..7 (one per patch); got shape "
            f"{arr.shape} of {arr.dtype}"
        )
    if arr.size and (arr.min() < 0 or arr.max() > 7):
        raise InvalidArgumentError(
            f"dihedral codes must lie in 0..7; got values from {arr.min()} to {arr.max()}"
        )
    if size[0] != size[1] and np.any(arr % 2 == 1):
        raise InvalidArgumentError(
            f"dihedral codes 1, 3, 5, 7 (quarter turns) need square patches; got size {size}"
        )
    return arr.astype(np.int32)


def parse_jitter(
    jitter: Sequence[Sequence[float]] | npt.NDArray[np.floating[Any]] | None, n: int
) -> npt.NDArray[np.float32] | None:
    """Check ``jitter`` ((N, 2) contrast, brightness) and return it as float32, or None."""
    if jitter is None:
        return None
    arr = np.asarray(jitter, dtype=np.float32)
    if arr.shape != (n, 2) or not np.all(np.isfinite(arr)):
        raise InvalidArgumentError(
            f"jitter must be a finite ({n}, 2) array of (contrast, brightness) rows; got shape "
            f"{arr.shape}"
        )
    return arr


def clip_range(dtype: npt.DTypeLike) -> tuple[float, float]:
    """``[lo, hi]`` that jittered values are clipped to: an integer dtype's range."""
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return float(info.min), float(info.max)
    big = float(np.finfo(np.float32).max)
    return -big, big


def dihedral_view(patch: Array, op: int, xp: ModuleType = np) -> Array:
    """``patch`` (h, w, C) under dihedral code ``op``: a view where the namespace allows."""
    permute = getattr(xp, "permute_dims", None) or xp.transpose  # NumPy < 2 has no permute_dims
    rotated = patch
    for _ in range(op % 4):  # one counter-clockwise quarter turn: transpose, then flip rows
        rotated = xp.flip(permute(rotated, (1, 0, 2)), axis=0)
    return xp.flip(rotated, axis=1) if op >= 4 else rotated


def apply_dihedral(patches: npt.NDArray[Any], ops: Sequence[int]) -> npt.NDArray[Any]:
    """Reference: ``np.rot90`` then ``np.fliplr`` per patch, for tests and the host path."""
    out = [np.rot90(p, op % 4) for p, op in zip(patches, ops, strict=True)]
    return np.stack([p[:, ::-1] if op >= 4 else p for p, op in zip(out, ops, strict=True)])
