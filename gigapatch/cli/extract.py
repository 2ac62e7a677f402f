"""``gigapatch extract``: patches of slides into a Zarr store, on a grid or at random."""

from __future__ import annotations

import argparse
import os
import time
from typing import Literal, get_args

from gigapatch.cli.common import (
    ProgressBar,
    Subparsers,
    fraction,
    natural_int,
    positive_float,
    positive_int,
    series_choice,
)
from gigapatch.cli.dryrun import print_estimate
from gigapatch.engine import estimate, extract_to_zarr
from gigapatch.errors import InvalidArgumentError
from gigapatch.plan import PatchPlan, as_slides, grid, random
from gigapatch.plan.labels import SlideSet, find_slides
from gigapatch.sources import READERS
from gigapatch.sources.resolution import MPP_TOLERANCE
from gigapatch.store import patches_done, recorded_seed

__all__ = ["Codec", "Device", "Padding", "add_parser", "run"]

Padding = Literal["valid", "same"]
Codec = Literal["lz4", "zstd", "zstd-3", "none"]
Device = Literal["auto", "cpu", "gpu"]


def add_parser(subparsers: Subparsers) -> argparse.ArgumentParser:
    """Add ``extract SRC... -o OUT.zarr --size P`` with the plan, store and run flags."""
    p = subparsers.add_parser("extract", help="extract patches from slides into a Zarr store")
    p.add_argument(
        "sources", nargs="+", metavar="SRC", help="slide files, globs or folders of slides"
    )
    p.add_argument("-o", "--output", default=None, metavar="OUT.zarr",
                   help="the store to write (required unless --dry-run)")
    p.add_argument("--size", type=positive_int, required=True, help="patch side in pixels")
    p.add_argument("--stride", type=positive_int, default=None, help="grid step (default: size)")
    p.add_argument("--padding", default="valid", choices=get_args(Padding), help="grid padding")
    p.add_argument("--dilation", type=positive_int, default=1, help="grid sampling rate")
    p.add_argument("--fill", type=float, default=0, help="value of pixels outside (same)")
    p.add_argument("--random", type=positive_int, default=None, metavar="N",
                   help="N random whole patches instead of a grid (in total; see --per-slide)")
    p.add_argument("--seed", type=natural_int, default=None, help="seed of --random")
    p.add_argument("--weights", default=None, metavar="tissue|MAP",
                   help="draw --random patches by tissue density or a weight map file (.npy)")
    p.add_argument("--per-slide", action="store_true", help="--random N patches per slide")
    p.add_argument("--balanced", action="store_true",
                   help="split --random N evenly over classes (with --labels-from-dirs)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--level", type=natural_int, default=None, help="pyramid level")
    where.add_argument("--mpp", type=positive_float, default=None,
                       help="pixel size in µm of the patches (e.g. 0.5 = 20x): a level within "
                            "--mpp-tolerance is read as is, else a finer one, area-downsampled")
    where.add_argument("--magnification", type=positive_float, default=None, metavar="X",
                       help="objective power of the patches (20 = 20x), from the slide's "
                            "recorded magnification, else 10/mpp")
    p.add_argument("--mpp-tolerance", type=fraction, default=MPP_TOLERANCE, metavar="F",
                   dest="mpp_tolerance",
                   help="relative difference under which a level counts as the target "
                        "(default 0.02)")
    p.add_argument("--min-tissue", type=fraction, default=0.0, metavar="F",
                   help="keep patches at least F tissue (Otsu mask of a low level)")
    p.add_argument("--series", type=series_choice, default=None, metavar="N|NAME",
                   help="image of a file holding several (default: the largest pyramid)")
    p.add_argument("--reader", default="auto", choices=READERS,
                   help="how slides are opened (openslide: vendor formats, extra 'openslide')")
    p.add_argument("--labels-from-dirs", action="store_true",
                   help="SRC is one folder whose sub-folders name the classes")
    p.add_argument("--shard-size", type=positive_int, default=256, help="patches per shard")
    p.add_argument("--codec", default="lz4", choices=get_args(Codec),
                   help="lossless codec of the patches (default lz4: fastest to write and read)")
    p.add_argument("--device", default="auto", choices=get_args(Device))
    p.add_argument("--workers", type=positive_int, default=None,
                   help="parallel local tasks (default: number of CPUs)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run on an existing Dask distributed cluster (tcp://host:8786)")
    again = p.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true",
                       help="finish an interrupted run of the same request")
    again.add_argument("--overwrite", action="store_true", help="replace an existing store")
    p.add_argument("--no-sync", action="store_true", dest="no_sync",
                   help="do not fsync shard files (faster; a crash of the machine may then "
                        "lose shards already marked done)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--dry-run", action="store_true", dest="dry_run",
                   help="plan, print every slide's patches and the estimated store size and "
                        "time (from a small sample), and write nothing")
    return p


