"""``gigapatch demo``: synthesize a slide and run the main job on it (:mod:`gigapatch.demo`)."""

from __future__ import annotations

import argparse

from gigapatch import __version__
from gigapatch.cli.common import ProgressBar, Subparsers, human_bytes, natural_int, positive_int
from gigapatch.demo import run_demo

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Subparsers) -> argparse.ArgumentParser:
    """Add ``demo [--out DIR] [--size N] [--patch P] [--min-tissue F] [--seed K] ...``."""
    p = subparsers.add_parser("demo", help="synthesize a slide and run the main job on it")
    p.add_argument("--out", default="gigapatch-demo", help="folder for the slide and the store")
    p.add_argument("--size", type=positive_int, default=8192, help="slide side in pixels")
    p.add_argument("--patch", type=positive_int, default=299, help="patch side in pixels")
    p.add_argument("--min-tissue", type=float, default=0.5, dest="min_tissue",
                   help="keep patches with at least this tissue fraction (default 0.5)")
    p.add_argument("--seed", type=natural_int, default=0)
    p.add_argument("--workers", type=positive_int, default=None)
    return p


def run(args: argparse.Namespace) -> int:
    """Run the demo; print the slide, the patches, the speed and the store."""
    print(
        f"gigapatch {__version__} demo: synthesizing a {args.size}x{args.size} slide in {args.out}"
    )
    r = run_demo(
        args.out,
        min_tissue=args.min_tissue,
        size=args.size,
        patch=args.patch,
        seed=args.seed,
        workers=args.workers,
        progress=ProgressBar("extract", quiet=args.quiet, every=args.progress_every),
    )
    h, w = r.slide_shape
    n, (ph, pw, _) = len(r.store), r.store.patch_shape
    cells = int(h * r.slide_mpp / r.patch_mpp) // ph * (int(w * r.slide_mpp / r.patch_mpp) // pw)
    print(
        f"slide     {r.slide_path} ({h}x{w}, {r.slide_levels} levels, {10 / r.slide_mpp:g}x "
        f"({r.slide_mpp:g} um/px), {human_bytes(r.slide_path.stat().st_size)}, made in "
        f"{r.synth_seconds:.1f}s)"
    )
    how = "read at level 0 and downsampled" if r.resampling != "none" else "read as is"
    print(f"patches   {n} of {ph}x{pw} at {10 / r.patch_mpp:g}x ({r.patch_mpp:g} um/px, {how}) "
          f"from tissue only ({n} of {cells} grid cells have >= {args.min_tissue:.0%} tissue)")
    print(f"extract   {r.extract_seconds:.2f}s, {r.patches_per_second:,.0f} patches/s "
          "(tissue mask, plan, read, write)")
    print(f"store     {r.store.path} ({human_bytes(r.store_bytes)})")
    return 0
