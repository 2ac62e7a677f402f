"""`PatchPlan` and the helpers every planner shares (sources, levels, labels, seeds, order).

A :class:`PatchPlan` is a few NumPy arrays of equal length (``slide``, ``y``,
``x``: top-left corners in **level-0** pixels, as OpenSlide's ``read_region``
takes them) plus the parameters that made them. It is cheap, written into
the store, and fully determines the engine's work.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias, TypedDict, get_args

import numpy as np
import numpy.typing as npt

from gigapatch.errors import InvalidArgumentError, OnError, check_number
from gigapatch.errors import check_fill as check_fill_value
from gigapatch.errors import check_fraction as check_unit_fraction
from gigapatch.plan.labels import skipped_slide
from gigapatch.sources import Slide, open_slide
from gigapatch.sources.resolution import MPP_TOLERANCE, Resolution, check_request, read_size

__all__ = [
    "PADDINGS", "Padding", "PatchPlan", "PlanKind", "PlanRows", "as_slides", "resolve_labels",
    "resolve_resolutions", "slide_rng",
]

#: ``"valid"``: only patches wholly inside; ``"same"``: ``ceil(n / stride)`` per axis, padded.
Padding: TypeAlias = Literal["valid", "same"]
PADDINGS: tuple[Padding, ...] = get_args(Padding)
#: How a plan was made.
PlanKind: TypeAlias = Literal["grid", "random", "weighted"]


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
        (N,) int64 top-left corner of each patch in level-0 pixels (negative
        or past the edge only with ``padding="same"``).
    level
        Pyramid level the patches are read at; ``-1`` when slides are read at
        different levels (planning by ``mpp``), see ``levels``.
    size
        (height, width) of a patch in pixels of its level.
    stride
        (dy, dx) between grid neighbours in pixels of the level (random plans:
        the size).
    kind
        How the plan was made: ``"grid"``, ``"random"`` or ``"weighted"``.
    padding, dilation, fill, seed
        The remaining parameters that made the plan (recorded in the store).
    extra
        Other JSON-ready parameters recorded in the store (``mpp``,
        ``min_tissue``, ``weights``…).
    levels
        One level per source; empty when every source is read at ``level``.
    factors
        One resampling factor per source (target mpp / mpp of the level read;
        1 when the level is read as it is); empty when no source is resampled.
        A patch of ``size`` target pixels is read as :meth:`read_size` pixels
        of its level and area-averaged down to ``size``.
    slide_labels
        One class label per source (``-1`` for none); empty when unlabelled.
    classes
        Class names, indexed by label.
    tissue
        (N,) float32 tissue fraction of each patch's footprint, or ``None``
        when no tissue mask was used.
    patch_labels
        (N,) int32 label of each patch when patches of one source differ
        (labels from annotations); ``None`` when labels are per source.
    """

    slide: npt.NDArray[np.int32]
    y: npt.NDArray[np.int64]
    x: npt.NDArray[np.int64]
    level: int
    size: tuple[int, int]
    stride: tuple[int, int]
    kind: PlanKind = "grid"
    padding: Padding = "valid"
    dilation: tuple[int, int] = (1, 1)
    fill: float = 0
    seed: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    levels: tuple[int, ...] = ()
    factors: tuple[float, ...] = ()
    slide_labels: tuple[int, ...] = ()
    classes: tuple[str, ...] = ()
    tissue: npt.NDArray[np.float32] | None = None
    patch_labels: npt.NDArray[np.int32] | None = None

    def __post_init__(self) -> None:
        n = len(self.slide)
        if not len(self.y) == len(self.x) == n:
            raise InvalidArgumentError(
                f"plan arrays must have equal lengths; got slide={n}, y={len(self.y)}, "
                f"x={len(self.x)}"
            )
        if self.tissue is not None and len(self.tissue) != n:
            raise InvalidArgumentError(
                f"plan tissue must have one value per patch ({n}); got {len(self.tissue)}"
            )
        if self.patch_labels is not None and len(self.patch_labels) != n:
            raise InvalidArgumentError(
                f"plan patch_labels must have one value per patch ({n}); got "
                f"{len(self.patch_labels)}"
            )

    def __len__(self) -> int:
        return len(self.slide)

    @property
    def coords(self) -> npt.NDArray[np.int64]:
        """(N, 2) level-0 (y, x) top-left corner of each patch, as ``PatchStore.coords``."""
        return np.stack([np.asarray(self.y, np.int64), np.asarray(self.x, np.int64)], axis=1)

    def level_of(self, index: int) -> int:
        """The level source ``index`` is read at."""
        return self.levels[index] if self.levels else self.level

    def factor_of(self, index: int) -> float:
        """The resampling factor of source ``index`` (1: read as it is)."""
        return self.factors[index] if self.factors else 1.0

    def read_size(self, index: int) -> tuple[int, int]:
        """(height, width) in pixels of its level that a patch of source ``index`` reads
        (its ``span``, times the resampling factor, rounded)."""
        f = self.factor_of(index)
        sh, sw = self.span
        return read_size(sh, f), read_size(sw, f)

    @property
    def span(self) -> tuple[int, int]:
        """(height, width) a patch covers in pixels of its level: ``(k - 1) * r + 1``."""
        (h, w), (ry, rx) = self.size, self.dilation
        return (h - 1) * ry + 1, (w - 1) * rx + 1

    @property
    def label(self) -> npt.NDArray[np.int32]:
        """(N,) int32 class label of every patch (``patch_labels``, else the label of its
        source), -1 where the plan has no labels."""
        if self.patch_labels is not None:
            return self.patch_labels
        if not self.slide_labels:
            return np.full(len(self), -1, np.int32)
        labels: npt.NDArray[np.int32] = np.asarray(self.slide_labels, np.int32)[self.slide]
        return labels

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
            "levels": list(self.levels),
            "factors": list(self.factors),
            "labels": list(self.slide_labels),
            "classes": list(self.classes),
            **self.extra,
        }

    def rows(self, start: int, stop: int) -> PatchPlan:
        """The sub-plan of patches ``start:stop`` (views, no copies)."""
        return self.take(slice(start, stop))

    def take(self, rows: slice | npt.NDArray[np.integer[Any]]) -> PatchPlan:
        """The sub-plan of the patches ``rows`` selects (a slice: views; indices: copies)."""
        return dataclasses.replace(
            self,
            slide=self.slide[rows],
            y=self.y[rows],
            x=self.x[rows],
            tissue=None if self.tissue is None else self.tissue[rows],
            patch_labels=None if self.patch_labels is None else self.patch_labels[rows],
        )


