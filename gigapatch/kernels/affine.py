"""Affine augmentation: rotation, shear, zoom and shift through one bilinear resample per patch.

Each patch samples the block itself (not a cut patch), so a rotated patch
shows the tissue around it rather than fill in its corners. For output pixel
``(i, j)`` of a patch of size ``(h, w)`` at top-left ``(y, x)``, with
``d = (i - (h-1)/2, j - (w-1)/2)`` its offset from the patch centre::

    source (row, col) = (y + (h-1)/2, x + (w-1)/2) + A @ d + t

for the patch's 2×3 matrix ``[A | t]``. Samples between pixels are bilinear;
pixels outside the block count as ``fill`` (scipy's ``mode="grid-constant"``).
The code is generic over the array namespace (NumPy, CuPy, array-api-strict).
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt

from gigapatch.errors import InvalidArgumentError, Pair, parse_pair
from gigapatch.kernels.backend import Array, astype, namespace_of
from gigapatch.kernels.fused import check_namespace_dtype, host_dtype, to_device
from gigapatch.kernels.gather import Positions, _empty_like_block
from gigapatch.kernels.normalize import (
    Layout,
    Normalize,
    OutputDtype,
    parse_layout,
    parse_normalize,
    parse_output_dtype,
)

__all__ = ["affine_gather", "affine_matrices"]

_CHUNK_PIXELS = 1 << 20  # output pixels resampled at once: bounds the float64 temporaries
#: One value for every patch, or one per patch.
PerPatch: TypeAlias = float | Sequence[float] | npt.NDArray[np.floating[Any]]


def affine_matrices(
    n: int,
    *,
    rotation: PerPatch = 0.0,
    shear: PerPatch = 0.0,
    zoom: PerPatch = 1.0,
    shift: PerPatch = 0.0,
) -> npt.NDArray[np.float64]:
    """(n, 2, 3) matrices ``[A | t]`` from per-patch parameters (scalars apply to all).

    Parameters
    ----------
    n
        Number of patches.
    rotation
        Degrees; the content turns counter-clockwise (90 equals ``np.rot90``).
    shear
        Degrees; columns slide in proportion to the row offset.
    zoom
        Magnification (2 shows half the field, twice as large); one value or
        (n, 2) rows of (zoom_y, zoom_x).
    shift
        Pixels the sampling window moves, one value or (n, 2) rows of (dy, dx).
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
        raise InvalidArgumentError(f"n must be a non-negative integer; got {n!r}")
    theta = np.deg2rad(_per_patch("rotation", rotation, n))
    tan_s = np.tan(np.deg2rad(_per_patch("shear", shear, n)))
    z = _per_patch("zoom", zoom, n, pair=True)
    t = _per_patch("shift", shift, n, pair=True)
    if np.any(z <= 0):
        raise InvalidArgumentError(f"zoom must be positive; got minimum {z.min()}")
    cos, sin = np.cos(theta), np.sin(theta)
    rot = np.stack([np.stack([cos, sin], -1), np.stack([-sin, cos], -1)], 1)  # (n, 2, 2)
    shr = np.zeros((n, 2, 2))
    shr[:, 0, 0] = shr[:, 1, 1] = 1.0
    shr[:, 1, 0] = tan_s
    a = rot @ shr @ (np.eye(2) / z[:, :, None])  # diag(1 / zoom) on the right
    a = np.where(np.abs(a) < 1e-12, 0.0, a)  # exact quarter turns: cos(90°) is 6e-17
    return np.concatenate([a, t[:, :, None]], axis=2)


def _per_patch(name: str, value: PerPatch, n: int, pair: bool = False) -> npt.NDArray[np.float64]:
    arr = np.asarray(value, dtype=np.float64)
    want = (n, 2) if pair else (n,)
    try:
        out = np.broadcast_to(arr[..., None] if pair and arr.ndim == 1 else arr, want)
    except ValueError:
        out = None
    if out is None or (pair and arr.ndim == 1 and arr.shape[0] not in (1, n)):
        raise InvalidArgumentError(
            f"{name} must be a scalar or {want} per-patch values; got shape {arr.shape}"
        )
    if not np.all(np.isfinite(out)):
        raise InvalidArgumentError(f"{name} must be finite; got {value!r}")
    return np.array(out)


