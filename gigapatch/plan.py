"""Plans: *where* patches are, as plain arrays, decided before any pixel is read.

A :class:`PatchPlan` is a few NumPy arrays of equal length (``slide``, ``y``,
``x``: top-left corners in **level-0** pixels, as OpenSlide's ``read_region``
takes them) plus the parameters that made them. It is cheap, written into
the store, and fully determines the engine's work.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gigapatch._checks import parse_pair
from gigapatch.errors import InvalidArgumentError
from gigapatch.sources import Slide, open_slide

__all__ = ["PatchPlan", "grid", "parse_pair", "as_slides"]


def as_slides(sources: Any) -> list[Slide]:
    """Open a path, array or `Slide`, or a sequence of them, as a list of slides."""
    if isinstance(sources, str | os.PathLike | np.ndarray | Slide):
        sources = [sources]
    slides = [open_slide(s) for s in sources]
    if not slides:
        raise InvalidArgumentError("sources must name at least one slide; got none")
    return slides


@dataclass(frozen=True, eq=False)
class PatchPlan:
    """Where every patch of a job is.

    Attributes
    ----------
    slide
        (N,) int32 index of each patch's source.
    y, x
        (N,) int64 top-left corner of each patch in level-0 pixels.
    level
        Pyramid level the patches are read at.
    size
        (height, width) of a patch in pixels of ``level``.
    stride
        (dy, dx) between grid neighbours in pixels of ``level``.
    kind
        How the plan was made (``"grid"``).
    padding, dilation, fill, seed
        The remaining parameters that made the plan (recorded in the store).
    """

    slide: np.ndarray
    y: np.ndarray
    x: np.ndarray
    level: int
    size: tuple[int, int]
    stride: tuple[int, int]
    kind: str = "grid"
    padding: str = "valid"
    dilation: tuple[int, int] = (1, 1)
    fill: float = 0
    seed: int | None = None
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.slide)
        if not len(self.y) == len(self.x) == n:
            raise InvalidArgumentError(
                f"plan arrays must have equal lengths; got slide={n}, y={len(self.y)}, "
                f"x={len(self.x)}"
            )

    def __len__(self) -> int:
        return len(self.slide)

    def params(self) -> dict[str, Any]:
        """The plan's parameters as JSON-ready values (what the store records)."""
        return {
            "kind": self.kind,
            "level": self.level,
            "size": list(self.size),
            "stride": list(self.stride),
            "padding": self.padding,
            "dilation": list(self.dilation),
            "fill": self.fill,
            "seed": self.seed,
            "count": len(self),
            **self.extra,
        }

    def rows(self, start: int, stop: int) -> PatchPlan:
        """The sub-plan of patches ``start:stop`` (views, no copies)."""
        return PatchPlan(
            self.slide[start:stop],
            self.y[start:stop],
            self.x[start:stop],
            self.level,
            self.size,
            self.stride,
            self.kind,
            self.padding,
            self.dilation,
            self.fill,
            self.seed,
            self.extra,
        )


def grid(
    sources: Any,
    size: int | Sequence[int],
    stride: int | Sequence[int] | None = None,
    *,
    level: int = 0,
) -> PatchPlan:
    """Plan a regular grid of whole patches over every slide (``padding="valid"``).

    Along each axis a level of ``n`` pixels holds ``(n - size) // stride + 1``
    patches whose top-left corners are at ``0, stride, 2 * stride, …`` in the
    pixels of ``level`` — the output size of ``tf.image.extract_patches`` with
    VALID padding. Patches are ordered slide by slide, row-major.

    Parameters
    ----------
    sources
        A path, array or `Slide`, or a sequence of them.
    size
        Patch (height, width) in pixels of ``level``, or one int for both.
    stride
        Step between patches, in pixels of ``level``; defaults to ``size``
        (adjacent, non-overlapping patches).
    level
        Pyramid level to cut the patches from.

    Returns
    -------
    PatchPlan
    """
    slides = as_slides(sources)
    size = parse_pair("size", size)
    stride = size if stride is None else parse_pair("stride", stride)
    index, ys, xs = [], [], []
    for k, slide in enumerate(slides):
        lvl = slide.check_level(level)
        (lh, lw), (dy, dx) = slide.levels[lvl].shape, slide.levels[lvl].downsample
        if size[0] > lh or size[1] > lw:
            raise InvalidArgumentError(
                f"size {size[0]}x{size[1]} does not fit in {slide.name!r} at level {lvl} "
                f"({lh}x{lw} pixels)"
            )
        ny, nx = (lh - size[0]) // stride[0] + 1, (lw - size[1]) // stride[1] + 1
        gy = np.rint(np.arange(ny, dtype=np.int64) * stride[0] * dy).astype(np.int64)
        gx = np.rint(np.arange(nx, dtype=np.int64) * stride[1] * dx).astype(np.int64)
        ys.append(np.repeat(gy, nx))
        xs.append(np.tile(gx, ny))
        index.append(np.full(ny * nx, k, np.int32))
    return PatchPlan(
        np.concatenate(index),
        np.concatenate(ys),
        np.concatenate(xs),
        level=level,
        size=size,
        stride=stride,
    )
