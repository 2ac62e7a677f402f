"""The PSNR of a finished JPEG store: a fixed sample of its patches read back, against the
same patches extracted again uncompressed (the engine is deterministic), recorded in the
store's attrs (:mod:`gigapatch.store.quality`)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Final

import numpy as np
import zarr

from gigapatch.engine.reading import read_patches
from gigapatch.plan import PatchPlan
from gigapatch.sources import Slide
from gigapatch.store import PatchStore
from gigapatch.store.codecs import codec_of
from gigapatch.store.quality import psnr_db, record_quality

__all__ = ["QUALITY_SAMPLE", "record_store_quality"]

#: Patches sampled (seed 0) to measure a JPEG store's PSNR: ~64 patch extractions and decodes.
QUALITY_SAMPLE: Final = 64


def record_store_quality(
    slides: Sequence[Slide], plan: PatchPlan, out: str | os.PathLike[str], *, device: str,
    sync: bool = True, sample: int = QUALITY_SAMPLE,
) -> None:
    """Measure and record the PSNR of the finished store ``out`` of ``plan`` if it is lossy.

    ``sample`` patches (drawn with seed 0 among those extracted) are read from
    the store and extracted again from ``slides``; nothing is done for a
    lossless store.
    """
    store = PatchStore(out)
    codec = codec_of(store.attrs)
    if codec is None or codec.lossless:
        return
    ok = store.ok_indices()
    rows = np.sort(np.random.default_rng(0).choice(ok, size=min(sample, len(ok)),
                                                   replace=False))
    psnr = None
    if len(rows):
        reference = read_patches(slides, plan.take(rows), device)
        psnr = psnr_db(reference, store[rows])
    record_quality(zarr.open_group(out, mode="r+"), codec, psnr, len(rows), sync=sync)