# --------------------------------------------------------------------------- shared helpers


def resolve_resolutions(
    slides: Sequence[Slide],
    level: int | None,
    mpp: float | None,
    magnification: float | None = None,
    tolerance: float = MPP_TOLERANCE,
    on_error: OnError = "stop",
) -> tuple[list[Resolution], dict[int, dict[str, str]]]:
    """Level read and resampling factor of each slide: ``level`` for all (default 0), or per
    slide for a target ``mpp`` / ``magnification`` (see :mod:`gigapatch.sources.resolution`).

    Returns the resolutions and the slides left out by index (``{path, name, reason}``).
    A slide that cannot be read at what was asked (it records no pixel size, the
    target is finer than its level 0, it lacks the level) raises with
    ``on_error="stop"``; with ``"skip"`` it is left out, its resolution a stand-in
    (level 0 as it is) for a slide that gets no patches. Arguments that are wrong
    for every slide raise either way.
    """
    tolerance = check_request(level, mpp, magnification, tolerance)
    resolutions: list[Resolution] = []
    failed: dict[int, dict[str, str]] = {}
    for k, s in enumerate(slides):
        try:
            resolutions.append(s.resolution(level=level, mpp=mpp, magnification=magnification,
                                            tolerance=tolerance))
        except InvalidArgumentError as exc:
            if on_error == "stop":
                raise
            failed[k] = skipped_slide(s, exc)
            resolutions.append(Resolution(0))
    return resolutions, failed


def common_level(
    resolutions: Sequence[Resolution],
) -> tuple[int, tuple[int, ...], tuple[float, ...]]:
    """``(level, levels, factors)`` for a plan: the shared level (-1 when slides differ),
    every slide's level, and every slide's factor (empty when none is resampled)."""
    levels = [r.level for r in resolutions]
    factors = tuple(float(r.factor) for r in resolutions)
    return (
        (levels[0] if len(set(levels)) == 1 else -1),
        tuple(int(v) for v in levels),
        factors if any(f != 1.0 for f in factors) else (),
    )


def resolution_params(
    mpp: float | None, magnification: float | None, tolerance: float,
    resolutions: Sequence[Resolution],
) -> dict[str, Any]:
    """What a plan records of how its resolution was chosen."""
    targets = {r.mpp for r in resolutions}
    return {
        "mpp": mpp,
        "magnification": magnification,
        "mpp_tolerance": tolerance,
        "target_mpp": targets.pop() if len(targets) == 1 else None,
    }


class PlanArrays(TypedDict):
    """The fields of a :class:`PatchPlan` that :meth:`PlanRows.arrays` fills."""

    slide: npt.NDArray[np.int32]
    y: npt.NDArray[np.int64]
    x: npt.NDArray[np.int64]
    level: int
    levels: tuple[int, ...]
    factors: tuple[float, ...]
    tissue: npt.NDArray[np.float32] | None
    patch_labels: npt.NDArray[np.int32] | None