def affine_gather(
    block: Array,
    ys: Positions,
    xs: Positions,
    size: Pair,
    matrices: npt.ArrayLike,
    *,
    fill: float = 0,
    normalize: Normalize = None,
    dtype: OutputDtype | None = None,
    layout: Layout = "hwc",
) -> Array:
    """Resample each patch of ``block`` through its affine matrix; float output.

    Parameters
    ----------
    block
        (H, W, C) image region of any array namespace.
    ys, xs, size
        Top-left corners and (h, w) of the patches, as for ``gather``.
    matrices
        (N, 2, 3) host array, e.g. from :func:`affine_matrices`.
    fill
        Value of pixels outside the block, in source units.
    normalize, dtype, layout
        As for :func:`~gigapatch.kernels.fused_gather`; without a
        normalization the output is the resampled float32 values.
    """
    ys = np.asarray(ys, dtype=np.int64)
    xs = np.asarray(xs, dtype=np.int64)
    h, w = parse_pair("size", size)
    mats = np.asarray(matrices, dtype=np.float64)
    n, (bh, bw, c) = len(ys), (int(v) for v in block.shape)
    if ys.shape != xs.shape or mats.shape != (n, 2, 3) or not np.all(np.isfinite(mats)):
        raise InvalidArgumentError(
            f"ys, xs must be 1-d of equal length N and matrices finite (N, 2, 3); got "
            f"{ys.shape}, {xs.shape} and {mats.shape}"
        )
    if isinstance(fill, bool) or not isinstance(fill, int | float | np.number):
        raise InvalidArgumentError(f"fill must be a number; got {fill!r}")
    norm = parse_normalize(normalize)
    out_dtype = parse_output_dtype(dtype, norm, np.float32)
    layout = parse_layout(layout)
    xp = namespace_of(block)
    if xp is not np:
        check_namespace_dtype(block, out_dtype)
    shape = (n, h, w, c) if layout == "hwc" else (n, c, h, w)
    out = _empty_like_block(block, shape, out_dtype)
    flat = xp.reshape(block, (bh * bw, c))
    if host_dtype(block.dtype) != np.float64:
        flat = astype(xp, flat, xp.float64)
    divisor = offset = None
    if norm is not None:
        s, o = norm.arrays(c)
        divisor, offset = (to_device(xp, v.astype(np.float32), block) for v in (s, o))
    step = max(1, _CHUNK_PIXELS // (h * w))
    for k0 in range(0, n, step):
        k1 = min(n, k0 + step)
        vals = _resample(xp, flat, (bh, bw), ys[k0:k1], xs[k0:k1], (h, w), mats[k0:k1],
                         float(fill), block)
        vals = astype(xp, vals, xp.float32)
        if norm is not None:
            vals = vals / divisor + offset
        if layout == "chw":
            vals = (getattr(xp, "permute_dims", None) or xp.transpose)(vals, (0, 3, 1, 2))
        out[k0:k1, ...] = astype(xp, vals, getattr(xp, out_dtype.name))
    return out


def _resample(
    xp: ModuleType, flat: Array, shape: tuple[int, int], ys: npt.NDArray[np.integer[Any]],
    xs: npt.NDArray[np.integer[Any]], size: tuple[int, int], mats: npt.NDArray[np.float64],
    fill: float, block: Array,
) -> Array:
    """Bilinear samples (m, h, w, C) in float64 for m patches."""
    (bh, bw), (h, w), m = shape, size, len(ys)
    grid = np.stack(np.meshgrid(np.arange(h) - (h - 1) / 2, np.arange(w) - (w - 1) / 2,
                                indexing="ij"))  # (2, h, w) offsets from the centre
    centre = np.stack([ys + (h - 1) / 2, xs + (w - 1) / 2], 1)  # (m, 2)
    src = np.einsum("kab,bij->kaij", mats[:, :, :2], grid) + (centre + mats[:, :, 2])[:, :, None,
                                                                                        None]
    sy, sx = to_device(xp, src[:, 0], block), to_device(xp, src[:, 1], block)
    y0, x0 = xp.floor(sy), xp.floor(sx)
    fy, fx = sy - y0, sx - x0
    acc = None
    for dy, dx in ((0, 0), (0, 1), (1, 0), (1, 1)):
        yy, xx = y0 + dy, x0 + dx
        inside = (yy >= 0) & (yy <= bh - 1) & (xx >= 0) & (xx <= bw - 1)
        yi = astype(xp, xp.clip(yy, 0, bh - 1), xp.int64)
        xi = astype(xp, xp.clip(xx, 0, bw - 1), xp.int64)
        vals = xp.take(flat, xp.reshape(yi * bw + xi, (-1,)), axis=0)
        vals = xp.reshape(vals, (m, h, w, flat.shape[1]))
        vals = xp.where(inside[..., None], vals, fill)
        weight = (fy if dy else 1 - fy) * (fx if dx else 1 - fx)
        term = weight[..., None] * vals
        acc = term if acc is None else acc + term
    return acc
