"""What a run records in its store: the :class:`~gigapatch.store.StoreSpec` of a plan.

:func:`store_spec` gathers the patches' coordinates, slides, labels and
tissue, the plan's parameters and one :func:`source_record` per source: the
file (size, time, content fingerprint, checked by ``--resume``), the level
read and how patches were resampled.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from gigapatch.plan import PatchPlan
from gigapatch.sources import Slide, describe_file, fingerprint
from gigapatch.store import Codec, StoreSpec

__all__ = ["source_record", "store_spec"]


def store_spec(sources: Any, slides: Sequence[Slide], plan: PatchPlan, labels: Sequence[int], *,
               shard_size: int, codec: Codec) -> StoreSpec:
    """The spec of the store of ``plan``: ``labels`` one per slide (a plan labelled patch by
    patch keeps its own), the slides ``sources`` or the plan left out recorded as skipped."""
    h, w = plan.size
    return StoreSpec(
        patch_shape=(h, w, slides[0].channels),
        dtype=slides[0].dtype,
        coords=np.stack([plan.y, plan.x], axis=1),
        slide=plan.slide,
        label=(plan.label if plan.patch_labels is not None else  # labels from annotations
               np.asarray(labels, np.int32)[plan.slide] if len(plan) else np.empty(0, np.int32)),
        sources=[
            source_record(s, plan, k, lab)
            for k, (s, lab) in enumerate(zip(slides, labels, strict=True))
        ],
        tissue=plan.tissue,
        plan=plan.params(),
        shard_size=shard_size,
        codec=codec,
        skipped=[*getattr(sources, "skipped", []), *plan.extra.get("skipped", [])],
    )


def source_record(slide: Slide, plan: PatchPlan, k: int, label: int) -> dict[str, Any]:
    """What the store records of source ``k``: the file, the level read and how patches were
    resampled (target mpp, factor, method, level pixels read per patch)."""
    record: dict[str, Any] = describe_file(slide.path) if slide.path else {"path": None}
    if slide.path:  # what --resume checks: the content, not only size and time
        record["fingerprint"] = fingerprint(slide.path)
    level, factor = plan.level_of(k), plan.factor_of(k)
    lvl = slide.levels[level]
    base = slide.mpp
    level_mpp = None if base is None else base * lvl.downsample[1]
    record.update(
        name=slide.name,
        format=slide.format,
        level=level,
        downsample=list(lvl.downsample),
        mpp=slide.mpp,
        magnification=slide.magnification,
        level_mpp=level_mpp,
        target_mpp=plan.extra.get("target_mpp"),
        patch_mpp=None if level_mpp is None else level_mpp * factor,
        factor=factor,
        resampling="none" if factor == 1.0 else (
            "area-integer" if float(factor).is_integer() else "area"),
        read_size=list(plan.read_size(k)),
        series=slide.series_index,
        series_name=slide.series[slide.series_index].name if slide.series else None,
        shape=list(slide.shape),
        label=label,
    )
    if plan.extra.get("annotations"):  # the regions' file and content fingerprint
        record["annotations"] = plan.extra["annotations"][k]
    return record
