"""The codec comparison of ``bench/feed.py``: store sizes per codec and lossless vs JPEG reads.

The same ``--codec-n`` random ``--codec-size``² tissue patches of the bench's
synthetic slide (its tiles are JPEG q85: decoded JPEG tissue, as from a
scanner) are extracted into one store per codec (cached under
``bench/data``). For each codec it reports the bytes of ``images`` per patch,
the ratio to the default ``lz4``, the PSNR a JPEG store recorded, and the
encode rate of one core (the store's own encoder on the patches in memory).
For ``lz4``, ``zstd-3``, ``jpeg:90`` and ``jpeg:95`` it times epochs read
through the store's shard reader: ``sequential`` (shard after shard, in
order) and ``shuffled`` (shards in random order, each shard's patches
shuffled), on one thread (``per core``) and with the reader's thread pool
(``N threads``, JPEG only: lossless chunks decode on the calling thread).
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

import gigapatch
from gigapatch.engine.sizing import encoder
from gigapatch.store.shardreader import default_threads

HERE = Path(__file__).resolve().parent
SIZES = ("lz4", "zstd", "zstd-3", "none", "jpeg:90", "jpeg:95")
READS = ("lz4", "zstd-3", "jpeg:90", "jpeg:95")


def cached_store(name: str, n: int, size: int, slide_size: int,
                 codec: str = "lz4") -> gigapatch.PatchStore:
    """The bench store ``bench/data/NAME`` (cached while complete, checksummed and of
    ``codec``): ``n`` random ``size``² tissue patches (seed 0) of the synthetic slide."""
    data = HERE / "data"
    data.mkdir(exist_ok=True)
    path = data / name
    if path.exists():
        store = gigapatch.PatchStore(path)
        if store.complete and store.checksummed and store.attrs.get("codec") == codec:
            return store  # a store of format 1 or another codec is made again
    slide = data / f"feed-slide-{slide_size}.svs"
    if not slide.exists():
        gigapatch.synthesize(slide, slide_size, seed=0, mpp=0.5)
    plan = gigapatch.random(slide, size, n, seed=0, min_tissue=0.5)
    return gigapatch.extract_to_zarr(slide, plan, path, overwrite=True, labels=[0], codec=codec)


def codec_store(codec: str, n: int, size: int, slide_size: int) -> gigapatch.PatchStore:
    """The store of ``codec`` (cached): ``n`` random ``size``² tissue patches, seed 0."""
    return cached_store(f"codec-{codec.replace(':', '')}-{n}-{size}-{slide_size}.zarr", n, size,
                        slide_size, codec)


def images_bytes(store: gigapatch.PatchStore) -> int:
    """Bytes of the shard files of ``images``."""
    root = store.path / "images"
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and p.name != "zarr.json")


def encode_rate(store: gigapatch.PatchStore, patches: np.ndarray) -> float:
    """Patches per second one core encodes with the store's codec."""
    encode = encoder(store.attrs["codec"], patches.dtype, patches.shape[-1])
    t = time.perf_counter()
    for patch in patches:
        encode(patch)
    return len(patches) / (time.perf_counter() - t)


def epoch(store: gigapatch.PatchStore, threads: int, shuffled: bool, rng: Any) -> float:
    """Patches per second of one epoch read shard by shard through a fresh reader."""
    reader = gigapatch.PatchStore(store.path).reader
    n, per_shard = len(store), store.shard_size
    shards = rng.permutation(store.n_shards) if shuffled else range(store.n_shards)
    out = np.empty((per_shard, *store.patch_shape), np.uint8)
    t = time.perf_counter()
    for shard in shards:
        rows = np.arange(shard * per_shard, min(n, (shard + 1) * per_shard))
        reader.read(rng.permutation(rows) if shuffled else rows, out[: len(rows)],
                    threads=threads)
    return n / (time.perf_counter() - t)


def run_codecs(n: int, size: int, slide_size: int, repeats: int) -> dict[str, Any]:
    """Print the two tables; return them for the JSON."""
    stores = {codec: codec_store(codec, n, size, slide_size) for codec in SIZES}
    patches = stores["none"][:]
    lz4 = images_bytes(stores["lz4"])
    sizes: dict[str, Any] = {}
    print(f"\nstore sizes per codec: the same {len(patches)} random {size}² tissue patches\n")
    print("| codec | kB per patch | × smaller than lz4 | PSNR dB (sample) | encode/s, 1 core |")
    print("|---|---|---|---|---|")
    for codec, store in stores.items():
        nbytes = images_bytes(store)
        rate = statistics.median(encode_rate(store, patches[:200]) for _ in range(repeats))
        psnr = store.attrs.get("psnr_db")
        sizes[codec] = {"bytes": nbytes, "per_patch": nbytes / len(store),
                        "ratio_to_lz4": lz4 / nbytes, "psnr_db": psnr, "encode_per_s": rate}
        print(f"| {codec} | {nbytes / len(store) / 1000:.1f} | {lz4 / nbytes:.2f}× | "
              f"{'lossless' if psnr is None and 'jpeg' not in codec else psnr} | {rate:,.0f} |")
    threads = default_threads()
    rng = np.random.default_rng(0)
    runs = {(codec, order, t): [] for codec in READS for order in ("sequential", "shuffled")
            for t in sorted({1, threads}) if t == 1 or "jpeg" in codec}
    for _ in range(repeats):  # interleaved
        for codec, order, t in runs:
            runs[(codec, order, t)].append(epoch(stores[codec], t, order == "shuffled", rng))
    print(f"\nreads of {size}² patches, patches/s, median of {repeats} (best); "
          f"{os.cpu_count()} CPUs\n")
    print("| store | order | threads | patches/s | per core |\n|---|---|---|---|---|")
    reads = {}
    for (codec, order, t), values in runs.items():
        med = statistics.median(values)
        reads[f"{codec}, {order}, {t} threads"] = {"median": med, "best": max(values),
                                                   "per_core": med / t, "all": values}
        print(f"| {codec} | {order} | {t} | {med:,.0f} ({max(values):,.0f}) | {med / t:,.0f} |")
    jpeg = statistics.median(runs[("jpeg:90", "shuffled", 1)])
    ratio = sizes["jpeg:90"]["ratio_to_lz4"]
    print(f"\ntargets: jpeg:90 {ratio:.1f}× smaller than lz4 (target ≥ 8×); jpeg:90 shuffled "
          f"{jpeg:,.0f} patches/s per core (target ≥ 2,000 of 299²)")
    return {"n": len(patches), "size": size, "sizes": sizes, "reads": reads}
