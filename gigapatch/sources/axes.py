"""Axis conventions of array sources: which dimension is y, x and channels."""

from __future__ import annotations

import numpy as np

from gigapatch.errors import InvalidArgumentError, SlideError

__all__ = ["check_dtype", "yxc_order"]


def yxc_order(shape: tuple[int, ...], axes: str | None, name: str) -> tuple[int, int, int | None]:
    """Positions of the y, x and channel axes of an array of ``shape``.

    ``axes`` is a string of ``y``, ``x``, ``c`` (any order, ``c`` optional,
    e.g. ``"cyx"``); by default 2-D arrays are ``yx`` and 3-D arrays ``yxc``.
    """
    ndim = len(shape)
    if axes is None:
        if ndim not in (2, 3):
            raise InvalidArgumentError(
                f"{name}: an image array must have 2 or 3 dimensions (height, width[, channels]);"
                f" got shape {tuple(shape)} (pass axes=, e.g. 'cyx', for other layouts)"
            )
        axes = "yx" if ndim == 2 else "yxc"
    if not isinstance(axes, str):
        raise InvalidArgumentError(f"axes must be a string such as 'yxc' or 'cyx'; got {axes!r}")
    axes = axes.lower()
    if sorted(axes) not in (["x", "y"], ["c", "x", "y"]) or len(axes) != ndim:
        raise InvalidArgumentError(
            f"axes must name y, x and optionally c once each, one per dimension of shape "
            f"{tuple(shape)}; got {axes!r}"
        )
    if 0 in shape:
        raise InvalidArgumentError(f"{name}: image array is empty (shape {tuple(shape)})")
    return axes.index("y"), axes.index("x"), (axes.index("c") if "c" in axes else None)


def check_dtype(dtype: np.dtype, name: str) -> np.dtype:
    """Accept unsigned/signed integer and float pixel types; refuse the rest clearly.

    Returns the type in native byte order: reads convert big-endian sources as
    they copy, so patches and stores always hold native numbers.
    """
    dtype = np.dtype(dtype)
    if dtype.kind not in "uif":
        raise SlideError(
            f"{name}: pixel type {dtype} is not supported (expected unsigned or signed "
            "integers, or floats)"
        )
    return dtype.newbyteorder("=")
