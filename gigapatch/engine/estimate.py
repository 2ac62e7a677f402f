"""Look before you spend a night: what a plan will write, how big and how long, without writing.

:func:`estimate` describes every slide of a plan (level read, pixel sizes,
resampling, tissue, patches per class) and measures a small seeded sample of
the plan's real patches on this machine:

* **size** — each sampled patch is encoded with the store's own codec
  (:func:`gigapatch.engine.sizing.encoder`: a lossless compressor, or one
  JPEG per patch), one patch per chunk as the shard writer does; the mean is
  scaled to every patch, plus each shard's index and the small per-patch
  arrays (encoded by zarr as the store encodes them). ``jpeg:source`` chunks
  are the source's tiles themselves: the sample's tiles are read as stored
  (:func:`~gigapatch.engine.measure.measure_passthrough`) and their sizes
  scaled, and nothing is decoded;
* **time** — the sample is extracted with :func:`gigapatch.extract` on the
  chosen workers and the tiles it needs are decoded alone, which splits its
  cost into a part per decoded tile and a part per patch; the plan's own count
  of tile decodes (:func:`~gigapatch.engine.tiles.tile_decodes`: neighbours in
  a grid share tiles) and of patches scale them up, plus the codec's time per
  patch and, given the output path, the time to write the bytes there (timed
  on one shard's worth in a temporary file, deleted at once). It is an
  estimate: other work on the machine, a cold disk cache or a slower part of
  the slides move the real figure.

``gigapatch extract ... --dry-run`` prints it.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from gigapatch.engine.measure import measure, measure_passthrough, write_seconds
from gigapatch.engine.passthrough import check_passthrough
from gigapatch.engine.scheduling import check_scheduler
from gigapatch.engine.sizing import metadata_bytes, shard_index_bytes
from gigapatch.engine.slides import SlideRow, slide_rows
from gigapatch.engine.tiles import tile_decodes
from gigapatch.errors import InvalidArgumentError, check_int, check_seed
from gigapatch.kernels.backend import Device
from gigapatch.plan import PatchPlan, as_slides
from gigapatch.store.codecs import check_codec, parse_codec
from gigapatch.store.format import Codec

__all__ = ["Estimate", "SlideRow", "estimate", "sample_rows"]


@dataclass(frozen=True)
class Estimate:
    """What a plan will write, how big and how long: the result of :func:`estimate`.

    Attributes
    ----------
    slides
        One row per source (:class:`~gigapatch.engine.slides.SlideRow`).
    patches
        Patches in the plan.
    per_class
        Patches per class name (empty for an unlabelled plan; ``"-1"`` counts
        unlabelled slides of a labelled plan).
    patch_shape, dtype
        (h, w, C) and dtype of a patch.
    codec, shard_size, workers
        The store's codec and shard size, and the local workers timed.
    sample
        Patches of the plan extracted and encoded to measure.
    pixel_bytes
        Bytes of the patches' pixels, uncompressed.
    image_bytes
        Estimated bytes of ``images`` on disk: encoded patches plus shard indexes.
    meta_bytes
        Bytes of everything else in the store (per-patch arrays, flags, metadata).
    tile_decodes
        Tiles the engine decodes for the whole plan.
    seconds
        Estimated wall-clock seconds of the extraction on this machine.
    writing
        Whether ``seconds`` includes writing the store (timed in its folder).
    sample_seconds
        Seconds the measurements took (the sample's extraction, decode and encode).
    details
        The measurements behind ``seconds``: the sample's times (``extract_s``,
        ``decode_s``, ``encode_s``), its tile decodes, and the costs derived
        (``seconds_per_tile``, ``seconds_per_patch``, ``encode_per_patch``).
    """

    slides: tuple[SlideRow, ...]
    patches: int
    per_class: dict[str, int]
    patch_shape: tuple[int, int, int]
    dtype: str
    codec: Codec
    shard_size: int
    workers: int
    sample: int
    pixel_bytes: int
    image_bytes: int
    meta_bytes: int
    tile_decodes: int
    seconds: float
    sample_seconds: float
    writing: bool = False
    details: dict[str, float] = field(default_factory=dict)

    @property
    def bytes(self) -> int:
        """Estimated size of the whole store in bytes."""
        return self.image_bytes + self.meta_bytes

    @property
    def ratio(self) -> float:
        """Uncompressed pixel bytes per byte of ``images`` on disk (1.0 for no patches)."""
        return self.pixel_bytes / self.image_bytes if self.image_bytes else 1.0


def sample_rows(plan: PatchPlan, sample: int, seed: int) -> npt.NDArray[np.int64]:
    """Sorted indices of ``min(sample, len(plan))`` patches of ``plan``, spread over its slides.

    Every slide with patches gets ``sample`` × its share of the plan (at least
    one while there are fewer slides than ``sample``), drawn without
    replacement by ``numpy.random.default_rng(seed)``.
    """
    n = len(plan)
    if sample >= n:
        return np.arange(n, dtype=np.int64)
    rng = np.random.default_rng(seed)
    sources, counts = np.unique(plan.slide, return_counts=True)
    share = np.maximum(np.floor(sample * counts / n), 1 if len(sources) <= sample else 0)
    while share.sum() > sample:  # the floor of one per slide overshot: trim the largest
        share[int(np.argmax(share))] -= 1
    rest = sample - int(share.sum())
    if rest:  # hand out what the floors left, to slides with the largest remainders
        room = np.flatnonzero(share < counts)
        extra = sample * counts[room] / n - share[room]
        share[room[np.argsort(-extra, kind="stable")[:rest]]] += 1
    picked = [
        rng.choice(np.flatnonzero(plan.slide == s), size=int(m), replace=False)
        for s, m in zip(sources.tolist(), share.tolist(), strict=True) if m
    ]
    return np.sort(np.concatenate(picked)).astype(np.int64)


def _subplan(plan: PatchPlan, rows: npt.NDArray[np.int64]) -> PatchPlan:
    return plan.take(rows)


def _existing_folder(out: str | os.PathLike[str]) -> Path:
    """The folder ``out`` would be created in: its nearest existing ancestor."""
    folder = Path(out).absolute().parent
    while not folder.is_dir():
        folder = folder.parent
    return folder


def estimate(
    sources: Any,
    plan: PatchPlan,
    *,
    codec: Codec = "lz4",
    shard_size: int = 256,
    workers: int | None = None,
    device: Device = "auto",
    out: str | os.PathLike[str] | None = None,
    sync: bool = True,
    sample: int = 64,
    seed: int = 0,
) -> Estimate:
    """Describe ``plan`` and estimate its store's size and its extraction time, writing nothing.

    Parameters
    ----------
    sources
        The slides the plan indexes (paths, arrays, `Slide` objects or a `SlideSet`).
    plan
        The plan (:func:`gigapatch.grid`, :func:`gigapatch.random`).
    codec, shard_size, workers, device, sync
        As the run would use them (:func:`gigapatch.extract_to_zarr`).
    out
        Where the store would go. When given, the time includes writing: about
        one shard's bytes are written once to a hidden temporary file in the
        folder that would hold ``out`` (synced if ``sync``) and deleted at once
        (:func:`~gigapatch.engine.measure.write_seconds`). ``out`` itself is
        never created.
    sample
        Patches of the plan to extract and encode (spread over the slides, see
        :func:`sample_rows`); more is steadier and slower.
    seed
        Seed of the sample.

    Returns
    -------
    Estimate
        Per-slide rows and totals, bytes and seconds.
    """
    if not isinstance(plan, PatchPlan):
        raise InvalidArgumentError(f"plan must be a PatchPlan; got {type(plan).__name__}")
    spec = parse_codec(codec)
    shard_size = check_int("shard_size", shard_size)
    sample = check_int("sample", sample)
    seed = check_seed(seed)
    workers = check_scheduler("threads", workers)
    slides = as_slides(sources)
    if len(plan) and int(plan.slide.max()) >= len(slides):
        raise InvalidArgumentError(
            f"plan refers to slide {int(plan.slide.max())} but {len(slides)} sources were given"
        )
    rows = slide_rows(slides, plan)
    h, w = plan.size
    channels, dtype = slides[0].channels, slides[0].dtype
    check_codec(spec, dtype, channels)
    codec = str(spec)
    n = len(plan)
    per_class: dict[str, int] = {}
    if plan.patch_labels is not None:
        names, counts = np.unique(plan.patch_labels, return_counts=True)
        for v, c in zip(names.tolist(), counts.tolist(), strict=True):
            per_class[plan.classes[v] if 0 <= v < len(plan.classes) else str(v)] = c
    elif plan.slide_labels:
        for row in rows:
            name = row.label if row.label is not None else "-1"
            per_class[name] = per_class.get(name, 0) + row.patches
    passthrough = check_passthrough(slides, plan, codec)  # jpeg:source: tiles, no decodes
    decodes = tile_decodes(slides, plan, shard_size=shard_size) if n and not passthrough else 0
    meta = metadata_bytes(slides, plan, shard_size=shard_size, codec=codec)
    image_bytes, seconds, details = 0, 0.0, {}
    measured = None
    if n:
        # as parallel as the real run can be: one task per shard
        w_eff = max(1, min(workers, math.ceil(n / shard_size)))
        picked = _subplan(plan, sample_rows(plan, sample, seed))
        measured = (measure_passthrough(slides, picked) if passthrough else
                    measure(slides, picked, codec=codec, workers=w_eff, device=device))
        image_bytes = round(measured.patch_bytes * n) + shard_index_bytes(n, shard_size)
        seconds = (measured.per_tile * decodes + measured.per_patch * n
                   + measured.encode * n / min(w_eff, os.cpu_count() or 1))
        details = {**measured.details, "seconds_per_tile": measured.per_tile,
                   "seconds_per_patch": measured.per_patch, "encode_per_patch": measured.encode}
        if out is not None:
            per_byte = write_seconds(_existing_folder(out), measured.blobs,
                                     round(measured.patch_bytes * shard_size), sync=sync)
            seconds += per_byte * (image_bytes + meta)
            details["write_seconds_per_byte"] = per_byte
    return Estimate(
        slides=tuple(rows),
        patches=n,
        per_class=per_class,
        patch_shape=(h, w, channels),
        dtype=str(dtype),
        codec=codec,
        shard_size=shard_size,
        workers=workers,
        sample=0 if measured is None else measured.count,
        pixel_bytes=n * h * w * channels * dtype.itemsize,
        image_bytes=image_bytes,
        meta_bytes=meta,
        tile_decodes=decodes,
        seconds=seconds,
        sample_seconds=0.0 if measured is None else measured.seconds,
        writing="write_seconds_per_byte" in details,
        details=details,
    )
