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
import numcodecs.blosc
import numpy as np
import zarr

import gigapatch
from gigapatch.feed import Preprocess
from gigapatch.store import ShardLayout, ShardReader

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script or imported
from feed_codecs import cached_store, run_codecs

HERE = Path(__file__).resolve().parent
# Blosc decodes on its own threads when called from a process's main thread (numcodecs'
# default): the rows measured on one core (and the checksums' ratio) must use one core.
numcodecs.blosc.use_threads = False


def make_store(n: int, size: int, slide_size: int) -> gigapatch.PatchStore:
    """The bench store (cached): ``n`` random ``size``² tissue patches of a synthetic slide."""
    return cached_store(f"feed-{n}-{size}-{slide_size}.zarr", n, size, slide_size)


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


def crc_cost(store: gigapatch.PatchStore, repeats: int) -> tuple[float, float]:
    """The CRC32C alone, as format 2 checks it: every stored ``images`` chunk (bytes without
    their 4-byte trailer, already in memory) through ``google_crc32c``. Return µs per patch
    and GB/s (best of ``repeats``): no checked read can cost less than the unchecked one plus
    this."""
    import google_crc32c

    layout = ShardLayout.of(store.images)
    assert layout is not None and layout.checksum
    chunks = []
    for shard in range(store.n_shards):
        fd = os.open(layout.path(shard), os.O_RDONLY)
        try:
            table = layout.checked_index(fd, shard)
            chunks += [np.frombuffer(os.pread(fd, int(nbytes) - 4, int(offset)), np.uint8)
                       for offset, nbytes in table.tolist()]
        finally:
            os.close(fd)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        for chunk in chunks:
            google_crc32c.value(chunk)
        best = min(best, time.perf_counter() - t)
    return best / len(chunks) * 1e6, sum(map(len, chunks)) / best / 1e9


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
    crc_us, crc_gbs = crc_cost(store, args.repeats)
    bound = 1 / (1 + crc_us * 1e-6 * plain)
    print(f"the CRC32C alone (google_crc32c, {crc_gbs:.1f} GB/s on this CPU) costs {crc_us:.1f} "
          f"µs per patch: checked reads cannot exceed {bound:.3f}x the unchecked ones here")
    codecs = run_codecs(args.codec_n, args.codec_size, args.slide_size, args.repeats)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "machine": platform.platform(), "cpus": os.cpu_count(), "python": sys.version.split()[0],
        "n": len(store), "size": args.size, "shard_size": store.shard_size,
        "codec": store.attrs.get("codec"), "checksum_ratio": checked / plain,
        "crc_us_per_patch": crc_us, "crc_gb_per_s": crc_gbs, "checksum_bound": bound,
        "results": rows,
        "codecs": codecs,
    }, indent=1))
    print(f"\nwrote {args.out}")
    return 0



# ------------------------------------------------------------------ zarrs vs the shard reader
# ``python bench/feed.py zarrs``: the zarrs codec pipeline (the ``zarrs`` extra) against
# gigapatch's own shard reader, for the feed's batch reads and PatchStore slicing, lz4 and
# zstd, and whether each reader refuses a damaged chunk. Self-contained: it shares only the
# cached bench data with the rest of this file. See docs/training.md, "Reading with zarrs".


def zarrs_store(n: int, size: int, slide_size: int, codec: str) -> gigapatch.PatchStore:
    """The bench store of ``codec`` (cached): ``n`` random ``size``² tissue patches."""
    suffix = "" if codec == "lz4" else "-" + codec
    return cached_store(f"feed-{n}-{size}-{slide_size}{suffix}.zarr", n, size, slide_size, codec)


