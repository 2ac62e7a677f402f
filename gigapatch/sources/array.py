"""In-memory sources: a NumPy array (h, w) or (h, w, C) as a one-level slide."""

from __future__ import annotations

import numpy as np

from gigapatch.errors import InvalidArgumentError
from gigapatch.sources.slide import Level, Slide

__all__ = ["open_array"]


class ArrayReader:
    """Serves regions of an in-memory (h, w, C) array."""

    format = "array"

    def __init__(self, array: np.ndarray, mpp: float | None) -> None:
        self.array = array
        h, w = array.shape[:2]
        self.levels = (Level(shape=(h, w), downsample=(1.0, 1.0), tile=(h, w), compression="none"),)
        self.dtype = array.dtype
        self.channels = array.shape[2]
        self.mpp = mpp

    def read_level(self, level: int, y: int, x: int, out: np.ndarray) -> None:
        h, w = out.shape[:2]
        out[...] = self.array[y : y + h, x : x + w]

    def close(self) -> None:
        """Nothing to release."""


def open_array(array: np.ndarray, *, name: str = "array", mpp: float | None = None) -> Slide:
    """Wrap an (h, w) or (h, w, C) NumPy array as a single-level :class:`Slide`."""
    array = np.asarray(array)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or 0 in array.shape:
        raise InvalidArgumentError(
            f"an image array must have shape (height, width) or (height, width, channels); "
            f"got {array.shape}"
        )
    return Slide(
        ArrayReader(array, mpp), name=name, path=None, reopen=(_reopen, (array, name, mpp))
    )


def _reopen(array: np.ndarray, name: str, mpp: float | None) -> Slide:
    return open_array(array, name=name, mpp=mpp)
