"""``gigapatch synth``: write a synthetic pyramidal whole-slide TIFF."""

from __future__ import annotations

import argparse
import time

from gigapatch.cli.common import (
    Subparsers,
    human_bytes,
    natural_int,
    positive_float,
    positive_int,
)
from gigapatch.sources import open_slide
from gigapatch.synth import synthesize

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Subparsers) -> argparse.ArgumentParser:
    """Add ``synth OUT [--size N] [--tile T] [--mpp M | --magnification X] [--seed K]
    [--jpeg-tables]``."""
    p = subparsers.add_parser("synth", help="write a synthetic pyramidal whole-slide TIFF")
    p.add_argument("out", help="output .tif/.svs file")
    p.add_argument("--size", type=positive_int, default=8192, help="level-0 side in pixels")
    p.add_argument("--tile", type=positive_int, default=256, help="tile side in pixels")
    p.add_argument("--seed", type=natural_int, default=0)
    scan = p.add_mutually_exclusive_group()
    scan.add_argument("--mpp", type=positive_float, default=None,
                      help="level-0 pixel size in µm (default 0.25: a 40x scan)")
    scan.add_argument("--magnification", type=positive_float, default=None, metavar="X",
                      help="objective power of the scan (40 = 0.25 µm/px, 20 = 0.5)")
    p.add_argument("--jpeg-tables", action="store_true",
                   help="store tiles as abbreviated JPEG streams with shared tables in the "
                        "JPEGTables tag, as Aperio scanners do (same pixels)")
    return p


def run(args: argparse.Namespace) -> int:
    """Synthesize the slide; print where it is, its size, levels and pixel size."""
    t0 = time.perf_counter()
    mpp = args.mpp if args.mpp is not None else (
        10.0 / args.magnification if args.magnification is not None else 0.25)
    path = synthesize(args.out, args.size, tile=args.tile, seed=args.seed, mpp=mpp,
                      jpeg_tables=args.jpeg_tables)
    slide = open_slide(path)
    levels = " ".join(f"{lvl.shape[0]}x{lvl.shape[1]}" for lvl in slide.levels)
    print(
        f"wrote {path} ({human_bytes(path.stat().st_size)}) in {time.perf_counter() - t0:.1f}s: "
        f"levels {levels}, mpp {slide.mpp} ({slide.magnification:g}x)"
    )
    return 0
