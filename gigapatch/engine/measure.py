"""Measuring a sample of a plan on this machine: bytes per patch, seconds per tile decode, per
patch, per encode and per byte written — the figures :func:`gigapatch.engine.estimate` scales."""

from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gigapatch.engine.passthrough import read_tiles
from gigapatch.engine.run import extract
from gigapatch.engine.sizing import encoder
from gigapatch.engine.tiles import decode_tiles, tile_decodes, touched_tiles
from gigapatch.kernels.backend import Device
from gigapatch.plan import PatchPlan
from gigapatch.sources import Slide
from gigapatch.store.format import Codec
from gigapatch.store.shards import CHUNK_CRC_NBYTES

__all__ = ["Sample", "measure", "measure_passthrough", "write_seconds"]

#: Most bytes :func:`write_seconds` writes to time a disk (about one shard of 299² RGB patches).
WRITE_PROBE = 64 << 20


@dataclass(frozen=True)
class Sample:
    """What :func:`measure` found on a sample of a plan.

    Attributes
    ----------
    count
        Patches measured.
    patch_bytes
        Mean bytes of one encoded patch.
    per_tile, per_patch
        Wall-clock seconds per tile decode and per patch besides decoding
        (copies, resampling, scheduling), at the parallelism measured.
    encode
        Seconds to encode one patch on one thread.
    seconds
        Seconds the measurement took.
    details
        The raw figures (``extract_s``, ``decode_s``, ``encode_s``,
        ``tile_decodes``, ``tiles``).
    """

    count: int
    patch_bytes: float
    per_tile: float
    per_patch: float
    encode: float
    seconds: float
    details: dict[str, float]
    blobs: tuple[bytes, ...] = ()


def _sample_tiles(slides: Sequence[Slide], plan: PatchPlan) -> list[tuple[Slide, int, Any]]:
    """(slide, level, tiles) the sample plan touches, per source."""
    found = []
    for k in np.unique(plan.slide).tolist():
        mine = plan.slide == k
        tiles = touched_tiles(slides[k], plan.level_of(k), plan.y[mine], plan.x[mine],
                              plan.read_size(k))
        found.append((slides[k], plan.level_of(k), tiles))
    return found


def _time_decodes(tiles: list[tuple[Slide, int, Any]], workers: int) -> float:
    t0 = time.perf_counter()
    for slide, level, ids in tiles:
        decode_tiles(slide, level, ids, workers=workers)
    return time.perf_counter() - t0


def measure(slides: list[Slide], sample: PatchPlan, *, codec: Codec, workers: int,
            device: Device) -> Sample:
    """Extract, decode and encode ``sample`` (a few dozen patches of a plan) on ``workers``
    threads, and split its extraction time into a cost per tile decode and one per patch.

    The tiles are decoded once before (so every figure sees the file in the
    page cache) and once more alone, in a tight loop: that time per tile is the
    decode cost; what the extraction took beyond it, per patch, is the rest.
    """
    t_start = time.perf_counter()
    k = len(sample)
    block = max(1, math.ceil(k / workers))
    tiles = _sample_tiles(slides, sample)
    _time_decodes(tiles, workers)  # warm-up: file pages in the cache, buffers touched
    extract(slides, sample.rows(0, min(k, 2)), device=device, workers=1)
    t0 = time.perf_counter()
    patches = extract(slides, sample, device=device, workers=workers, block_size=block)
    t_extract = time.perf_counter() - t0
    t_decode = _time_decodes(tiles, workers)
    decodes = tile_decodes(slides, sample, shard_size=block)  # extract reads block by block
    unique = sum(len(ids) for _, _, ids in tiles)
    encode = encoder(codec, patches.dtype, patches.shape[-1])
    t0 = time.perf_counter()
    blobs = tuple(encode(patches[i]) for i in range(k))
    t_encode = time.perf_counter() - t0
    per_tile = t_decode / max(unique, 1)
    return Sample(
        count=k,
        patch_bytes=float(np.mean([len(b) for b in blobs])) if k else 0.0,
        per_tile=per_tile,
        per_patch=max(t_extract - per_tile * decodes, 0.0) / max(k, 1),
        encode=t_encode / max(k, 1),
        seconds=time.perf_counter() - t_start,
        details={"extract_s": t_extract, "decode_s": t_decode, "encode_s": t_encode,
                 "tile_decodes": float(decodes), "tiles": float(unique)},
        blobs=blobs,
    )


def measure_passthrough(slides: list[Slide], sample: PatchPlan) -> Sample:
    """Read the JPEG tiles of ``sample`` as stored (a plan that qualifies for tile
    pass-through, :func:`~gigapatch.engine.passthrough.check_passthrough`) on one thread.

    The sizes are exact for the sample: each chunk is the tile's own stream (shared tables
    spliced in) and its CRC32C. Nothing is decoded or encoded, so the only cost is per
    patch (reading and splicing); the tiles are read once before, to find the file's pages
    in the cache as :func:`measure` does.
    """
    t_start = time.perf_counter()
    k = len(sample)
    read_tiles(slides, sample)  # warm-up: the file's pages in the cache
    t0 = time.perf_counter()
    blobs, _ = read_tiles(slides, sample)
    t_read = time.perf_counter() - t0
    sizes = [len(b) + CHUNK_CRC_NBYTES for b in blobs]
    return Sample(
        count=k,
        patch_bytes=float(np.mean(sizes)) if k else 0.0,
        per_tile=0.0,
        per_patch=t_read / max(k, 1),
        encode=0.0,
        seconds=time.perf_counter() - t_start,
        details={"read_s": t_read, "tile_decodes": 0.0, "tiles": float(k)},
        blobs=tuple(blobs),
    )


def write_seconds(folder: str | os.PathLike[str], blobs: Sequence[bytes], nbytes: int, *,
                  sync: bool = True) -> float:
    """Seconds per byte this machine takes to write files in ``folder``.

    Writes ``blobs`` over and over into one hidden temporary file in
    ``folder`` (up to ``nbytes``, at most :data:`WRITE_PROBE`), synced to disk
    when ``sync``, as a shard file is; the file is deleted at once.
    """
    total = min(max(int(nbytes), 1), WRITE_PROBE)
    data = b"".join(blobs) or b"\0"
    reps = max(1, total // len(data))
    fd, name = tempfile.mkstemp(prefix=".gigapatch-estimate-", suffix=".tmp", dir=folder)
    try:
        t0 = time.perf_counter()
        with os.fdopen(fd, "wb") as fh:
            for _ in range(reps):
                fh.write(data)
            if sync:
                fh.flush()
                os.fsync(fh.fileno())
        return (time.perf_counter() - t0) / (reps * len(data))
    finally:
        Path(name).unlink(missing_ok=True)
