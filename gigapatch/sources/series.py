"""Several images in one file: list them, choose one by index or name, default to the largest.

Whole-slide files often hold more than the scan: a thumbnail, a label, a macro photograph
of the glass (SVS, NDPI, MRXS), or several scanned regions (Leica SCN, Ventana BIF, OME-TIFF
with several images). Every reader lists them as :class:`Series` records; a `Slide` reads one.
As tiffslide and OpenSlide do, the default is the largest pyramid: the series with the most
level-0 pixels (the first of equals).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gigapatch.errors import InvalidArgumentError

__all__ = ["Series", "choose_series", "describe_series"]


@dataclass(frozen=True)
class Series:
    """One image (pyramid) of a file.

    Attributes
    ----------
    index
        Position in the file's list of series (what ``series=`` takes).
    name
        Its name in the file (``"Baseline"``, ``"macro"``, an OME ``Image`` name), or ``""``.
    shape
        (height, width) of its level 0.
    levels
        Number of pyramid levels (1 for a flat image).
    """

    index: int
    name: str
    shape: tuple[int, int]
    levels: int

    def __str__(self) -> str:
        h, w = self.shape
        plural = "s" if self.levels != 1 else ""
        return f"{self.index} {self.name!r} {h}x{w} ({self.levels} level{plural})"


def describe_series(available: Sequence[Series]) -> str:
    """The series as one line: ``0 'Baseline' 1800x2600 (2 levels), 1 'Thumbnail' …``."""
    return ", ".join(str(s) for s in available)


_TWINS = {"baseline": "main", "main": "baseline"}


def choose_series(available: Sequence[Series], series: int | str | None, where: str) -> int:
    """The index of the series that ``series`` names in ``available``.

    Parameters
    ----------
    available
        The file's series, in order (never empty).
    series
        ``None`` for the largest (most level-0 pixels; the first of equals), an index, or a
        name: exact first, else the one name equal to it ignoring case, else (``"Baseline"``
        / ``"main"``) the main image of an SVS under its other reader's name.
    where
        The file, for messages.

    Raises
    ------
    InvalidArgumentError
        ``series`` is not an int, a str or None, or names no series, or a name matches more
        than one; the message lists the series (index, name, shape).
    """
    if series is None:
        sizes = [s.shape[0] * s.shape[1] for s in available]
        return available[sizes.index(max(sizes))].index
    listing = f"{where!r} has: {describe_series(available)}"
    if isinstance(series, int | np.integer) and not isinstance(series, bool):
        if 0 <= series < len(available):
            return int(series)
        raise InvalidArgumentError(
            f"series must be an index in [0, {len(available) - 1}] or a name; got {series} "
            f"({listing})"
        )
    if not isinstance(series, str):
        raise InvalidArgumentError(
            f"series must be an integer index, a name or None; got {series!r}"
        )
    exact = [s.index for s in available if s.name == series]
    folded = [s.index for s in available if s.name.lower() == series.lower()]
    # the main image of an SVS: tifffile names it "Baseline", OpenSlide "main"; either name
    # works with either reader
    twin = _TWINS.get(series.lower())
    twins = [s.index for s in available if twin is not None and s.name.lower() == twin]
    for found in (exact, folded, twins):
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise InvalidArgumentError(
                f"series name {series!r} is ambiguous, choose by index ({listing})"
            )
    raise InvalidArgumentError(f"series {series!r} is not in the file ({listing})")
