"""Region-read throughput: gigapatch's Slide.read vs tiffslide, OpenSlide and the decode limit.

Run as a script (``python bench/read.py``). On a synthetic slide made by
gigapatch's own generator (32768² by default, cached under ``bench/data``),
for reads of 256², 299² and 1024² pixels at the same seeded random level-0
positions, one read at a time on one thread, it times, each ``--repeats``
times in one run:

* ``gigapatch``: ``Slide.read``, a new array per read, and ``gigapatch out=``:
  the same reads into one reused array (no fresh memory to touch);
* ``tiffslide``: ``TiffSlide.read_region(..., as_array=True)``;
* ``openslide``: ``OpenSlide.read_region`` (RGBA PIL image, as users get it);
* ``decode limit``: decoding the tiles each read touches, from bytes already
  in memory, into a reused buffer — the codec's time alone, which no reader
  can beat on one thread.

Every repeat uses fresh random positions (the same for every reader), so no
reader's tile cache helps it; the readers run interleaved within each repeat,
and the order rotates from repeat to repeat (on this machine the first loop of
a round runs up to 1.7x slower, whoever it is), so machine noise hits them
alike.

It prints best and median MP/s (and reads/s), and each reader's median time
as a ratio to tiffslide's and to the decode limit's, and writes JSON.
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
import tifffile

import gigapatch
from gigapatch.synth import synthesize

HERE = Path(__file__).resolve().parent


def _decode_limit_fn(path: Path, positions: list[tuple[int, int]], size: int):
    """A function that decodes, for every read, the level-0 tiles it touches."""
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        th, tw, w = page.tilelength, page.tilewidth, page.imagewidth
        offsets, counts, tables = page.dataoffsets, page.databytecounts, page.jpegtables
        across = -(-w // tw)
        with open(path, "rb") as fh:
            blobs = {}
            jobs = []
            for y, x in positions:
                job = []
                for ty in range(y // th, (y + size - 1) // th + 1):
                    for tx in range(x // tw, (x + size - 1) // tw + 1):
                        i = ty * across + tx
                        if i not in blobs:
                            blobs[i] = os.pread(fh.fileno(), counts[i], offsets[i])
                        job.append(blobs[i])
                jobs.append(job)
    buf = np.empty((th, tw, 3), np.uint8)

    def run() -> None:
        for job in jobs:
            for blob in job:
                imagecodecs.jpeg_decode(blob, tables=tables, outcolorspace=2, out=buf)

    tiles = sum(len(j) for j in jobs)
    return run, tiles


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=32768, help="synthetic slide side")
    ap.add_argument("--reads", type=int, default=300, help="reads per region size")
    ap.add_argument("--regions", type=int, nargs="+", default=[256, 299, 1024])
    ap.add_argument("--repeats", type=int, default=5, help="passes (each reader goes first once)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=HERE / "results" / "read.json")
    args = ap.parse_args(argv)

    data = HERE / "data"
    data.mkdir(exist_ok=True)
    path = data / f"synthetic-{args.size}.svs"
    if not path.exists():
        print(f"making {path} (once) ...", flush=True)
        synthesize(path, args.size, seed=0)
    slide = gigapatch.open(path)
    import openslide
    import tiffslide

    ts = tiffslide.TiffSlide(path)
    osr = openslide.OpenSlide(str(path))
    h0, w0 = slide.shape
    results: dict[str, dict] = {}
    print(f"slide {path.name} {h0}x{w0}, {args.reads} random reads per size, one thread, "
          f"best/median of {args.repeats}\n")
    header = (f"{'size':>6} {'reader':<14} {'best MP/s':>10} {'median MP/s':>12} "
              f"{'reads/s':>9} {'vs tiffslide':>13} {'vs limit':>9}")
    print(header)
    with open(path, "rb") as fh:  # the page cache holds the file for every reader alike
        while fh.read(1 << 24):
            pass
    for size in args.regions:
        # fresh positions for every repeat, so no reader's tile cache helps it
        passes = []
        for r in range(args.repeats + 1):
            rng = np.random.default_rng([args.seed, size, r])
            ys = rng.integers(0, h0 - size, args.reads).tolist()
            xs = rng.integers(0, w0 - size, args.reads).tolist()
            passes.append(list(zip(ys, xs, strict=True)))
        for y, x in passes[0][:5]:  # correctness first: the same pixels from every reader
            ours = slide.read(y, x, size, size)
            assert np.array_equal(ours, ts.read_region((x, y), 0, (size, size), as_array=True))
            theirs = np.asarray(osr.read_region((x, y), 0, (size, size)).convert("RGB"))
            assert np.array_equal(ours, theirs)
        buf = np.empty((size, size, 3), np.uint8)
        readers = {
            "gigapatch": lambda pos, size=size: [slide.read(y, x, size, size) for y, x in pos],
            "gigapatch out=": lambda pos, size=size, buf=buf: [
                slide.read(y, x, size, size, out=buf) for y, x in pos],
            "tiffslide": lambda pos, size=size: [
                ts.read_region((x, y), 0, (size, size), as_array=True) for y, x in pos],
            "openslide": lambda pos, size=size: [
                osr.read_region((x, y), 0, (size, size)) for y, x in pos],
        }
        times: dict[str, list[float]] = {name: [] for name in [*readers, "decode limit"]}
        tiles = 0
        for k, pos in enumerate(passes):
            limit_fn, tiles = _decode_limit_fn(path, pos, size)
            order = [*readers.items(), ("decode limit", lambda _pos, f=limit_fn: f())]
            # the first loop after a pause runs slower on this machine: rotate who goes first
            order = order[k % len(order):] + order[: k % len(order)]
            for name, fn in order:
                t0 = time.perf_counter()
                fn(pos)
                if k:  # pass 0 warms every reader up
                    times[name].append(time.perf_counter() - t0)
        row = {}
        for name, ts_ in times.items():
            mp = [args.reads * size * size / t / 1e6 for t in ts_]
            # ratios of medians over the rotated passes
            vs_ts = [statistics.median(times["tiffslide"]) / statistics.median(ts_)]
            vs_limit = [statistics.median(times["decode limit"]) / statistics.median(ts_)]
            row[name] = {"best_mps": max(mp), "median_mps": statistics.median(mp),
                         "best_reads_per_s": args.reads / min(ts_), "seconds": ts_,
                         "vs_tiffslide_median": statistics.median(vs_ts),
                         "vs_limit_median": statistics.median(vs_limit)}
        row["tiles_decoded_per_pass"] = tiles
        results[str(size)] = row
        for name in times:
            r = row[name]
            print(f"{size:>6} {name:<14} {r['best_mps']:10.1f} {r['median_mps']:12.1f} "
                  f"{r['best_reads_per_s']:9.0f} {r['vs_tiffslide_median']:12.2f}x "
                  f"{r['vs_limit_median']:8.2f}x")
    ts.close()
    osr.close()
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "bench": "read", "slide": str(path), "size": args.size, "reads": args.reads,
        "repeats": args.repeats, "machine": {"cpus": os.cpu_count(),
                                             "python": sys.version.split()[0],
                                             "platform": platform.platform()},
        "results": results,
    }, indent=2))
    print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