def zarrs_direct(images: zarr.Array):
    """A read of any patches through zarrs' ``CodecPipelineImpl``, one ``ChunkItem`` per patch
    (what zarrs can do at best: no zarr-python indexing in the way)."""
    from zarrs._internal import ChunkItem, CodecPipelineImpl

    impl = CodecPipelineImpl(json.dumps(images.metadata.to_dict()), store_config=images.store,
                             validate_checksums=True)
    shard = int(images.shards[0])
    shape = list(images.shape[1:])
    whole = [slice(0, k) for k in shape]

    def read(indices: np.ndarray) -> np.ndarray:
        out = np.empty((len(indices), *shape), images.dtype)
        items = [
            ChunkItem(f"{images.path}/" + images.metadata.encode_chunk_key((i // shard, 0, 0, 0)),
                      [slice(i % shard, i % shard + 1), *whole], [shard, *shape],
                      [slice(r, r + 1), *whole], list(out.shape))
            for r, i in enumerate(indices.tolist())
        ]
        impl.retrieve_chunks_and_apply_index(items, out)
        return out
    return read


def zarr_api(images: zarr.Array):
    """A read through zarr-python's indexing (``z[a:b]``, else ``z.oindex`` of the sorted
    indices), with the codec pipeline it was opened with."""
    def read(indices: np.ndarray) -> np.ndarray:
        lo, hi = int(indices.min()), int(indices.max()) + 1
        if hi - lo == len(indices) and (np.diff(indices) == 1).all():
            return images[lo:hi]
        order = np.argsort(indices, kind="stable")
        out = np.empty((len(indices), *images.shape[1:]), images.dtype)
        out[order] = images.oindex[indices[order]]  # no repeats in these workloads
        return out
    return read


#: Workloads whose batches are not one contiguous range.
SCATTERED = ("feed shuffled, batches of 64", "store[64 random indices]")


def zarrs_workloads(store: gigapatch.PatchStore, rep: int, rng) -> dict[str, list[np.ndarray]]:
    """Batches of store indices: the feed's (64 at a time, as ``ShardIterableDataset`` cuts
    its epoch order) and PatchStore slicing's."""
    from gigapatch.feed.sampling import epoch_groups

    n, per = len(store), store.shard_size
    shuffled = np.concatenate(epoch_groups(np.arange(n), per, seed=1, epoch=rep))
    return {
        "feed shuffled, batches of 64": [shuffled[k:k + 64] for k in range(0, n, 64)],
        "feed sequential, batches of 64": [np.arange(k, min(n, k + 64)) for k in range(0, n, 64)],
        "store[a:a+64], random a": [np.arange(a, a + 64) for a in rng.integers(0, n - 64, n // 64)],
        "store.shard(i), whole shards": [np.arange(k, min(n, k + per)) for k in range(0, n, per)],
        "store[64 random indices]": [np.sort(rng.choice(n, 64, replace=False))
                                     for _ in range(n // 64)],
    }


def damage_probe(codecs: list[str], trials: int = 25) -> dict:
    """Flip one random bit of a shard's chunk bytes ``trials`` times; count, for each reader,
    reads of the whole shard and of part of it (7 of its 8 patches) that raised, returned
    the right pixels (the flip hit a patch not read), or returned WRONG pixels."""
    import tempfile

    found: dict[str, dict[str, list[int]]] = {}
    image = np.random.default_rng(0).integers(0, 256, (160, 200, 3), dtype=np.uint8)
    plan = gigapatch.grid(image, 32, stride=24)
    with tempfile.TemporaryDirectory() as tmp:
        for codec in codecs:
            out = Path(tmp) / f"{codec}.zarr"
            store = gigapatch.extract_to_zarr(image, plan, out, shard_size=8, codec=codec,
                                              workers=1)
            truth = store[8:16]
            path = store.layout.path(1)
            raw = path.read_bytes()
            rng = np.random.default_rng(7)
            for _ in range(trials):
                flipped = bytearray(raw)
                flipped[int(rng.integers(0, len(raw) - store.layout.index_nbytes))] ^= (
                    1 << int(rng.integers(0, 8)))
                path.write_bytes(bytes(flipped))
                with zarr.config.set({"codec_pipeline.path": "zarrs.ZarrsCodecPipeline"}):
                    zarrs_images = zarr.open_array(out / "images", mode="r")
                readers = {
                    "gigapatch": gigapatch.PatchStore(out).reader.read,
                    "zarr-python": zarr_api(zarr.open_array(out / "images", mode="r")),
                    "zarrs, zarr API": zarr_api(zarrs_images),
                    "zarrs, direct": zarrs_direct(gigapatch.PatchStore(out).images),
                }
                for name, read in readers.items():
                    for part, rows in (("whole shard", np.arange(8, 16)),
                                       ("7 of 8", np.arange(8, 15))):
                        counts = found.setdefault(f"{codec}: {name}, {part}", [0, 0, 0])
                        try:
                            got = read(rows)
                        except Exception:
                            counts[0] += 1
                            continue
                        counts[1 if np.array_equal(got, truth[rows - 8]) else 2] += 1
            path.write_bytes(raw)
    return {"trials": trials, "counts": found}


def fork_probe(store: gigapatch.PatchStore, wait: int = 10) -> str:
    """Whether a process forked after zarrs started (as DataLoader workers are on Linux) can
    still read through zarrs: the child gets ``wait`` seconds."""
    import signal

    read = zarrs_direct(store.images)
    read(np.arange(4))
    pid = os.fork()
    if pid == 0:  # the child: a fresh pipeline, one read
        signal.alarm(wait)
        zarrs_direct(store.images)(np.arange(4))
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return f"hung (killed after {wait} s)"
    return "read" if os.WEXITSTATUS(status) == 0 else f"failed (exit {os.WEXITSTATUS(status)})"


def zarrs_main(argv: list[str] | None = None) -> int:
    """``python bench/feed.py zarrs``: zarrs against the shard reader (see the section note)."""
    parser = argparse.ArgumentParser(prog="bench/feed.py zarrs",
                                     description="zarrs codec pipeline vs gigapatch's reader")
    parser.add_argument("--n", type=int, default=4096, help="patches in each store")
    parser.add_argument("--size", type=int, default=256, help="patch side")
    parser.add_argument("--slide-size", type=int, default=8192)
    parser.add_argument("--codecs", default="lz4,zstd")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--slow-n", type=int, default=512,
                        help="patches read per workload by zarr-python's own pipeline (slow)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "feed-zarrs.json")
    args = parser.parse_args(argv)
    import zarrs

    codecs = args.codecs.split(",")
    print(f"zarrs {zarrs.__version__}, zarr {zarr.__version__}; {os.cpu_count()} CPUs", flush=True)
    damage = damage_probe(codecs)
    print(f"\ndamaged chunk: one bit flipped in a shard's chunk bytes, {damage['trials']} trials;"
          " reads of the whole shard and of 7 of its 8 patches\n")
    print("| codec: reader, read | raised | right pixels | WRONG pixels |\n|---|---|---|---|")
    for name, (raised, right, wrong) in damage["counts"].items():
        print(f"| {name} | {raised} | {right} | {wrong} |")
    rows: dict[str, dict] = {}
    forked = fork_probe(zarrs_store(args.n, args.size, args.slide_size, codecs[0]))
    print(f"\na read through zarrs in a process forked after zarrs started: {forked}")
    for codec in codecs:
        store = zarrs_store(args.n, args.size, args.slide_size, codec)
        with zarr.config.set({"codec_pipeline.path": "zarrs.ZarrsCodecPipeline"}):
            zarrs_images = zarr.open_array(store.path / "images", mode="r")
        fresh = gigapatch.PatchStore(store.path)
        readers = {
            "gigapatch (PatchStore)": lambda rows, s=fresh: s[rows],
            "zarrs, direct ChunkItems": zarrs_direct(store.images),
            "zarrs, zarr API": zarr_api(zarrs_images),
            "zarr-python default": zarr_api(zarr.open_array(store.path / "images", mode="r")),
        }
        probe = np.array([5, 300, 7, 4000 % len(store)])
        for name, read in readers.items():  # same pixels, warm page cache
            assert np.array_equal(read(np.sort(probe)), store.reader.read(np.sort(probe))), name
            for k in range(store.n_shards):
                read(np.arange(k * store.shard_size, min(len(store), (k + 1) * store.shard_size)))
        rng = np.random.default_rng(0)
        times: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for rep in range(args.repeats):
            for work, batches in zarrs_workloads(store, rep, rng).items():
                names = list(readers)
                names = names[rep % len(names):] + names[:rep % len(names)]  # rotate who's first
                for name in names:
                    todo = batches
                    if name == "zarr-python default" or (
                            name == "zarrs, zarr API" and work in SCATTERED):
                        # zarr-python's own pipeline (zarrs hands it z.oindex): a sample
                        todo, count = [], 0
                        for b in batches:
                            if count >= args.slow_n:
                                break
                            todo.append(b)
                            count += len(b)
                    t, c = time.perf_counter(), time.process_time()
                    for batch in todo:
                        readers[name](batch)
                    count = sum(map(len, todo))
                    times.setdefault((work, name), []).append(
                        (count / (time.perf_counter() - t), count / (time.process_time() - c)))
            print(f"{codec}: repeat {rep + 1}/{args.repeats} done", flush=True)
        print(f"\n{codec}, {len(store)} patches of {args.size}², {store.shard_size} per shard: "
              "patches/s (wall) best / median, min/max spread, per CPU-second (all threads) "
              "median, medians as × gigapatch\n")
        print("| workload | reader | best | median | spread | per CPU-s | × gigapatch wall | "
              "× gigapatch per CPU-s |\n|---|---|---|---|---|---|---|---|")
        for (work, name), values in times.items():
            wall = [w for w, _ in values]
            cpu = [c for _, c in values]
            own = times[(work, "gigapatch (PatchStore)")]
            own_wall = statistics.median(w for w, _ in own)
            own_cpu = statistics.median(c for _, c in own)
            med, med_cpu = statistics.median(wall), statistics.median(cpu)
            rows[f"{codec}: {work}: {name}"] = {"best": max(wall), "median": med,
                                                "per_cpu_s": med_cpu, "all": values}
            print(f"| {work} | {name} | {max(wall):,.0f} | {med:,.0f} | "
                  f"{max(wall) / min(wall):.2f}× | {med_cpu:,.0f} | {med / own_wall:.2f}× | "
                  f"{med_cpu / own_cpu:.2f}× |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "machine": platform.platform(), "cpus": os.cpu_count(), "python": sys.version.split()[0],
        "zarrs": zarrs.__version__, "zarr": zarr.__version__, "n": args.n, "size": args.size,
        "damage": damage, "fork": forked, "results": rows,
    }, indent=1, default=str))
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(zarrs_main(sys.argv[2:]) if sys.argv[1:2] == ["zarrs"] else main())
