"""What a format-specific reader provides to a :class:`~gigapatch.sources.slide.Slide`.

:class:`Level` is the geometry of one pyramid level; :class:`Reader` is the
protocol every format's reader (TIFF, OpenSlide, Zarr, array) implements: the
levels, the pixel type, and :meth:`Reader.read_level`, which decodes a region
known to lie inside a level. Both are re-exported by
:mod:`gigapatch.sources.slide`, where the readers import them from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

__all__ = ["Level", "Reader"]


@dataclass(frozen=True)
class Level:
    """Geometry of one pyramid level.

    Attributes
    ----------
    shape
        (height, width) in pixels.
    downsample
        (dy, dx): level-0 pixels per pixel of this level along each axis.
    tile
        (height, width) of the unit the file stores and decodes (tile, strip
        or chunk).
    compression
        Name of the codec the level is stored with (``"jpeg"``, ``"none"``…).
    """

    shape: tuple[int, int]
    downsample: tuple[float, float]
    tile: tuple[int, int]
    compression: str


class Reader(Protocol):
    """What a format-specific reader provides to :class:`~gigapatch.sources.slide.Slide`."""

    format: str
    levels: tuple[Level, ...]
    dtype: np.dtype[Any]
    channels: int
    mpp: float | None

    def read_level(self, level: int, y: int, x: int, out: npt.NDArray[Any]) -> None:
        """Fill ``out`` (h, w, C) with the level pixels whose top-left is (y, x).

        The region lies inside the level (the caller checked it).
        """

    def close(self) -> None:
        """Release file handles."""
