"""Planning speed: how long deciding *where* patches are takes, before any extraction.

Run as a script (``python bench/plan.py``). On a synthetic slide made by
gigapatch's own generator (32768² by default, cached under ``bench/data``),
pinned to one core, it times each ``--repeats`` times, opening the slide
afresh every time:

* ``tissue_mask``: Otsu + cleanup on a low-resolution level;
* ``random``: N uniform patches, no mask;
* ``random min_tissue``: N tissue-masked patches (the goal: under 2 s);
* ``random weights=tissue``: N patches weighted by tissue density, masked;
* ``grid min_tissue``: the whole 256² grid filtered by tissue.

It also records which levels were read (never level 0), prints best and
median seconds with the ratio to the goal, and writes the figures as JSON.

With ``--annotations`` it times planning from regions instead (no slide is
synthesized: the slide is an empty, lazily-filled 100,000² Zarr array, and
planning from regions reads no pixel): 500 random blob-shaped regions of 4
classes (48 vertices each, radii 500–2,500 px), labels by coverage, 256²
patches — ``annotations random``: 100,000 random patches; ``annotations
balanced``: 100,000 balanced over the classes; ``annotations grid``: the
whole 256² grid labelled. Peak memory of the planning call is measured with
``tracemalloc`` (NumPy's buffers included) in one more, untimed run.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before NumPy/SciPy load their thread pools
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import json
import platform
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import zarr

import gigapatch
from gigapatch.plan.annotations import Region
from gigapatch.plan.masks import tissue_mask
from gigapatch.synth import synthesize

HERE = Path(__file__).resolve().parent
GOAL_S = 2.0


def _slide(size: int) -> Path:
    path = HERE / "data" / f"synth-{size}.svs"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        print(f"synthesizing {path} (once; cached) ...", file=sys.stderr)
        synthesize(path, size)
    return path


def _opened(path: Path, levels_read: set) -> gigapatch.Slide:
    slide = gigapatch.open(path)
    real = slide._reader.read_level

    def spy(level, y, x, out):
        levels_read.add(level)
        return real(level, y, x, out)

    slide._reader.read_level = spy
    return slide


def _regions(side: int, count: int, seed: int = 0) -> list[Region]:
    """``count`` blob-shaped regions of 4 classes inside a ``side``² slide."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    out = []
    for k in range(count):
        r = rng.uniform(500, 2500)
        cx, cy = rng.uniform(r * 1.3, side - r * 1.3, 2)
        a, b = rng.uniform(0, 0.2, 2)
        rr = r * (1 + a * np.sin(3 * t + k) + b * np.cos(5 * t))
        ring = np.stack([cx + rr * np.cos(t), cy + rr * np.sin(t)], 1)
        out.append(Region(f"class {k % 4}", ring))
    return out


def annotations(args: argparse.Namespace) -> int:
    """Time plans of 100,000 patches from 500 regions over a 100,000² slide."""
    side, n, p = 100_000, args.n, args.patch
    regions = _regions(side, 500)
    lazy = zarr.create_array(store=zarr.storage.MemoryStore(), shape=(side, side, 3),
                             dtype="uint8", chunks=(1024, 1024, 3))
    cases = {
        "annotations random": lambda s: gigapatch.random(
            s, p, n, seed=0, annotations=regions, labels_from_annotations=True),
        "annotations balanced": lambda s: gigapatch.random(
            s, p, n, seed=0, annotations=regions, labels_from_annotations=True, balance=True),
        "annotations grid": lambda s: gigapatch.grid(
            s, p, annotations=regions, labels_from_annotations=True),
    }
    results = {}
    print(f"slide {side}² (lazy, no pixels read), {len(regions)} regions, {n} random patches "
          f"of {p}², 1 core")
    print(f"{'case':<24}{'best s':>9}{'median s':>10}{'patches':>9}{'peak MB':>9}")
    for name, fn in cases.items():
        times, count = [], 0
        for _ in range(args.repeats):
            slide = gigapatch.open(lazy)
            t0 = time.perf_counter()
            count = len(fn(slide))
            times.append(time.perf_counter() - t0)
        tracemalloc.start()  # once more, traced (tracing slows allocation down: not timed)
        fn(gigapatch.open(lazy))
        peak = tracemalloc.get_traced_memory()[1] / 1e6
        tracemalloc.stop()
        best, med = min(times), statistics.median(times)
        results[name] = {"best_s": best, "median_s": med, "patches": count, "peak_mb": peak}
        print(f"{name:<24}{best:>9.3f}{med:>10.3f}{count:>9}{peak:>9.0f}")
    record = {
        "slide": f"lazy zarr {side}x{side}x3", "regions": len(regions), "n": n, "patch": p,
        "repeats": args.repeats, "machine": platform.platform(),
        "python": platform.python_version(), "gigapatch": gigapatch.__version__,
        "results": results,
    }
    out = Path(args.json).with_name("plan-annotations.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2))
    print(f"wrote {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=32768, help="slide side in pixels")
    parser.add_argument("--n", type=int, default=10_000, help="random patches to plan")
    parser.add_argument("--patch", type=int, default=256, help="patch side in pixels")
    parser.add_argument("--min-tissue", type=float, default=0.5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=str(HERE / "results" / "plan.json"))
    parser.add_argument("--annotations", action="store_true",
                        help="time plans from 500 regions on a 100,000² slide instead "
                             "(--n defaults to 100,000 then)")
    args = parser.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    if args.annotations:
        if "--n" not in (argv if argv is not None else sys.argv):
            args.n = 100_000
        return annotations(args)
    path = _slide(args.size)
    n, p, mt = args.n, args.patch, args.min_tissue
    cases = {
        "tissue_mask": lambda s: tissue_mask(s),
        "random": lambda s: gigapatch.random(s, p, n, seed=0),
        "random min_tissue": lambda s: gigapatch.random(s, p, n, seed=0, min_tissue=mt),
        "random weights=tissue": lambda s: gigapatch.random(
            s, p, n, seed=0, weights="tissue", min_tissue=mt
        ),
        "grid min_tissue": lambda s: gigapatch.grid(s, p, min_tissue=mt),
    }
    results = {}
    print(f"slide {path.name} ({args.size}² px), {n} patches of {p}², min_tissue {mt}, 1 core")
    print(f"{'case':<24}{'best s':>9}{'median s':>10}{'patches':>9}{'vs goal':>9}  levels read")
    for name, fn in cases.items():
        times, levels, count = [], set(), 0
        for _ in range(args.repeats):
            slide = _opened(path, levels)
            t0 = time.perf_counter()
            out = fn(slide)
            times.append(time.perf_counter() - t0)
            count = len(out) if isinstance(out, gigapatch.PatchPlan) else 0
        best, med = min(times), statistics.median(times)
        results[name] = {"best_s": best, "median_s": med, "patches": count,
                         "levels_read": sorted(levels)}
        print(f"{name:<24}{best:>9.3f}{med:>10.3f}{count:>9}{GOAL_S / best:>8.1f}x  "
              f"{sorted(levels)}")
    record = {
        "slide": str(path), "size": args.size, "n": n, "patch": p, "min_tissue": mt,
        "goal_s": GOAL_S, "repeats": args.repeats, "machine": platform.platform(),
        "python": platform.python_version(), "gigapatch": gigapatch.__version__,
        "results": results,
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(record, indent=2))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
