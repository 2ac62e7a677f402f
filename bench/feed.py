"""Feed throughput: patches/s delivered to training, vs zarr per-patch reads and a PNG folder.

Run as a script (``python bench/feed.py``; needs the ``torch`` extra). On a
store of ``--n`` random 256² tissue patches of a synthetic slide (made once,
cached under ``bench/data``; Blosc-LZ4, 256 patches per shard, as
``extract_to_zarr`` writes by default), it times whole shuffled epochs:

* ``zarr z[i]``: ``store.images[i]`` in a random order, one patch per call
  (the per-patch baseline; ``--baseline-n`` patches);
* ``png folder``: one PNG file per patch read and decoded (imagecodecs) in a
  random order, as an image-folder dataset does (``--baseline-n`` patches);
* ``iterable uint8`` / ``iterable xception f32``: ``ShardIterableDataset``
  batches of 64 (shuffle buffer of 2 shards), raw or through ``Preprocess``
  (``xception``: float32 in [-1, 1], HWC), with ``DataLoader(num_workers=0)``
  (one core) and ``num_workers=2`` (worker start-up included);
* ``map+ShardSampler uint8``: ``PatchDataset`` with ``ShardSampler``,
  batches of 64, one core;
* ``checksums``: the cost of format 2's integrity checks on the feed's fast
  path — a shuffled epoch read shard by shard (as the iterable dataset reads)
  through a fresh ``PatchStore`` (every chunk's CRC32C and each shard's digest
  checked) against the same patches in a copy of ``images`` written without
  the ``crc32c`` codec, read by the same shard reader (cached next to the
  store).

Each is run ``--repeats`` times, interleaved; it prints best and median
patches/s and the ratio of medians to ``zarr z[i]``, and writes JSON to
``bench/results/feed.json``.

Then the codec comparison (``bench/feed_codecs.py``; ``--only-codecs`` runs
it alone): store sizes per codec (lz4, zstd, zstd-3, none, jpeg:90, jpeg:95)
on the same ``--codec-n`` patches of ``--codec-size``², and lossless vs JPEG
store reads, sequential and shuffled, per core and on the reader's threads.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import imagecodecs
import numpy as np
import zarr

import gigapatch
from gigapatch.feed import Preprocess
from gigapatch.store import ShardLayout, ShardReader

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script or imported
from feed_codecs import run_codecs

HERE = Path(__file__).resolve().parent


def make_store(n: int, size: int, slide_size: int) -> gigapatch.PatchStore:
    """The bench store (cached): ``n`` random ``size``² tissue patches of a synthetic slide."""
    data = HERE / "data"
    data.mkdir(exist_ok=True)
    path = data / f"feed-{n}-{size}-{slide_size}.zarr"
    if path.exists():
        store = gigapatch.PatchStore(path)
        if store.complete and store.checksummed:  # a store of format 1 is made again
            return store
    slide = data / f"feed-slide-{slide_size}.svs"
    if not slide.exists():
        gigapatch.synthesize(slide, slide_size, seed=0, mpp=0.5)
    plan = gigapatch.random(slide, size, n, seed=0, min_tissue=0.5)
    return gigapatch.extract_to_zarr(slide, plan, path, overwrite=True, labels=[0])


def make_png_folder(store: gigapatch.PatchStore, n: int) -> list[Path]:
    """The first ``n`` patches as PNG files (cached), the image-folder baseline."""
    folder = store.path.with_suffix(".png")
    folder.mkdir(exist_ok=True)
    paths = [folder / f"{i:06d}.png" for i in range(n)]
    for i, path in enumerate(paths):
        if not path.exists():
            path.write_bytes(imagecodecs.png_encode(store.images[i], level=1))
    return paths


def unchecked_copy(store: gigapatch.PatchStore) -> zarr.Array:
    """``images`` of ``store`` again, laid out the same but without the ``crc32c`` codec
    (cached): the baseline of the checksums' cost."""
    path = store.path.with_name(store.path.stem + "-nocrc.zarr")
    images = store.images
    sharding = images.metadata.codecs[0]
    inner = [c for c in sharding.codecs[1:] if type(c).__name__ != "Crc32cCodec"]
    if path.exists():
        return zarr.open_array(path, mode="r")
    copy = zarr.create_array(path, shape=images.shape, dtype=images.dtype, chunks=images.chunks,
                             shards=images.shards, compressors=inner or None, fill_value=0)
    layout = ShardLayout.of(copy)
    assert layout is not None and not layout.checksum
    for i in range(store.n_shards):
        layout.write(i, store.shard(i))
    return copy


