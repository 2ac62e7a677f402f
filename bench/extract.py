"""Grid extraction throughput: gigapatch vs read_region loops vs the JPEG decode limit.

Run as a script (``python bench/extract.py``). On a synthetic slide made by
gigapatch's own generator (32768² by default, cached under ``bench/data``), it
times, in one run and each ``--repeats`` times:

* ``extract_to_zarr``: the whole job, patches into a Zarr v3 store;
* ``extract``: the same patches into memory (no encoding, no disk);
* a tiffslide ``read_region`` loop and an OpenSlide ``read_region`` loop over
  the first ``--sample`` patches of the same plan (what users write today);
* the decode limit: decoding every tile the plan touches, once, from bytes
  already in memory, on ``--workers`` threads — no tool can read faster.

It prints best and median patches/s and ratios against tiffslide and the
decode limit, and writes the figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import imagecodecs
import numpy as np

import gigapatch
from gigapatch.synth import synthesize

HERE = Path(__file__).resolve().parent


def _timed(fn, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def _touched_tiles(slide: gigapatch.Slide, plan: gigapatch.PatchPlan) -> list[int]:
    """Indices of the level tiles the plan's patches touch (each once)."""
    lvl = slide.levels[plan.level]
    (th, tw), lw, (dy, dx) = lvl.tile, lvl.shape[1], lvl.downsample
    across = -(-lw // tw)
    h, w = plan.size
    tiles = set()
    for y, x in zip(np.rint(plan.y / dy).astype(int), np.rint(plan.x / dx).astype(int),
                    strict=True):
        for ty in range(y // th, (y + h - 1) // th + 1):
            for tx in range(x // tw, (x + w - 1) // tw + 1):
                tiles.add(ty * across + tx)
    return sorted(tiles)


def decode_limit(path: Path, level: int, tiles: list[int], workers: int, repeats: int):
    """Seconds to decode ``tiles`` once from in-memory bytes on ``workers`` threads."""
    import tifffile

    with tifffile.TiffFile(path) as tif:
        page = tif.series[0].levels[level].keyframe
        offsets, counts = page.dataoffsets, page.databytecounts
        with open(path, "rb") as fh:
            blobs = [os.pread(fh.fileno(), counts[i], offsets[i]) for i in tiles]
    outs = [np.empty((page.tilelength, page.tilewidth, 3), np.uint8) for _ in range(workers)]

    def run(k: int) -> None:
        for blob in blobs[k::workers]:
            imagecodecs.jpeg8_decode(blob, out=outs[k])

    def all_threads() -> None:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(run, range(workers)))

    return _timed(all_threads, repeats)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=32768, help="synthetic slide side")
    ap.add_argument("--patch", type=int, default=256)
    ap.add_argument("--stride", type=int, default=None)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sample", type=int, default=2000, help="patches for read_region loops")
    ap.add_argument("--codec", default="zstd")
    ap.add_argument("--json", type=Path, default=HERE / "results" / "extract.json")
    args = ap.parse_args(argv)

    data = HERE / "data"
    data.mkdir(exist_ok=True)
    slide_path = data / f"synthetic-{args.size}.svs"
    if not slide_path.exists():
        print(f"making {slide_path} (once) ...", flush=True)
        synthesize(slide_path, args.size, seed=0)
    slide = gigapatch.open(slide_path)
    plan = gigapatch.grid(slide, args.patch, args.stride)
    n = len(plan)
    sample = min(args.sample, n)
    print(f"slide {slide_path.name} {slide.shape[0]}x{slide.shape[1]}, plan: {n} patches of "
          f"{args.patch}², workers {args.workers}, repeats {args.repeats}", flush=True)

    rows: dict[str, dict] = {}

    def record(name: str, times: list[float], patches: int) -> None:
        rates = [patches / t for t in times]
        rows[name] = {"best": max(rates), "median": statistics.median(rates), "patches": patches,
                      "seconds": times}
        print(f"  {name:<34} best {max(rates):8,.0f}/s  median {statistics.median(rates):8,.0f}/s",
              flush=True)

    tmp = Path(tempfile.mkdtemp(prefix="gigapatch-bench-"))
    try:
        out = tmp / "p.zarr"
        record("gigapatch extract_to_zarr", _timed(lambda: gigapatch.extract_to_zarr(
            slide, plan, out, overwrite=True, workers=args.workers, codec=args.codec),
            args.repeats), n)
        # correctness on the big slide: a sample of the store equals a direct read
        store = gigapatch.PatchStore(out)
        for i in np.random.default_rng(0).choice(n, size=min(20, n), replace=False):
            y, x = store.coords[i]
            assert np.array_equal(store[int(i)], slide.read(int(y), int(x), *plan.size))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    record("gigapatch extract (memory)", _timed(
        lambda: gigapatch.extract(slide, plan, workers=args.workers), args.repeats), n)

    h, w = plan.size
    ys, xs = plan.y[:sample].tolist(), plan.x[:sample].tolist()
    try:
        import tiffslide

        with tiffslide.TiffSlide(slide_path) as ts:
            record("tiffslide read_region loop", _timed(lambda: [
                ts.read_region((x, y), 0, (w, h), as_array=True)
                for y, x in zip(ys, xs, strict=True)], args.repeats), sample)
    except ImportError:
        print("  tiffslide not installed: skipped")
    try:
        import openslide

        with openslide.OpenSlide(str(slide_path)) as osr:
            record("openslide read_region loop", _timed(lambda: [
                osr.read_region((x, y), 0, (w, h)) for y, x in zip(ys, xs, strict=True)],
                args.repeats), sample)
    except ImportError:
        print("  openslide not installed: skipped")

    tiles = _touched_tiles(slide, plan)
    record(f"decode limit ({args.workers} threads)",
           decode_limit(slide_path, plan.level, tiles, args.workers, args.repeats), n)

    limit = rows[f"decode limit ({args.workers} threads)"]["best"]
    base = rows.get("tiffslide read_region loop", {}).get("best")
    print(f"\n{'method':<34} {'best/s':>9} {'median/s':>9} {'vs tiffslide':>13} {'vs limit':>9}")
    for name, r in rows.items():
        vs_ts = f"{r['best'] / base:.2f}x" if base else "-"
        print(f"{name:<34} {r['best']:9,.0f} {r['median']:9,.0f} {vs_ts:>13} "
              f"{r['best'] / limit:8.2f}x")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "bench": "extract", "slide": str(slide_path), "size": args.size, "patch": args.patch,
        "stride": args.stride or args.patch, "patches": n, "tiles": len(tiles),
        "workers": args.workers, "codec": args.codec, "repeats": args.repeats,
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0],
                    "platform": platform.platform()},
        "results": rows,
    }, indent=2))
    print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
