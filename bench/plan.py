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
from pathlib import Path

import gigapatch
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=32768, help="slide side in pixels")
    parser.add_argument("--n", type=int, default=10_000, help="random patches to plan")
    parser.add_argument("--patch", type=int, default=256, help="patch side in pixels")
    parser.add_argument("--min-tissue", type=float, default=0.5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=str(HERE / "results" / "plan.json"))
    args = parser.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
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
