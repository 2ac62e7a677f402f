"""One row per slide of a plan: what is read, at which pixel size, how much tissue, how many
patches, in which class — the table ``gigapatch extract --dry-run`` prints."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gigapatch.plan import PatchPlan
from gigapatch.plan.masks import resolve_mask, tissue_mask
from gigapatch.sources import Slide

__all__ = ["SlideRow", "slide_rows", "slide_tissue"]


@dataclass(frozen=True)
class SlideRow:
    """What a plan takes from one slide.

    Attributes
    ----------
    name
        The slide's name (its file name).
    level
        Pyramid level read.
    level_mpp
        Pixel size (µm) of that level; ``None`` when the slide does not record one.
    patch_mpp
        Pixel size (µm) of the patches (``level_mpp`` × ``factor``).
    factor
        Resampling factor (1: the level is read as it is).
    tissue
        Fraction of the slide that is tissue by the plan's mask; ``None`` when
        the plan used no tissue mask (or one that cannot be recomputed: an
        array or a callable).
    label
        Class name of the slide (its label as text when the plan has no names);
        ``None`` for an unlabelled slide.
    patches
        Patches of the plan from this slide.
    """

    name: str
    level: int
    level_mpp: float | None
    patch_mpp: float | None
    factor: float
    tissue: float | None
    label: str | None
    patches: int


def slide_tissue(slide: Slide, plan: PatchPlan) -> float | None:
    """Tissue fraction of ``slide`` by the mask ``plan`` recorded, or None without one.

    The Otsu mask (``"tissue"``, as a mask or as weights) is computed again
    from the slide's low-resolution level; a mask file is read again. Masks
    given as arrays or callables are not recorded in the plan: None.
    """
    mask, weights = plan.extra.get("mask"), plan.extra.get("weights")
    spec = mask if mask is not None else weights if weights == "tissue" else None
    if spec == "tissue":
        return float(np.mean(tissue_mask(slide)))
    if isinstance(spec, str) and os.path.isfile(spec):
        found = resolve_mask(spec, slide)
        return None if found is None else float(np.mean(found))
    return None


def _label(plan: PatchPlan, index: int) -> str | None:
    if not plan.slide_labels:
        return None
    label = plan.slide_labels[index]
    if 0 <= label < len(plan.classes):
        return plan.classes[label]
    return None if label < 0 else str(label)


def slide_rows(slides: Sequence[Slide], plan: PatchPlan) -> list[SlideRow]:
    """One :class:`SlideRow` per source of ``plan`` (``slides`` are its sources, in order)."""
    counts = np.bincount(plan.slide, minlength=len(slides)) if len(plan) else (
        np.zeros(len(slides), np.int64))
    rows = []
    for k, slide in enumerate(slides):
        level, factor = plan.level_of(k), plan.factor_of(k)
        level_mpp = None if slide.mpp is None else slide.mpp * slide.levels[level].downsample[1]
        rows.append(SlideRow(
            name=slide.name,
            level=level,
            level_mpp=level_mpp,
            patch_mpp=None if level_mpp is None else level_mpp * factor,
            factor=factor,
            tissue=slide_tissue(slide, plan),
            label=_label(plan, k),
            patches=int(counts[k]),
        ))
    return rows
