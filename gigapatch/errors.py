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

import math
import operator
import secrets
from collections.abc import Sequence
from typing import Any, Literal, TypeAlias

import numpy as np
import numpy.typing as npt

__all__ = [
    "MAX_INT",
    "ON_ERROR",
    "OnError",
    "Pair",
    "AnnotationError",
    "check_array",
    "check_choice",
    "check_coordinate",
    "check_coordinates",
    "check_on_error",
    "check_fill",
    "check_flag",
    "check_fraction",
    "check_int",
    "check_number",
    "check_positive",
    "check_seed",
    "parse_pair",
    "ClusterError",
    "CorruptTileError",
    "DeviceError",
    "GigapatchError",
    "InvalidArgumentError",
    "MissingExtraError",
    "NoSpaceError",
    "PatchFailedError",
    "RegionError",
    "SlideError",
    "StaleLockWarning",
    "StoreCorruptError",
    "StoreError",
    "StoreExistsError",
    "StoreIncompleteError",
    "StoreLockedError",
    "WorkerError",
]


class GigapatchError(Exception):
    """Base class of every error gigapatch raises on purpose."""


class InvalidArgumentError(GigapatchError, ValueError):
    """An argument has the wrong type, range or combination."""


class SlideError(GigapatchError, OSError):
    """A source image cannot be opened or decoded (missing, not an image, corrupt)."""


class AnnotationError(GigapatchError, ValueError):
    """An annotation file is missing, malformed, or does not fit its slide."""


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


class StoreCorruptError(StoreError):
    """Bytes of a store are damaged or missing: a checksum fails, a chunk of a finished shard is
    missing, a file is truncated. Never answered with data or a fill value; the message names
    the array, the shard and the patches."""


class StoreIncompleteError(StoreError):
    """Patches were asked of a shard that is not written yet (the extraction did not finish)."""


class PatchFailedError(StoreError):
    """A patch asked for by index failed to extract (``--on-error skip``: a tile it needs did
    not decode); its slot holds no data. ``select()`` and the feeds leave such patches out."""


class StoreLockedError(StoreError):
    """Another run holds the store's writer lock (the message names it: host, pid, since when)."""


class StaleLockWarning(UserWarning):
    """A store's writer lock was taken over: its holder is gone, or ``break_lock`` was given."""


class NoSpaceError(StoreError):
    """The disk holding the output is full (``ENOSPC``) while a shard is written.

    Attributes
    ----------
    path
        The file being written.
    needed
        Bytes the write needed at most (the shard's patches, uncompressed); None when unknown.
    """

    def __init__(self, path: str, needed: int | None = None) -> None:
        self.path, self.needed = path, needed
        amount = "" if needed is None else f" (up to {needed / 2**20:,.1f} MiB for this shard)"
        super().__init__(
            f"no space left on the device writing {path!r}{amount}: free space or write the "
            "store elsewhere, then run the same command with --resume"
        )

    def __reduce__(self) -> tuple[type[NoSpaceError], tuple[str, int | None]]:
        return type(self), (self.path, self.needed)


class WorkerError(GigapatchError, RuntimeError):
    """A worker process died while running a task (killed, most often for lack of memory)."""


class DeviceError(GigapatchError, RuntimeError):
    """The requested compute device (GPU) is not available."""


class ClusterError(GigapatchError, ConnectionError):
    """A Dask distributed scheduler cannot be reached."""


class MissingExtraError(GigapatchError, ImportError):
    """An optional dependency is not installed; the message names the extra that brings it."""


# ------------------------------------------------------------------ argument checks
# Small checks shared by every stage: each names the argument, what was allowed and what was
# received, and raises the hierarchy's InvalidArgumentError. Booleans are never numbers here
# (``size=True`` is a mistake, not 1), floats are never integers (``3.0`` where a count is
# wanted is refused, not truncated), and NaN or infinity never pass as a number.

