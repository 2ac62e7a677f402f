"""``gigapatch bench``: on your slide, gigapatch vs the decode limit and read_region loops."""

from __future__ import annotations

import argparse
import dataclasses
import json

from gigapatch.cli.common import Subparsers, positive_float, positive_int
from gigapatch.cli.tables import format_table
from gigapatch.engine.benchmark import Benchmark, benchmark

__all__ = ["add_parser", "benchmark_lines", "run"]


def add_parser(subparsers: Subparsers) -> argparse.ArgumentParser:
    """Add ``bench SLIDE [--size P] [--random N | --grid] [--mpp M] [--workers W] [--json]``."""
    p = subparsers.add_parser(
        "bench", help="time gigapatch against the decode limit and read_region loops on a slide")
    p.add_argument("slide", metavar="SLIDE")
    p.add_argument("--size", type=positive_int, default=256, help="patch side in pixels")
    job = p.add_mutually_exclusive_group()
    job.add_argument("--random", type=positive_int, default=500, metavar="N",
                     help="N random patches (default 500)")
    job.add_argument("--grid", action="store_true", help="every patch of the grid instead")
    p.add_argument("--mpp", type=positive_float, default=None,
                   help="pixel size in µm of the patches (resampled when no level has it)")
    p.add_argument("--workers", type=positive_int, default=None,
                   help="threads of every method (default: number of CPUs)")
    p.add_argument("--repeats", type=positive_int, default=1, help="runs each, best kept")
    p.add_argument("--loop-patches", type=positive_int, default=200, dest="loop_patches",
                   metavar="K", help="patches of the read_region loops (default 200)")
    p.add_argument("--tmp", default=None, metavar="DIR",
                   help="folder of the temporary store (default: the system's; deleted after)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return p


def _number(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def benchmark_lines(result: Benchmark) -> list[str]:
    """The table ``gigapatch bench`` prints for ``result``."""
    h, w, c = result.patch_shape
    at = (f"level {result.level}" + (f" ({result.level_mpp:.4g} um/px)"
                                     if result.level_mpp is not None else ""))
    if result.factor != 1.0 and result.patch_mpp is not None:
        at = f"{result.patch_mpp:.4g} um/px, read at {at} and downsampled {result.factor:g}x"
    lines = [
        f"{result.slide}: {result.patches:,} patches of {h}x{w}x{c} ({result.plan}), {at}",
        f"{result.workers} worker(s), best of {result.repeats}; the slide's tiles decoded once "
        "first, so every method reads from the page cache",
        "",
    ]
    rows = []
    names = [f"{r.method} ({result.tiles:,} tiles)" if r.method == "decode limit" else r.method
             for r in result.rows]
    for r, name in zip(result.rows, names, strict=True):
        if r.seconds is None:
            rows.append([name, "", "", "", "", ""])
            continue
        rows.append([
            name, f"{r.patches:,}", _number(r.patches_per_second, ",.0f"),
            _number(r.megabytes_per_second, ",.1f"),
            _number(None if r.limit_fraction is None else 100 * r.limit_fraction, ".0f") + " %",
            _number(r.vs_tiffslide, ".1f") + ("x" if r.vs_tiffslide is not None else ""),
        ])
    header = ["method", "patches", "patches/s", "MB/s", "of limit", "x tiffslide"]
    table = format_table(header, rows, left=1)
    width = max(len(name) for name in names)
    for k, (r, name) in enumerate(zip(result.rows, names, strict=True), start=1):
        if r.seconds is None:  # a row that did not run says why
            table[k] = f"{name.ljust(width)}  {r.note}"
    lines += table
    if not any(r.method.startswith("tiffslide") and r.seconds for r in result.rows):
        lines.append("(no tiffslide loop to compare with: the last column is empty)")
    return lines


def run(args: argparse.Namespace) -> int:
    """Run the benchmark; print its table, or JSON with ``--json``."""
    result = benchmark(
        args.slide, size=args.size, random=None if args.grid else args.random, mpp=args.mpp,
        workers=args.workers, repeats=args.repeats, loop_patches=args.loop_patches,
        tmp=args.tmp,
    )
    if args.json:
        print(json.dumps(dataclasses.asdict(result), indent=2))
    else:
        print("\n".join(benchmark_lines(result)))
    return 0