def _refuse(given: dict[str, bool], why: str) -> None:
    """Raise for the first flag ``given`` that the chosen plan does not take."""
    for flag, present in given.items():
        if present:
            raise InvalidArgumentError(f"{flag} {why}")


def _plan_from_args(sources: SlideSet, args: argparse.Namespace) -> PatchPlan:
    """The plan the flags describe: :func:`~gigapatch.grid`, or :func:`~gigapatch.random`
    with ``--random N``; flags of the other kind are an error."""
    if args.random is None:
        _refuse(
            {"--seed": args.seed is not None, "--weights": args.weights is not None,
             "--per-slide": args.per_slide, "--balanced": args.balanced},
            "applies to --random; got it without --random",
        )
        return grid(sources, args.size, args.stride, padding=args.padding,
                    dilation=args.dilation, level=args.level, mpp=args.mpp,
                    magnification=args.magnification, mpp_tolerance=args.mpp_tolerance,
                    fill=args.fill, min_tissue=args.min_tissue)
    _refuse(
        {"--stride": args.stride is not None, "--padding": args.padding != "valid",
         "--dilation": args.dilation != 1},
        "applies to grids; random patches are always whole (got it with --random)",
    )
    return random(sources, args.size, args.random, args.seed, level=args.level, mpp=args.mpp,
                  magnification=args.magnification, mpp_tolerance=args.mpp_tolerance,
                  weights=args.weights, min_tissue=args.min_tissue, per_slide=args.per_slide,
                  balance=args.balanced)


def run(args: argparse.Namespace) -> int:
    """Plan, extract, and print how many patches were written and how fast (with
    ``--dry-run``: plan, and print what would be written, :func:`print_estimate`)."""
    if args.output is None and not args.dry_run:
        raise InvalidArgumentError("the following arguments are required: -o/--output "
                                   "(unless --dry-run)")
    found = find_slides(args.sources, labels_from_dirs=args.labels_from_dirs).open(
        series=args.series, reader=args.reader)
    slides = as_slides(found)
    if args.resume and args.random is not None and args.seed is None:
        args.seed = recorded_seed(args.output)  # finish the random plan the store was made with
    plan = _plan_from_args(found, args)
    before = patches_done(args.output) if args.resume and args.output else 0
    if args.dry_run:
        est = estimate(slides, plan, codec=args.codec, shard_size=args.shard_size,
                       workers=args.workers, device=args.device, out=args.output,
                       sync=not args.no_sync)
        print_estimate(est, plan, args.output, done=before)
        if args.output and os.path.exists(args.output) and not (args.overwrite or args.resume):
            print(f"note    {args.output} exists: the run needs --overwrite or --resume")
        return 0
    t0 = time.perf_counter()
    store = extract_to_zarr(
        slides,
        plan,
        args.output,
        shard_size=args.shard_size,
        codec=args.codec,
        device=args.device,
        workers=args.workers,
        scheduler=args.scheduler or "threads",
        resume=args.resume,
        overwrite=args.overwrite,
        sync=not args.no_sync,
        progress=ProgressBar("extract", quiet=args.quiet),
    )
    dt = time.perf_counter() - t0
    what = "patches" if plan.kind == "grid" else f"{plan.kind} patches"
    classes = f" in {len(found.classes)} classes" if found.classes else ""
    new = len(store) - before
    kept = f" ({before} were already done)" if before else ""
    print(
        f"wrote {new} {what} of {plan.size[0]}x{plan.size[1]} from {len(slides)} slide(s)"
        f"{classes} to {args.output}{kept} in {dt:.1f}s ({new / dt:,.0f} patches/s)"
    )
    return 0
