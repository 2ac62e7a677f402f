"""The picture of a plan: one slide's thumbnail, its tissue outline, and a box per patch."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from gigapatch.errors import InvalidArgumentError, check_int
from gigapatch.plan.core import PatchPlan, as_slides
from gigapatch.plan.masks import resolve_mask
from gigapatch.preview.canvas import MAX_WIDTH, require_pil, with_header
from gigapatch.preview.overlay import annotate, box_extents, slide_thumbnail
from gigapatch.preview.regions import outlines, regions_of
from gigapatch.sources import Slide

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["describe_patches", "plan", "plan_sources"]


def plan_sources(plan: PatchPlan) -> int:
    """How many sources ``plan`` refers to (at least 1)."""
    top = int(plan.slide.max()) + 1 if len(plan) else 0
    return max(len(plan.levels), len(plan.factors), len(plan.slide_labels), top, 1)


def describe_patches(
    count: int, size: tuple[int, int], mpp: float | None, level: int, factor: float
) -> str:
    """``N patches of h×w px at M µm/px (level L, downsampled ×f)`` for a title line."""
    at = f" at {mpp:.3g} µm/px" if mpp else ""
    how = f"level {level}" + (f", downsampled ×{factor:.3g}" if factor != 1.0 else "")
    return f"{count:,} patches of {size[0]}×{size[1]} px{at} ({how})"


def _used_tissue(p: PatchPlan) -> bool:
    return "tissue" in (p.extra.get("mask"), p.extra.get("weights"))


def plan(
    slide: Any,
    plan: PatchPlan,
    *,
    slide_index: int = 0,
    mask: Any = "auto",
    regions: Any = "auto",
    max_boxes: int = 5000,
    width: int = 1600,
) -> Image.Image:
    """Draw where a plan's patches lie on one slide.

    Reads only a low pyramid level (see
    :func:`gigapatch.preview.overlay.thumbnail_level`) and, for the tissue
    outline, the level :func:`gigapatch.plan.masks.tissue_mask` reads: never
    level 0 of a pyramid.

    Parameters
    ----------
    slide
        The slide the plan was made for (a path, array or `Slide`), or all of
        the plan's sources (a sequence or `SlideSet`; ``slide_index`` then
        picks one). A single slide stands for source ``slide_index``.
    plan
        A :class:`~gigapatch.PatchPlan`.
    slide_index
        Which of the plan's sources to draw; only its patches are drawn.
    mask
        Tissue outline: ``"auto"`` (default) draws the tissue mask when the plan
        used one (``mask``/``weights``/``min_tissue`` by tissue); ``"tissue"``
        always; ``None`` never; or a 2-d map, a mask file or a
        ``(slide) -> map`` callable, as the planners take (≥ 0.5 is inside).
    regions
        Region outlines, drawn under the boxes: ``"auto"`` (default) those of
        the annotation file the plan recorded for this slide (the classes it
        used), ``None`` none, or an annotation file, an ``Annotations`` or a
        list of ``Region`` (:mod:`gigapatch.plan.annotations`). An outline has
        its class's box colour when the plan labels patches by region.
    max_boxes
        Above this many patches, a heat map of how many patches cover each
        pixel replaces the boxes.
    width
        The picture's width in pixels and its thumbnail's larger side.

    Returns
    -------
    PIL.Image.Image
        An RGB picture ``width`` pixels wide: a title line (slide name, patch
        count, size, µm per pixel, level read) and a legend (box colour of each
        label, with its class name; tissue outline; heat ramp) on top, and below
        them, filling the bottom rows, the thumbnail (larger side ``width``)
        with a 1-pixel box per patch, coloured by label (black: unlabelled).

    Raises
    ------
    MissingExtraError
        Pillow is not installed (``pip install 'gigapatch[preview]'``).
    InvalidArgumentError
        A bad argument, or a ``slide_index`` the plan or the slides do not have.
    """
    require_pil()
    if not isinstance(plan, PatchPlan):
        raise InvalidArgumentError(f"plan must be a PatchPlan; got {type(plan).__name__}")
    width = check_int("width", width, 64, MAX_WIDTH)
    max_boxes = check_int("max_boxes", max_boxes, 0)
    slide_index = check_int("slide_index", slide_index, 0)
    slides = as_slides(slide)
    n = plan_sources(plan)
    if len(slides) > 1 and len(slides) != n:
        raise InvalidArgumentError(
            f"slide must be one slide or the plan's {n} sources; got {len(slides)} slides"
        )
    if slide_index >= n:
        raise InvalidArgumentError(
            f"slide_index must be in the range [0, {n - 1}] (the plan's sources); "
            f"got {slide_index}"
        )
    s = slides[0] if len(slides) == 1 else slides[slide_index]
    return _draw(s, plan, slide_index, mask, regions, max_boxes, width)


def _draw(
    s: Slide, p: PatchPlan, k: int, mask: Any, regions: Any, max_boxes: int, width: int
) -> Image.Image:
    from PIL import Image

    level = s.check_level(p.level_of(k))
    mine = p.slide == k
    rh, rw = p.read_size(k)
    dy, dx = s.levels[level].downsample
    auto = isinstance(mask, str) and mask == "auto"
    tissue = resolve_mask(("tissue" if _used_tissue(p) else None) if auto else mask, s)
    thumb = slide_thumbnail(s, width)
    (th, tw), (h0, w0) = thumb.shape[:2], s.shape
    ext = box_extents(p.y[mine], p.x[mine], (rh * dy, rw * dx), (th / h0, tw / w0))
    lines, line_keys = outlines(regions_of(regions, p.params(), k, s), p.classes,
                                (th / h0, tw / w0))
    img, keys = annotate(thumb, ext, p.label[mine], p.classes, max_boxes=max_boxes, mask=tissue,
                         lines=lines, line_keys=line_keys)
    factor = p.factor_of(k)
    mpp = p.extra.get("target_mpp") or (s.mpp * dx * factor if s.mpp else None)
    count = int(np.count_nonzero(mine))
    title = f"{s.name} · " + describe_patches(count, p.size, mpp, level, factor)
    if plan_sources(p) > 1:
        title += f" · slide {k + 1} of {plan_sources(p)}"
    return with_header(Image.fromarray(img), title, keys, width)