def time_epoch(read, n: int, per_shard: int, rng) -> float:
    """A shuffled epoch, shard by shard in random order, each shard's patches shuffled."""
    t = time.perf_counter()
    for shard in rng.permutation(-(-n // per_shard)):
        rows = np.arange(shard * per_shard, min(n, (shard + 1) * per_shard))
        read(rng.permutation(rows))
    return n / (time.perf_counter() - t)


def time_zarr(store, n: int, rng) -> float:
    order = rng.permutation(len(store))[:n].tolist()
    t = time.perf_counter()
    for i in order:
        store.images[i]
    return n / (time.perf_counter() - t)


def time_png(paths: list[Path], rng) -> float:
    order = rng.permutation(len(paths)).tolist()
    t = time.perf_counter()
    for i in order:
        imagecodecs.png_decode(paths[i].read_bytes())
    return len(paths) / (time.perf_counter() - t)


def time_loader(loader) -> float:
    t, count = time.perf_counter(), 0
    for batch in loader:
        count += len(batch[0])
    return count / (time.perf_counter() - t)


def runners(store, args):
    from torch.utils.data import DataLoader

    from gigapatch.feed.torch import PatchDataset, ShardIterableDataset, ShardSampler

    xception = Preprocess(normalize="xception")
    state = {"epoch": 0}

    def iterable(prep, workers):
        def run():
            data = ShardIterableDataset(store, 64, seed=1, preprocess=prep)
            data.set_epoch(state["epoch"])
            return time_loader(DataLoader(data, batch_size=None, num_workers=workers))
        return run

    def mapped():
        data = PatchDataset(store)
        sampler = ShardSampler(data, seed=1)
        sampler.set_epoch(state["epoch"])
        return time_loader(DataLoader(data, batch_size=64, sampler=sampler))

    return state, {
        "iterable uint8, 1 core": iterable(None, 0),
        "iterable xception f32, 1 core": iterable(xception, 0),
        "iterable uint8, 2 workers": iterable(None, 2),
        "iterable xception f32, 2 workers": iterable(xception, 2),
        "map+ShardSampler uint8, 1 core": mapped,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4096, help="patches in the store")
    parser.add_argument("--size", type=int, default=256, help="patch side")
    parser.add_argument("--slide-size", type=int, default=8192)
    parser.add_argument("--baseline-n", type=int, default=1000,
                        help="patches read by the per-patch baselines")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "feed.json")
    parser.add_argument("--codec-n", type=int, default=1024,
                        help="patches per store of the codec comparison")
    parser.add_argument("--codec-size", type=int, default=299,
                        help="patch side of the codec comparison")
    parser.add_argument("--only-codecs", action="store_true",
                        help="run the codec comparison alone")
    args = parser.parse_args(argv)
    if args.only_codecs:
        codecs = run_codecs(args.codec_n, args.codec_size, args.slide_size, args.repeats)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"machine": platform.platform(), "cpus": os.cpu_count(),
                                        "codecs": codecs}, indent=1))
        print(f"\nwrote {args.out}")
        return 0
    store = make_store(args.n, args.size, args.slide_size)
    pngs = make_png_folder(store, min(args.baseline_n, len(store)))
    print(f"{store}; {len(pngs)} PNG files; {os.cpu_count()} CPUs", flush=True)
    rng = np.random.default_rng(0)
    state, loaders = runners(store, args)
    copy = unchecked_copy(store)
    results: dict[str, list[float]] = {"zarr z[i]": [], "png folder": [],
                                       "shard reader, no checksums": [],
                                       "shard reader, format 2 (CRC32C + digests)": []}
    results.update({name: [] for name in loaders})
    n, per_shard = len(store), store.shard_size
    for rep in range(args.repeats):
        state["epoch"] = rep
        results["zarr z[i]"].append(time_zarr(store, min(args.baseline_n, len(store)), rng))
        results["png folder"].append(time_png(pngs, rng))
        for _ in range(2):  # interleaved, twice each: the ratio is what counts
            results["shard reader, no checksums"].append(
                time_epoch(ShardReader(copy).read, n, per_shard, rng))
            results["shard reader, format 2 (CRC32C + digests)"].append(
                time_epoch(gigapatch.PatchStore(store.path).reader.read, n, per_shard, rng))
        for name, run in loaders.items():
            results[name].append(run())
        print(f"repeat {rep + 1}/{args.repeats} done", flush=True)
    base = statistics.median(results["zarr z[i]"])
    print(f"\n{args.size}² patches, shuffled order, patches/s: best (median), ratio of medians "
          "to zarr z[i]\n")
    print("| reader | best | median | × zarr z[i] |\n|---|---|---|---|")
    rows = {}
    for name, values in results.items():
        best, med = max(values), statistics.median(values)
        rows[name] = {"best": best, "median": med, "ratio": med / base, "all": values}
        print(f"| {name} | {best:,.0f} | {med:,.0f} | {med / base:.2f}× |")
    checked = statistics.median(results["shard reader, format 2 (CRC32C + digests)"])
    plain = statistics.median(results["shard reader, no checksums"])
    print(f"\nchecksums: format 2 reads at {checked / plain:.3f}x the speed of the same shards "
          f"without crc32c ({100 * (1 - checked / plain):.1f} % slower; target: within 10 %)")
    codecs = run_codecs(args.codec_n, args.codec_size, args.slide_size, args.repeats)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "machine": platform.platform(), "cpus": os.cpu_count(), "python": sys.version.split()[0],
        "n": len(store), "size": args.size, "shard_size": store.shard_size,
        "codec": store.attrs.get("codec"), "checksum_ratio": checked / plain, "results": rows,
        "codecs": codecs,
    }, indent=1))
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
