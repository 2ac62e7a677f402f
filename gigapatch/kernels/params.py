"""Seeded, host-side drawing of augmentation parameters (the kernels never draw).

Same seed, same parameters: an extraction or a training epoch is reproduced
exactly from its seed, whatever the backend.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gigapatch.errors import InvalidArgumentError, check_number
from gigapatch.kernels.affine import affine_matrices

__all__ = ["AugmentParams", "draw_params"]


@dataclass(frozen=True)
class AugmentParams:
    """Per-patch parameters for the kernels; ``None`` where that augmentation is off.

    Attributes
    ----------
    dihedral
        (N,) int32 codes 0..7 for ``fused_gather(dihedral=...)``.
    jitter
        (N, 2) float32 (contrast, brightness) for ``fused_gather(jitter=...)``.
    affine
        (N, 2, 3) float64 matrices for ``affine_gather``.
    """

    dihedral: npt.NDArray[np.int32] | None
    jitter: npt.NDArray[np.float32] | None
    affine: npt.NDArray[np.float64] | None


def draw_params(
    n: int,
    seed: int | np.random.Generator | None,
    *,
    dihedral: bool = True,
    rotation: float = 0.0,
    shear: float = 0.0,
    zoom: tuple[float, float] = (1.0, 1.0),
    shift: float = 0.0,
    brightness: float = 0.0,
    contrast: float = 0.0,
) -> AugmentParams:
    """Draw the augmentations of ``n`` patches, uniformly within the given ranges.

    Parameters
    ----------
    n
        Number of patches.
    seed
        Seed or generator (``np.random.default_rng``).
    dihedral
        Draw one of the 8 flips/quarter turns per patch.
    rotation, shear
        Maximum absolute angle in degrees (uniform in ``[-v, v]``).
    zoom
        (low, high) magnification range, drawn per patch (same on both axes).
    shift
        Maximum absolute shift in pixels, per axis.
    brightness
        Maximum absolute offset in source units (e.g. 20 of 255).
    contrast
        Maximum relative change: factor uniform in ``[1 - v, 1 + v]``.
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
        raise InvalidArgumentError(f"n must be a non-negative integer; got {n!r}")
    for name, value in (("rotation", rotation), ("shear", shear), ("shift", shift),
                        ("brightness", brightness), ("contrast", contrast)):
        if isinstance(value, bool) or not isinstance(value, int | float | np.number) or (
                not np.isfinite(value) or value < 0):
            raise InvalidArgumentError(f"{name} must be a finite number >= 0; got {value!r}")
    if contrast >= 1:
        raise InvalidArgumentError(f"contrast must be below 1 (factor stays positive); got "
                                   f"{contrast!r}")
    try:
        lo, hi = (check_number("zoom", v) for v in zoom)
    except (TypeError, ValueError):
        lo = hi = 0.0
    if not 0 < lo <= hi:
        raise InvalidArgumentError(f"zoom must be a range (low, high) with 0 < low <= high; "
                                   f"got {zoom!r}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    ops = rng.integers(0, 8, n).astype(np.int32) if dihedral else None
    jitter = None
    if brightness or contrast:
        jitter = np.stack([rng.uniform(1 - contrast, 1 + contrast, n),
                           rng.uniform(-brightness, brightness, n)], 1).astype(np.float32)
    mats = None
    if rotation or shear or shift or (lo, hi) != (1.0, 1.0):
        mats = affine_matrices(
            n, rotation=rng.uniform(-rotation, rotation, n), shear=rng.uniform(-shear, shear, n),
            zoom=rng.uniform(lo, hi, n), shift=rng.uniform(-shift, shift, (n, 2)),
        )
    return AugmentParams(ops, jitter, mats)
