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


#: Most shards the sample is drawn from: reading a shard first checks its whole index and
#: digest (one small read per chunk), which cost more than the sample's decodes when the
#: sample was spread over every shard of a large store.
QUALITY_SHARDS: Final = 8


def _sample_rows(ok: np.ndarray, shard_size: int, sample: int) -> np.ndarray:
    """Sorted store indices of up to ``sample`` patches among ``ok``, drawn with seed 0 from
    up to :data:`QUALITY_SHARDS` shards drawn first."""
    rng = np.random.default_rng(0)
    shards = np.unique(ok // shard_size)
    picked = rng.choice(shards, size=min(QUALITY_SHARDS, len(shards)), replace=False)
    pool = ok[np.isin(ok // shard_size, picked)]
    return np.sort(rng.choice(pool, size=min(sample, len(pool)), replace=False))


def record_store_quality(
    slides: Sequence[Slide], plan: PatchPlan, out: str | os.PathLike[str], *, device: str,
    sync: bool = True, sample: int = QUALITY_SAMPLE,
) -> None:
    """Measure and record the PSNR of the finished store ``out`` of ``plan`` if it is lossy.

    ``sample`` patches (drawn with seed 0 among those extracted, from at most
    :data:`QUALITY_SHARDS` shards) are read from the store and extracted again
    from ``slides``; nothing is done for a lossless store.
    """
    store = PatchStore(out)
    codec = codec_of(store.attrs)
    if codec is None or codec.lossless:
        return
    rows = _sample_rows(store.ok_indices(), store.shard_size, sample)
    psnr = None
    if len(rows):
        reference = read_patches(slides, plan.take(rows), device)
        psnr = psnr_db(reference, store[rows])
    record_quality(zarr.open_group(out, mode="r+"), codec, psnr, len(rows), sync=sync)
