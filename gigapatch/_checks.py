"""Small argument checks shared by every stage: each names the argument, what was
allowed and what was received."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gigapatch.errors import InvalidArgumentError

__all__ = ["check_int", "parse_pair"]


def check_int(name: str, value: object, minimum: int = 1) -> int:
    """Return ``value`` as an int after checking it is an integer ≥ ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise InvalidArgumentError(f"{name} must be an integer; got {value!r}")
    if value < minimum:
        raise InvalidArgumentError(f"{name} must be at least {minimum}; got {value}")
    return int(value)


def parse_pair(name: str, value: int | Sequence[int], minimum: int = 1) -> tuple[int, int]:
    """Return ``value`` (an int or a pair of ints) as an (h, w) pair, each ≥ ``minimum``."""
    items = [value, value] if isinstance(value, int | np.integer) else value
    try:
        pair = tuple(items)
    except TypeError:
        pair = ()
    if len(pair) != 2 or any(
        isinstance(v, bool) or not isinstance(v, int | np.integer) for v in pair
    ):
        raise InvalidArgumentError(
            f"{name} must be an integer or a pair of integers (height, width); got {value!r}"
        )
    if min(pair) < minimum:
        raise InvalidArgumentError(f"{name} must be at least {minimum}; got {value!r}")
    return int(pair[0]), int(pair[1])