class PlanRows:
    """The patches a planner keeps, slide by slide, joined into a plan's arrays at the end."""

    def __init__(self) -> None:
        self._slide: list[npt.NDArray[np.int32]] = []
        self._y: list[npt.NDArray[np.int64]] = []
        self._x: list[npt.NDArray[np.int64]] = []
        self._tissue: list[npt.NDArray[np.float32] | None] = []
        self._labels: list[npt.NDArray[np.int32] | None] = []

    def add(
        self, index: int, y: npt.NDArray[np.int64], x: npt.NDArray[np.int64],
        tissue: npt.NDArray[np.float32] | None, labels: npt.NDArray[np.int32] | None = None,
    ) -> None:
        """Append the level-0 corners (and tissue fractions, if a mask was used, and labels,
        if patches are labelled one by one) of slide ``index``."""
        self._slide.append(np.full(len(y), index, np.int32))
        self._y.append(y)
        self._x.append(x)
        self._tissue.append(tissue)
        self._labels.append(labels)

    def arrays(self, resolutions: Sequence[Resolution]) -> PlanArrays:
        """The joined arrays, the slides' common ``level``, ``levels`` and ``factors``;
        ``tissue`` is NaN for slides without a mask, ``None`` when no slide had one;
        ``patch_labels`` -1 for slides without, ``None`` when no slide had them."""
        level, per_slide, factors = common_level(resolutions)
        tissue = None
        if any(t is not None for t in self._tissue):
            tissue = np.concatenate([
                np.full(len(y), np.nan, np.float32) if t is None else t
                for t, y in zip(self._tissue, self._y, strict=True)
            ])
        labels = None
        if any(v is not None for v in self._labels):
            labels = np.concatenate([
                np.full(len(y), -1, np.int32) if v is None else v.astype(np.int32)
                for v, y in zip(self._labels, self._y, strict=True)
            ])
        # every slide left out (on_error="skip"): an empty plan, not a failed concatenation
        none = [np.zeros(0, np.int64)]
        return PlanArrays(slide=np.concatenate([np.zeros(0, np.int32), *self._slide]),
                          y=np.concatenate(none + self._y), x=np.concatenate(none + self._x),
                          level=level, levels=per_slide, factors=factors, tissue=tissue,
                          patch_labels=labels)


def resolve_labels(
    sources: Any, slides: Sequence[Slide], labels: Sequence[int] | None
) -> tuple[tuple[int, ...], tuple[str, ...]]:
    """Per-slide labels and class names, from ``labels`` or a `SlideSet`'s own."""
    classes = tuple(getattr(sources, "classes", ()))
    if labels is None:
        labels = getattr(sources, "labels", None)
    if labels is None:
        return (), classes
    try:
        labels = tuple(labels)
    except TypeError:
        raise InvalidArgumentError(
            f"labels must give one integer label >= -1 per slide ({len(slides)}); got {labels!r}"
        ) from None
    if len(labels) != len(slides) or any(
        isinstance(v, bool) or not isinstance(v, int | np.integer) or v < -1 for v in labels
    ):
        raise InvalidArgumentError(
            f"labels must give one integer label >= -1 per slide ({len(slides)}); got {labels!r}"
        )
    return tuple(int(v) for v in labels), classes


def check_fill(fill: Any, slides: Sequence[Slide]) -> float:
    """``fill`` as a number that every slide's dtype holds exactly."""
    value: float = check_number("fill", fill)
    for s in slides:
        value = check_fill_value(fill, s.dtype, owner=repr(s.name))
    return value


def check_fraction(name: str, value: Any) -> float:
    """``value`` as a float in [0, 1]."""
    return check_unit_fraction(name, value)


def slide_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of slide ``index``: ``SeedSequence(seed).spawn(...)[index]``'s stream.

    Built from the spawn key directly, so it does not depend on how many
    slides there are, their order of computation or the parallelism.
    """
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index,)))


def locality_order(
    ly: npt.NDArray[np.int64], lx: npt.NDArray[np.int64], band: int
) -> npt.NDArray[np.intp]:
    """Indices that sort patches by band of ``band`` rows, then x, then y (read locality)."""
    return np.lexsort((ly, lx, ly // max(int(band), 1)))


def to_level0(
    ly: npt.NDArray[Any], lx: npt.NDArray[Any], slide: Slide, level: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Level pixel coordinates to level-0 pixels (int64, rounded as `Slide.to_level0`)."""
    dy, dx = slide.levels[level].downsample
    return np.rint(ly * dy).astype(np.int64), np.rint(lx * dx).astype(np.int64)