#: Largest integer a size, count or index may be by default: beyond it, positions (int64)
#: would overflow, and no slide, plan or store is that large.
MAX_INT = 2**31 - 1
#: Coordinates are int64 (level-0 pixels, may be negative).
_INT64 = (-(2**63), 2**63 - 1)


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def _as_int(value: object) -> int | None:
    """``value`` as a Python int when it is an integer (not a bool), else None."""
    return operator.index(value) if _is_int(value) else None  # type: ignore[arg-type]


def check_int(name: str, value: object, minimum: int = 1, maximum: int = MAX_INT) -> int:
    """Return ``value`` as an int after checking it is an integer in [``minimum``, ``maximum``]."""
    number = _as_int(value)
    if number is None:
        raise InvalidArgumentError(f"{name} must be an integer; got {value!r}")
    if number < minimum:
        raise InvalidArgumentError(f"{name} must be at least {minimum}; got {value}")
    if number > maximum:
        raise InvalidArgumentError(f"{name} must be at most {maximum}; got {value}")
    return number


def check_number(
    name: str, value: object, *, minimum: float | None = None, maximum: float | None = None,
    above: float | None = None, below: float | None = None,
) -> float:
    """``value`` as a finite float, ≥ ``minimum``, ≤ ``maximum``, > ``above``, < ``below``."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | float | np.number):
        raise InvalidArgumentError(f"{name} must be a number; got {value!r}")
    if isinstance(value, complex | np.complexfloating) or not math.isfinite(value):
        raise InvalidArgumentError(f"{name} must be a finite number; got {value!r}")
    number = float(value)
    for bound, ok, words in ((minimum, minimum is None or number >= minimum, "at least"),
                             (maximum, maximum is None or number <= maximum, "at most"),
                             (above, above is None or number > above, "greater than"),
                             (below, below is None or number < below, "less than")):
        if not ok:
            raise InvalidArgumentError(f"{name} must be {words} {bound:g}; got {value!r}")
    return number


def check_positive(name: str, value: object) -> float:
    """``value`` as a positive finite float (a pixel size, a magnification…)."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | float | np.number) or (
        isinstance(value, complex | np.complexfloating) or not math.isfinite(value) or value <= 0
    ):
        raise InvalidArgumentError(f"{name} must be a positive finite number; got {value!r}")
    return float(value)


