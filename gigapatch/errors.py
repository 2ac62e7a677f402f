"""The one error hierarchy of gigapatch.

Every error gigapatch raises on purpose derives from :class:`GigapatchError`,
so callers (and the command line) can tell a problem with the user's input
from a bug. Each subclass also derives from the builtin a Python user would
expect (``ValueError`` for bad arguments, ``OSError`` for files), as zarr
does with ``BaseZarrError(ValueError)``.

Messages name the argument or file, what was expected and what was received,
in one line: the command line prints them as they are.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import TypeAlias

import numpy as np

__all__ = [
    "Pair",
    "check_int",
    "check_seed",
    "parse_pair",
    "ClusterError",
    "CorruptTileError",
    "DeviceError",
    "GigapatchError",
    "InvalidArgumentError",
    "MissingExtraError",
    "RegionError",
    "SlideError",
    "StoreError",
    "StoreExistsError",
]


class GigapatchError(Exception):
    """Base class of every error gigapatch raises on purpose."""


class InvalidArgumentError(GigapatchError, ValueError):
    """An argument has the wrong type, range or combination."""


class SlideError(GigapatchError, OSError):
    """A source image cannot be opened or decoded (missing, not an image, corrupt)."""


class CorruptTileError(SlideError):
    """One tile (or strip) of a slide cannot be decoded: its bytes are corrupt or missing.

    Raised instead of pixels when the decoder fails *or warns* (libjpeg's "corrupt JPEG
    data" warnings), or when the tile's byte count does not fit the file. Other tiles of
    the slide still read.

    Attributes
    ----------
    path
        The slide file.
    level, row, column
        The tile: pyramid level, and its row and column in that level's tile grid.
    reason
        What is wrong, in a few words.
    """

    def __init__(self, path: str, level: int, row: int, column: int, reason: str) -> None:
        self.path, self.level, self.row, self.column = path, level, row, column
        self.reason = reason
        super().__init__(
            f"{path!r}: cannot decode level {level} tile (row {row}, column {column}): {reason}"
        )

    def __reduce__(self) -> tuple[type[CorruptTileError], tuple[str, int, int, int, str]]:
        # the exception crosses process boundaries (Dask workers): rebuild it from its fields
        return type(self), (self.path, self.level, self.row, self.column, self.reason)


class RegionError(GigapatchError, ValueError):
    """A requested region or patch does not fit inside the image."""


class StoreError(GigapatchError, OSError):
    """A patch store is missing, incomplete, or not a gigapatch store."""


class StoreExistsError(StoreError, FileExistsError):
    """The output store exists and neither overwrite nor resume was asked for."""


class DeviceError(GigapatchError, RuntimeError):
    """The requested compute device (GPU) is not available."""


class ClusterError(GigapatchError, ConnectionError):
    """A Dask distributed scheduler cannot be reached."""


class MissingExtraError(GigapatchError, ImportError):
    """An optional dependency is not installed; the message names the extra that brings it."""


# ------------------------------------------------------------------ argument checks
# Small checks shared by every stage: each names the argument, what was allowed and what was
# received, and raises the hierarchy's InvalidArgumentError.

def check_int(name: str, value: object, minimum: int = 1) -> int:
    """Return ``value`` as an int after checking it is an integer ≥ ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise InvalidArgumentError(f"{name} must be an integer; got {value!r}")
    if value < minimum:
        raise InvalidArgumentError(f"{name} must be at least {minimum}; got {value}")
    return int(value)


#: A size-like argument: one int for both axes, or (height, width).
Pair: TypeAlias = int | Sequence[int]


def parse_pair(name: str, value: Pair, minimum: int = 1) -> tuple[int, int]:
    """Return ``value`` (an int or a pair of ints) as an (h, w) pair, each ≥ ``minimum``."""
    try:
        pair = (value, value) if isinstance(value, int | np.integer) else tuple(value)
    except TypeError:
        pair = ()
    ints = [int(v) for v in pair if isinstance(v, int | np.integer) and not isinstance(v, bool)]
    if len(pair) != 2 or len(ints) != 2:
        raise InvalidArgumentError(
            f"{name} must be an integer or a pair of integers (height, width); got {value!r}"
        )
    if min(ints) < minimum:
        raise InvalidArgumentError(f"{name} must be at least {minimum}; got {value!r}")
    return ints[0], ints[1]


def check_seed(seed: object, *, allow_none: bool = False) -> int:
    """``seed`` as a non-negative int.

    With ``allow_none``, ``None`` draws fresh entropy (callers record it, so a
    run can be repeated); otherwise every rank and worker must pass the same
    integer.
    """
    if seed is None and allow_none:
        return secrets.randbits(128)  # what SeedSequence() draws as its fresh entropy
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        also = " or None" if allow_none else ""
        raise InvalidArgumentError(f"seed must be a non-negative integer{also}; got {seed!r}")
    return int(seed)
