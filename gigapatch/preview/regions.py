"""Region outlines for pictures: the annotations a plan (or a store) was made from.

An outline is drawn in the box colour of its class when the plan labels
patches by class (so a region and its patches match), else in
:data:`~gigapatch.preview.canvas.REGION_COLOUR`; exteriors and holes alike,
2 pixels wide, under the patch boxes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from gigapatch.errors import AnnotationError
from gigapatch.plan.annotations import Annotations, Region, annotations_for, read_annotations
from gigapatch.preview.canvas import REGION_COLOUR, Key, label_colour
from gigapatch.sources import Slide

__all__ = ["Outline", "outlines", "recorded_regions", "regions_of"]

#: One polyline on a thumbnail, (n, 2) (x, y) thumbnail pixels, and its colour.
Outline = tuple[np.ndarray, tuple[int, int, int]]


def recorded_regions(params: Mapping[str, Any], k: int) -> list[Region]:
    """The regions source ``k`` of a plan or store was planned with, read again from the
    recorded file (only the classes the plan used); none when it recorded no file or the
    file is gone."""
    records = params.get("annotations") or []
    rec = records[k] if k < len(records) else None
    if not isinstance(rec, dict) or not rec.get("path"):
        return []
    try:
        found = read_annotations(rec["path"])
    except AnnotationError:
        return []  # moved or deleted since: the picture goes without outlines
    used = params.get("annotation_classes")
    return [r for r in found.regions if used is None or r.class_name in used]


def regions_of(spec: Any, params: Mapping[str, Any], k: int, slide: Slide) -> list[Region]:
    """The regions to outline: ``"auto"`` (what the plan recorded), ``None`` (none), or a
    file, an :class:`Annotations` or a list of :class:`Region` for this slide."""
    if spec is None:
        return []
    if isinstance(spec, str) and spec == "auto":
        return recorded_regions(params, k)
    if isinstance(spec, Annotations):
        return list(spec.regions)
    found = annotations_for(spec, [slide])[0]
    return [] if found is None else list(found.regions)


def outlines(
    regions: Sequence[Region], classes: Sequence[str], scale: tuple[float, float]
) -> tuple[list[Outline], list[Key]]:
    """Thumbnail polylines of ``regions`` (``scale``: (sy, sx) thumbnail pixels per level-0
    pixel) and a legend entry per class drawn."""
    sy, sx = scale
    lines: list[Outline] = []
    names: dict[str, tuple[int, int, int]] = {}
    for r in regions:
        colour = (label_colour(list(classes).index(r.class_name)) if r.class_name in classes
                  else REGION_COLOUR)
        names.setdefault(r.class_name, colour)
        for ring in (r.exterior, *r.holes):
            lines.append((ring * np.array([sx, sy]), colour))
    keys = [Key("line", c, f"{name} region") for name, c in sorted(names.items())]
    return lines, keys
