"""In-memory sources: a NumPy array as a one-level slide."""

from __future__ import annotations

import numpy as np

from gigapatch.sources.axes import check_dtype, yxc_order
from gigapatch.sources.slide import Level, Slide

__all__ = ["open_array"]


class ArrayReader:
    """Serves regions of an in-memory image held as an (h, w, C) view."""

    format = "array"

    def __init__(self, image: np.ndarray, mpp: float | None) -> None:
        self.image = image
        h, w = image.shape[:2]
        self.levels: tuple[Level, ...] = (
            Level(shape=(h, w), downsample=(1.0, 1.0), tile=(h, w), compression="none"),
        )
        self.dtype = check_dtype(image.dtype, "array")
        self.channels = image.shape[2]
        self.mpp = mpp

    def read_level(self, level: int, y: int, x: int, out: np.ndarray) -> None:
        h, w = out.shape[:2]
        out[...] = self.image[y : y + h, x : x + w]

    def close(self) -> None:
        """Nothing to release."""


def open_array(
    array: np.ndarray, *, axes: str | None = None, name: str = "array", mpp: float | None = None
) -> Slide:
    """Wrap a NumPy array as a single-level :class:`Slide`.

    Parameters
    ----------
    array
        The image; (h, w) or (h, w, C) by default.
    axes
        Its layout when not that, e.g. ``"cyx"`` for channels first.
    name
        Name shown in messages and recorded in stores.
    mpp
        Microns per pixel, if known.
    """
    array = np.asarray(array)
    iy, ix, ic = yxc_order(array.shape, axes, name)
    check_dtype(array.dtype, name)  # before anything else: a clear error for object arrays
    image = array[..., None] if ic is None else array
    image = np.moveaxis(image, (iy, ix, ic if ic is not None else 2), (0, 1, 2))
    return Slide(ArrayReader(image, mpp), name=name, path=None,
                 reopen=(_reopen, (array, axes, name, mpp)))


def _reopen(array: np.ndarray, axes: str | None, name: str, mpp: float | None) -> Slide:
    return open_array(array, axes=axes, name=name, mpp=mpp)