def check_fraction(name: str, value: object) -> float:
    """``value`` as a float in [0, 1]."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | float | np.number) or (
        isinstance(value, complex | np.complexfloating) or not 0 <= value <= 1
    ):
        raise InvalidArgumentError(f"{name} must be a number in [0, 1]; got {value!r}")
    return float(value)


def check_flag(name: str, value: object) -> bool:
    """``value`` as a bool: ``True`` or ``False`` (NumPy's too), nothing merely truthy."""
    if not isinstance(value, bool | np.bool_):
        raise InvalidArgumentError(f"{name} must be True or False; got {value!r}")
    return bool(value)


def check_choice(name: str, value: object, choices: Sequence[str]) -> str:
    """``value`` after checking it is one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise InvalidArgumentError(
            f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value


#: What a run does with a slide or tile it cannot read: end (``"stop"``) or leave it out.
OnError = Literal["stop", "skip"]
ON_ERROR: tuple[OnError, ...] = ("stop", "skip")


def check_on_error(value: object) -> OnError:
    """``value`` after checking it is ``"stop"`` or ``"skip"``."""
    check_choice("on_error", value, ON_ERROR)
    return "skip" if value == "skip" else "stop"


def check_coordinate(name: str, value: object) -> int:
    """``value`` as an int64 coordinate (any sign; an integer, never a float or a bool)."""
    number = _as_int(value)
    if number is None:
        raise InvalidArgumentError(f"{name} must be an integer (pixels); got {value!r}")
    if not _INT64[0] <= number <= _INT64[1]:
        raise InvalidArgumentError(f"{name} must fit in 64 bits; got {value}")
    return number


def check_coordinates(name: str, values: object) -> npt.NDArray[np.int64]:
    """``values`` as a 1-d int64 array of integer coordinates (no floats, no bools)."""
    if isinstance(values, list | tuple) and not all(map(_is_int, values)):
        array = np.asarray(None)  # floats, bools, text… inside a sequence
    else:
        try:
            array = np.asarray(values)
        except (ValueError, TypeError, OverflowError):
            array = np.asarray(None)
    if array.ndim == 1 and array.dtype == object and all(_is_int(v) for v in array):
        try:  # Python ints beyond 64 bits
            array = array.astype(np.int64)
        except OverflowError:
            raise InvalidArgumentError(f"{name} must fit in 64 bits; got {values!r}") from None
    if array.ndim == 1 and len(array) == 0:
        return np.zeros(0, np.int64)
    if array.ndim != 1 or array.dtype.kind not in "iu":
        raise InvalidArgumentError(
            f"{name} must be a 1-d sequence of integers (pixels); got {values!r}")
    if array.dtype == np.uint64 and len(array) and int(array.max()) > _INT64[1]:
        raise InvalidArgumentError(f"{name} must fit in 64 bits; got {values!r}")
    return array.astype(np.int64, copy=False)


def check_array(name: str, value: object) -> npt.NDArray[Any]:
    """``value`` after checking it is a NumPy array (an output buffer)."""
    if not isinstance(value, np.ndarray):
        raise InvalidArgumentError(f"{name} must be a NumPy array; got {type(value).__name__}")
    return value


def check_fill(value: object, dtype: npt.DTypeLike, *, name: str = "fill",
               owner: str = "the image") -> int | float:
    """``value`` as a finite number that ``dtype`` holds (the value of pixels outside an image):
    exactly for integer dtypes, within range for float dtypes."""
    number = check_number(name, value)
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        ok = number.is_integer() and info.min <= number <= info.max
    elif dtype.kind == "f":  # the nearest value of the dtype, as any float cast
        ok = abs(number) <= float(np.finfo(dtype).max)
    else:
        ok = dtype.kind == "b" and number in (0, 1)
    if not ok:
        raise InvalidArgumentError(
            f"{name} must be representable as {dtype} (the dtype of {owner}); got {value!r}")
    return int(number) if number.is_integer() else number


#: A size-like argument: one int for both axes, or (height, width).
Pair: TypeAlias = int | Sequence[int]


def parse_pair(name: str, value: Pair, minimum: int = 1, maximum: int = MAX_INT) -> tuple[int, int]:
    """Return ``value`` (an int or a pair of ints) as an (h, w) pair, each in [minimum, maximum]."""
    if isinstance(value, str | bytes):
        pair: tuple[object, ...] = ()
    else:
        try:
            pair = (value, value) if _is_int(value) else tuple(value)  # type: ignore[arg-type]
        except TypeError:
            pair = ()
    ints = [v for v in map(_as_int, pair) if v is not None]
    if len(pair) != 2 or len(ints) != 2:
        raise InvalidArgumentError(
            f"{name} must be an integer or a pair of integers (height, width); got {value!r}"
        )
    if min(ints) < minimum:
        raise InvalidArgumentError(f"{name} must be at least {minimum}; got {value!r}")
    if max(ints) > maximum:
        raise InvalidArgumentError(f"{name} must be at most {maximum}; got {value!r}")
    return ints[0], ints[1]


def check_seed(seed: object, *, allow_none: bool = False) -> int:
    """``seed`` as a non-negative int.

    With ``allow_none``, ``None`` draws fresh entropy (callers record it, so a
    run can be repeated); otherwise every rank and worker must pass the same
    integer.
    """
    if seed is None and allow_none:
        return secrets.randbits(128)  # what SeedSequence() draws as its fresh entropy
    number = _as_int(seed)
    if number is None or number < 0:
        also = " or None" if allow_none else ""
        raise InvalidArgumentError(f"seed must be a non-negative integer{also}; got {seed!r}")
    return number
