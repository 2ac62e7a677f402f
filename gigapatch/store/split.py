"""Patient-level splits: whole slides go to one part (train / validation / test).

:func:`split_positions` is the arithmetic behind ``PatchStore.split`` and
``PatchSelection.split``. Slides are dealt, largest first (ties in an order
drawn from ``seed``), each to the part furthest below its target patch count.
With ``stratify="label"`` each label's slides are dealt separately, so for
every label and part the patch count is within one slide of that label of
``fraction × the label's patches``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from gigapatch.errors import InvalidArgumentError, check_seed

__all__ = ["Stratify", "check_fractions", "deal", "split_positions"]

#: What a split keeps in proportion: the labels, or nothing.
Stratify = Literal["label"] | None


def check_fractions(fractions: Sequence[float]) -> tuple[float, ...]:
    """``fractions`` as floats after checking there are at least two, all positive, summing
    to 1 (within 1e-6)."""
    try:
        values = tuple(float(f) for f in fractions)
    except (TypeError, ValueError):
        raise InvalidArgumentError(
            f"fractions must be a sequence of numbers; got {fractions!r}"
        ) from None
    if len(values) < 2 or min(values) <= 0 or abs(sum(values) - 1) > 1e-6:
        raise InvalidArgumentError(
            f"fractions must be two or more positive numbers summing to 1; got {fractions!r}"
        )
    return values


def deal(sizes: npt.NDArray[np.int64], fractions: Sequence[float],
         rng: np.random.Generator) -> npt.NDArray[np.int64]:
    """The part of each item: largest first, each to the part furthest below its target.

    Parts end within one largest item of ``fraction × sizes.sum()``.
    """
    part = np.zeros(len(sizes), np.int64)
    shuffled = rng.permutation(len(sizes))
    order = shuffled[np.argsort(-sizes[shuffled], kind="stable")]
    deficit = np.asarray(fractions, np.float64) * float(sizes.sum())
    for item in order.tolist():
        chosen = int(np.argmax(deficit))
        part[item] = chosen
        deficit[chosen] -= sizes[item]
    return part


def split_positions(
    slide: npt.NDArray[Any],
    label: npt.NDArray[Any],
    fractions: Sequence[float],
    *,
    by: str = "slide",
    stratify: Stratify = "label",
    seed: int = 0,
) -> list[npt.NDArray[np.int64]]:
    """Positions (into ``slide`` and ``label``) of each part; no slide is in two parts.

    Parameters
    ----------
    slide, label
        (n,) source index and label of each patch.
    fractions
        Share of the patches of each part: positive, summing to 1.
    by
        What stays whole: ``"slide"`` (the only grouping a store records).
    stratify
        ``"label"``: deal each label's slides separately (a slide counts under
        the label most of its patches carry); ``None``: all slides together.
    seed
        The same seed gives the same split.

    Raises
    ------
    InvalidArgumentError
        Bad fractions, ``by`` or ``stratify``, or fewer slides than parts.
    """
    values = check_fractions(fractions)
    if by != "slide":
        raise InvalidArgumentError(f"by must be 'slide'; got {by!r}")
    if stratify not in ("label", None):
        raise InvalidArgumentError(f"stratify must be 'label' or None; got {stratify!r}")
    rng = np.random.default_rng(check_seed(seed))
    slides, inverse, sizes = np.unique(slide, return_inverse=True, return_counts=True)
    if len(slides) < len(values):
        raise InvalidArgumentError(
            f"a split into {len(values)} parts needs at least {len(values)} slides; "
            f"the patches come from {len(slides)}"
        )
    strata = np.zeros(len(slides), np.int64)
    if stratify == "label":
        _, codes = np.unique(label, return_inverse=True)
        votes = np.zeros((len(slides), int(codes.max()) + 1 if len(codes) else 1), np.int64)
        np.add.at(votes, (inverse, codes), 1)
        strata = votes.argmax(axis=1)
    part_of_slide = np.zeros(len(slides), np.int64)
    for stratum in np.unique(strata).tolist():
        members = np.flatnonzero(strata == stratum)
        part_of_slide[members] = deal(sizes[members].astype(np.int64), values, rng)
    part = part_of_slide[inverse]
    return [np.flatnonzero(part == k).astype(np.int64) for k in range(len(values))]
