"""Checks of a run's inputs, made before anything is read or written.

:func:`check_plan` checks a plan against the sources it indexes (both
:func:`~gigapatch.engine.run.extract` and
:func:`~gigapatch.engine.run.extract_to_zarr`); :func:`check_run_args` checks
the arguments of ``extract_to_zarr`` that the store does not check itself.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from gigapatch.errors import InvalidArgumentError, check_int
from gigapatch.plan import PatchPlan
from gigapatch.sources import Slide
from gigapatch.store import parse_codec

__all__ = ["check_plan", "check_run_args"]


def check_plan(slides: Sequence[Slide], plan: PatchPlan) -> None:
    """Check that ``plan`` is a :class:`~gigapatch.plan.PatchPlan` of ``slides``: its slide
    indices, one dtype and channel count for all, an existing level for each and (unless
    ``padding="same"``) every patch inside its slide at that level.

    Raises
    ------
    InvalidArgumentError
        The first mismatch, naming the patch or source (a plan made for other sources).
    """
    if not isinstance(plan, PatchPlan):
        raise InvalidArgumentError(f"plan must be a PatchPlan; got {type(plan).__name__}")
    if len(plan) and (plan.slide.min() < 0 or plan.slide.max() >= len(slides)):
        raise InvalidArgumentError(
            f"plan refers to slide {int(plan.slide.max())} but {len(slides)} sources were given"
        )
    kinds = {(s.dtype, s.channels) for s in slides}
    if len(kinds) > 1:
        raise InvalidArgumentError(
            "all sources of one store must share dtype and channels; got "
            + ", ".join(f"{s.name}: {s.dtype} x{s.channels}" for s in slides)
        )
    if plan.levels and len(plan.levels) != len(slides):
        raise InvalidArgumentError(
            f"plan has levels for {len(plan.levels)} sources but {len(slides)} were given"
        )
    for k, s in enumerate(slides):
        level = s.check_level(plan.level_of(k))
        if plan.padding == "same":
            continue  # SAME patches may leave the slide; outside pixels take the fill
        mine = plan.slide == k
        if not mine.any():
            continue
        (dy, dx), (lh, lw) = s.levels[level].downsample, s.levels[level].shape
        ly, lx = np.rint(plan.y[mine] / dy), np.rint(plan.x[mine] / dx)
        sh, sw = plan.read_size(k)
        outside = (ly < 0) | (lx < 0) | (ly + sh > lh) | (lx + sw > lw)
        if outside.any():
            i = int(np.flatnonzero(mine)[np.flatnonzero(outside)[0]])
            raise InvalidArgumentError(
                f"plan patch {i} at y={int(plan.y[i])}, x={int(plan.x[i])} does not fit in "
                f"{s.name!r} at level {level} ({lh}x{lw} pixels): was the plan made for other "
                "sources?"
            )


def check_run_args(out: Any, shard_size: Any, codec: Any, progress: Any) -> None:
    """The arguments of :func:`extract_to_zarr` the store does not check itself."""
    if not isinstance(out, str | os.PathLike):
        raise InvalidArgumentError(f"out must be a path; got {out!r}")
    check_int("shard_size", shard_size)
    parse_codec(codec)  # before any slide is read; the store spec checks it with the patches
    if progress is not None and not callable(progress):
        raise InvalidArgumentError(
            f"progress must be a function progress(done, total) or None; got {progress!r}")
