"""The planners' side of annotations: arguments checked, classes chosen, patches judged.

:func:`annotated_slides` checks ``annotations=`` and its companions once
for a plan and returns an :class:`AnnotatedSlides` (or ``None``), which
the grid and random planners ask, slide by slide, which patches to keep
and with which label:

* **labels** (``labels_from_annotations=True``): a patch's label is the class
  covering the largest fraction of its footprint, when that fraction is at
  least ``min_annotation`` (default 0.5); a patch no class covers that much
  is left out, or labelled ``background`` when one is named;
* **mask** (otherwise): a patch is kept when the regions together cover at
  least ``min_annotation`` of its footprint; labels stay the slides' own.

Classes are the annotations' class names that pass ``include_classes`` /
``exclude_classes``, over all slides, sorted (with ``background`` among
them); label ``k`` is ``classes[k]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from gigapatch.errors import InvalidArgumentError
from gigapatch.plan.annotations.coverage import Coverage
from gigapatch.plan.annotations.loading import AnnotationSpec, annotations_for
from gigapatch.plan.annotations.regions import Region
from gigapatch.sources import Slide

__all__ = ["MIN_ANNOTATION", "AnnotatedSlides", "annotated_slides"]

#: Default fraction of a footprint a class must cover to label the patch.
MIN_ANNOTATION = 0.5


def _names(name: str, value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, Sequence) or not all(isinstance(v, str) and v for v in value):
        raise InvalidArgumentError(
            f"{name} must be a class name or a list of class names; got {value!r}"
        )
    return tuple(value)


def _threshold(value: Any) -> float:
    if value is None:
        return MIN_ANNOTATION
    if isinstance(value, bool) or not isinstance(value, int | float | np.number) or not (
        0 < value <= 1
    ):
        raise InvalidArgumentError(f"min_annotation must be a number in (0, 1]; got {value!r}")
    return float(value)


def _key(r: Region) -> tuple[Any, ...]:
    """A region's place in the canonical order: class, larger first, then where it lies (so
    plans do not depend on the order a file lists its regions in)."""
    return (r.class_name, -r.area, r.bbox, len(r.exterior))


@dataclass(frozen=True, eq=False)
class AnnotatedSlides:
    """The regions of every slide of a plan and the rules that judge patches by them.

    Attributes
    ----------
    regions
        Per slide, its regions after the class filters, in a canonical order
        (class name, then larger first, then bounding box): the same regions
        listed in any order give the same plan.
    region_labels
        Per slide, the class index of each region (into ``classes`` with
        labels; into that slide's own sorted classes as a mask).
    classes
        With labels, the plan's class names; empty as a mask.
    labels
        Whether patches are labelled by the regions.
    threshold
        ``min_annotation``.
    background
        Index of the background class, or ``None``.
    params
        What the plan records (JSON-ready).
    """

    regions: list[list[Region]]
    region_labels: list[list[int]]
    classes: tuple[str, ...]
    labels: bool
    threshold: float
    background: int | None
    params: dict[str, Any]

    def coverage(self, k: int, slide: Slide, footprint: tuple[float, float]) -> Coverage:
        """The coverage of footprints of ``footprint`` (level-0 h0, w0) on slide ``k``."""
        n = len(self.classes) if self.labels else max(self.region_labels[k], default=-1) + 1
        return Coverage(self.regions[k], self.region_labels[k], n, slide.shape, footprint)

    def judge(self, cov: npt.NDArray[np.float32]) -> tuple[
        npt.NDArray[np.bool_], npt.NDArray[np.int32] | None
    ]:
        """Which patches to keep, from their coverages (N, classes), and their labels (with
        labels; ``None`` as a mask)."""
        if not self.labels:
            keep: npt.NDArray[np.bool_] = cov.sum(axis=1) >= self.threshold - 1e-6
            return keep, None
        label = self.label(cov)
        return label >= 0, label

    def label(self, cov: npt.NDArray[np.float32]) -> npt.NDArray[np.int32]:
        """(N,) the label of each patch by the coverage rule: -1 where none (no background)."""
        if cov.shape[1] == 0:
            best = np.zeros(len(cov), np.int64)
            top = np.zeros(len(cov), np.float32)
        else:
            best = np.argmax(cov, axis=1)
            top = cov[np.arange(len(cov)), best]
        ok = (top > 0) & (top >= self.threshold - 1e-6)
        fallback = -1 if self.background is None else self.background
        label: npt.NDArray[np.int32] = np.where(ok, best, fallback).astype(np.int32)
        return label

    def slide_classes(self, k: int) -> list[int]:
        """The class indices with regions on slide ``k``, sorted (labels only)."""
        return sorted(set(self.region_labels[k]))


def _check_flags(
    annotations: Any, labels_from_annotations: Any, min_annotation: Any, background: Any,
    include: tuple[str, ...] | None, exclude: tuple[str, ...] | None,
) -> None:
    if not isinstance(labels_from_annotations, bool):
        raise InvalidArgumentError(
            f"labels_from_annotations must be True or False; got {labels_from_annotations!r}"
        )
    if annotations is None:
        given = {"labels_from_annotations": labels_from_annotations,
                 "min_annotation": min_annotation is not None, "background": background is not None,
                 "include_classes": include is not None, "exclude_classes": exclude is not None}
        for name, present in given.items():
            if present:
                raise InvalidArgumentError(
                    f"{name} needs annotations (a file or folder of regions); got it without")
    if background is not None:
        if not isinstance(background, str) or not background:
            raise InvalidArgumentError(
                f"background must be a non-empty class name; got {background!r}"
            )
        if not labels_from_annotations:
            raise InvalidArgumentError(
                "background labels patches no region covers: it needs labels_from_annotations"
            )
    if include is not None and exclude is not None and set(include) & set(exclude):
        raise InvalidArgumentError(
            f"include_classes and exclude_classes both name {sorted(set(include) & set(exclude))}"
        )


def annotated_slides(
    annotations: AnnotationSpec, slides: Sequence[Slide], slide_labels: Sequence[int], *,
    labels_from_annotations: Any = False, min_annotation: Any = None, background: Any = None,
    include_classes: Any = None, exclude_classes: Any = None,
) -> AnnotatedSlides | None:
    """Check the annotation arguments of a planner and load every slide's regions.

    Returns ``None`` without ``annotations``. Raises :class:`InvalidArgumentError`
    for a bad argument or combination (each names the argument), and
    :class:`~gigapatch.errors.AnnotationError` for a file that cannot be used
    or a vertex outside its slide.
    """
    include = _names("include_classes", include_classes)
    exclude = _names("exclude_classes", exclude_classes)
    _check_flags(annotations, labels_from_annotations, min_annotation, background, include,
                 exclude)
    threshold = _threshold(min_annotation)
    if annotations is None:
        return None
    if labels_from_annotations and slide_labels:
        raise InvalidArgumentError(
            "labels_from_annotations labels patches by regions; it excludes per-slide labels "
            "(labels= or class folders)"
        )
    found = annotations_for(annotations, slides)
    for a, s in zip(found, slides, strict=True):
        if a is not None:
            a.check_inside(s.shape, s.name)
    seen = sorted({r.class_name for a in found if a is not None for r in a.regions})
    for name, names in (("include_classes", include), ("exclude_classes", exclude)):
        unknown = [c for c in names or () if c not in seen]
        if unknown:
            raise InvalidArgumentError(
                f"{name} names {unknown}, which no annotation has; classes found: {seen}"
            )
    wanted = [c for c in seen if (include is None or c in include) and c not in (exclude or ())]
    if not wanted:
        raise InvalidArgumentError(
            f"annotations: no region is left (classes found: {seen}, include_classes "
            f"{list(include) if include is not None else None}, exclude_classes "
            f"{list(exclude or ())})"
        )
    regions = [sorted((r for r in (a.regions if a else ()) if r.class_name in wanted), key=_key)
               for a in found]
    classes = tuple(sorted({*wanted, background})) if background else tuple(wanted)
    if labels_from_annotations:
        index = {c: i for i, c in enumerate(classes)}
        region_labels = [[index[r.class_name] for r in rs] for rs in regions]
    else:
        own = [{c: i for i, c in enumerate(sorted({r.class_name for r in rs}))} for rs in regions]
        region_labels = [[o[r.class_name] for r in rs] for o, rs in zip(own, regions, strict=True)]
    params = {
        "annotations": [None if a is None else a.record() for a in found],
        "labels_from_annotations": labels_from_annotations,
        "min_annotation": threshold,
        "background": background,
        "include_classes": None if include is None else list(include),
        "exclude_classes": list(exclude or ()),
        "annotation_classes": list(wanted),
    }
    return AnnotatedSlides(
        regions, region_labels, classes if labels_from_annotations else (),
        labels_from_annotations, threshold,
        classes.index(background) if background else None, params,
    )

