"""``gigapatch extract``: patches of slides into a Zarr store, on a grid or at random."""

from __future__ import annotations

import argparse
import os
import time
from typing import get_args

from gigapatch.cli.common import (
    ProgressBar,
    Subparsers,
    positive_int,
)
from gigapatch.cli.dryrun import print_estimate
from gigapatch.cli.planargs import add_plan_arguments, plan_from_args
from gigapatch.cli.reporting import Interrupted, Terminated
from gigapatch.engine import estimate, extract_to_zarr
from gigapatch.errors import InvalidArgumentError, SlideError
from gigapatch.kernels.backend import Device
from gigapatch.plan import as_slides
from gigapatch.plan.labels import SlideSet
from gigapatch.store import PatchStore, parse_codec, patches_done, recorded_seed
from gigapatch.store.summary import left_out

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Subparsers) -> argparse.ArgumentParser:
    """Add ``extract SRC... -o OUT.zarr --size P`` with the plan, store and run flags."""
    p = subparsers.add_parser("extract", help="extract patches from slides into a Zarr store")
    p.add_argument(
        "sources", nargs="+", metavar="SRC", help="slide files, globs or folders of slides"
    )
    p.add_argument("-o", "--output", default=None, metavar="OUT.zarr",
                   help="the store to write (required unless --dry-run)")
    add_plan_arguments(p)
    p.add_argument("--shard-size", type=positive_int, default=256, help="patches per shard")
    p.add_argument("--codec", default="lz4", metavar="CODEC",
                   help="codec of the patches: lossless lz4 (default: fastest to write and read), "
                        "zstd, zstd-3, none; or jpeg[:QUALITY] (one JPEG per patch, quality "
                        "1-100, default 90: ~10x smaller, lossy), jpeg:source (the source's "
                        "JPEG tiles copied); see docs/codecs.md")
    p.add_argument("--device", default="auto", choices=get_args(Device))
    p.add_argument("--workers", type=positive_int, default=None,
                   help="parallel local tasks (default: number of CPUs)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run on an existing Dask distributed cluster (tcp://host:8786)")
    again = p.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true",
                       help="finish an interrupted run of the same request")
    again.add_argument("--overwrite", action="store_true", help="replace an existing store")
    p.add_argument("--break-lock", action="store_true", dest="break_lock",
                   help="take over the store's writer lock held by a run on another host "
                        "(only when that run is gone)")
    p.add_argument("--no-sync", action="store_true", dest="no_sync",
                   help="do not fsync shard files (faster; a crash of the machine may then "
                        "lose shards already marked done)")
    p.add_argument("--dry-run", action="store_true", dest="dry_run",
                   help="plan, print every slide's patches and the estimated store size and "
                        "time (from a small sample), and write nothing")
    return p


def run(args: argparse.Namespace) -> int:
    """Plan, extract, and print how many patches were written and how fast (with
    ``--dry-run``: plan, and print what would be written, :func:`print_estimate`)."""
    args.codec = str(parse_codec(args.codec))  # a bad spec fails before any slide is opened
    if args.output is None and not args.dry_run:
        raise InvalidArgumentError("the following arguments are required: -o/--output "
                                   "(unless --dry-run)")
    if args.resume and args.random is not None and args.seed is None:
        args.seed = recorded_seed(args.output)  # finish the random plan the store was made with
    try:
        return _run(args)
    except SlideError as exc:  # --on-error stop: name the file (and tile), say how to go on
        if args.on_error != "stop":
            raise
        raise SlideError(f"{exc} {_HINT}") from None


_HINT = "(use --on-error skip to leave out what cannot be read)"


def _run(args: argparse.Namespace) -> int:
    found, plan = plan_from_args(args)
    slides = as_slides(found)
    opened = SlideSet(slides, None, [])
    opened.skipped = found.skipped
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
    bar = ProgressBar("extract", quiet=args.quiet, every=args.progress_every, already=before)
    try:
        store = extract_to_zarr(
            opened,  # the slides, and those left out (recorded in the store)
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
            progress=bar,
            break_lock=args.break_lock,
            on_error=args.on_error,
        )
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (a job's time limit)
        raise Interrupted(_how_far(args.output, bar, args.shard_size),
                          terminated=isinstance(exc, Terminated)) from None
    dt = time.perf_counter() - t0
    what = "patches" if plan.kind == "grid" else f"{plan.kind} patches"
    classes = f" in {len(plan.classes)} classes" if plan.classes else ""
    new = len(store) - before
    kept = f" ({before} were already done)" if before else ""
    print(
        f"wrote {new} {what} of {plan.size[0]}x{plan.size[1]} from {len(slides)} slide(s)"
        f"{classes} to {args.output}{kept} in {dt:.1f}s ({new / dt:,.0f} patches/s)"
    )
    print(left_out(store))
    return 0


def _how_far(output: str, bar: ProgressBar, shard_size: int) -> str:
    """What an interrupted run got done, and how to finish it."""
    resume = "run the same command with --resume"
    try:
        store = PatchStore(output)
        done, total = store.shards_done, store.n_shards
    except Exception:  # the store was not made yet, or not far enough to read its flags
        if not bar.total:
            return f"nothing was written to {output}"
        total = -(-bar.total // shard_size)
        done = bar.done // shard_size
    return f"{done} of {total} shards done; {resume}"
