"""The ``gigapatch`` command: parses arguments and calls the library, nothing more.

Every user error ends in one line on stderr (``gigapatch <command>: error:
...``) and a non-zero exit: 2 for bad arguments, 1 for files and stores that
cannot be used, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from gigapatch import __version__
from gigapatch.errors import GigapatchError, InvalidArgumentError

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, without the usage block."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _natural_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def _human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


class _ProgressBar:
    """A one-line progress display on a terminal; silent otherwise."""

    def __init__(self, label: str, enabled: bool) -> None:
        self.label = label
        self.enabled = enabled
        self.start = time.perf_counter()
        self._last = 0.0

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if done < total and now - self._last < 0.1:
            return
        self._last = now
        elapsed = max(now - self.start, 1e-9)
        rate = done / elapsed
        eta = (total - done) / rate if rate > 0 else 0.0
        width = 30
        filled = int(width * done / total) if total else width
        sys.stderr.write(
            f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total} patches "
            f"{rate:,.0f}/s ETA {eta:,.0f}s "
        )
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()


# --------------------------------------------------------------------------- commands


def _cmd_synth(args: argparse.Namespace) -> int:
    from gigapatch.synth import synthesize

    t0 = time.perf_counter()
    path = synthesize(args.out, args.size, tile=args.tile, seed=args.seed)
    from gigapatch.sources import open_slide

    slide = open_slide(path)
    levels = " ".join(f"{lvl.shape[0]}x{lvl.shape[1]}" for lvl in slide.levels)
    size = _human_bytes(path.stat().st_size)
    print(
        f"wrote {path} ({size}) in {time.perf_counter() - t0:.1f}s: levels {levels}, "
        f"mpp {slide.mpp}"
    )
    return 0


def _describe_plan(plan: dict) -> str:
    """One line for a stored plan: kind, where, and what shaped it."""
    size = "x".join(map(str, plan.get("size", [])))
    parts = [f"{plan.get('kind')} of {size}"]
    if plan.get("mpp") is not None:
        parts.append(f"at {plan['mpp']:g} um/px")
    elif plan.get("level", -1) >= 0:
        parts.append(f"at level {plan['level']}")
    if plan.get("kind") == "grid":
        parts.append(f"stride {'x'.join(map(str, plan.get('stride', [])))}")
        if plan.get("padding", "valid") != "valid":
            parts.append(f"padding {plan['padding']}")
        if list(plan.get("dilation", [1, 1])) != [1, 1]:
            parts.append(f"dilation {'x'.join(map(str, plan['dilation']))}")
    else:
        parts.append(f"seed {plan.get('seed')}")
        if plan.get("weights"):
            parts.append(f"weights {plan['weights']}")
    if plan.get("min_tissue"):
        parts.append(f"min tissue {plan['min_tissue']:g}")
    if plan.get("classes"):
        parts.append(f"classes {', '.join(map(str, plan['classes']))}")
    return ", ".join(parts)


def _cmd_info(args: argparse.Namespace) -> int:
    from gigapatch.sources import describe_file, open_slide
    from gigapatch.store import ATTRS_KEY, PatchStore

    path = Path(args.path)
    if path.is_dir() and (path / "zarr.json").exists():
        import zarr

        try:
            is_store = ATTRS_KEY in zarr.open_group(path, mode="r").attrs
        except Exception:  # an array, or not readable as a group: describe it as an image
            is_store = False
        if is_store:
            store = PatchStore(path)
            n, (h, w, c) = len(store), store.patch_shape
            plan = store.plan
            print(f"store     {path} ({_human_bytes(describe_file(path)['size'])})")
            print(f"patches   {n} of {h}x{w}x{c} {store.images.dtype}")
            print(
                f"shards    {store.shards_done}/{store.n_shards} done, {store.shard_size} "
                f"patches each, codec {store.attrs.get('codec')}"
            )
            print(f"plan      {_describe_plan(plan)}")
            for k, src in enumerate(store.sources):
                where = src.get("path") or src.get("name")
                print(f"source {k:<3} {where} (level {src.get('level')}, label "
                      f"{src.get('label')})")
            return 0
    slide = open_slide(path)
    size = describe_file(path)["size"]
    print(f"file      {path} ({_human_bytes(size)})")
    print(f"format    {slide.format}")
    print(f"dtype     {slide.dtype} x{slide.channels}")
    print(f"mpp       {slide.mpp if slide.mpp is not None else 'unknown'}")
    print("levels    level   height    width  downsample  tile       compression")
    for k, lvl in enumerate(slide.levels):
        (h, w), (dy, _dx), (th, tw) = lvl.shape, lvl.downsample, lvl.tile
        print(f"          {k:>5} {h:>8} {w:>8} {dy:>11.4g}  {f'{th}x{tw}':<10} {lvl.compression}")
    return 0


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _plan_from_args(sources, args: argparse.Namespace):
    """The plan the ``extract`` flags describe (grid, or random with ``--random N``)."""
    from gigapatch.plan import grid, random

    if args.random is None:
        for flag, value in (("--seed", args.seed), ("--weights", args.weights)):
            if value is not None:
                raise InvalidArgumentError(f"{flag} applies to --random; got it without --random")
        for flag, value in (("--per-slide", args.per_slide), ("--balanced", args.balanced)):
            if value:
                raise InvalidArgumentError(f"{flag} applies to --random; got it without --random")
        return grid(
            sources,
            args.size,
            args.stride,
            padding=args.padding,
            dilation=args.dilation,
            level=args.level,
            mpp=args.mpp,
            fill=args.fill,
            min_tissue=args.min_tissue,
        )
    for flag, value in (("--stride", args.stride), ("--padding", args.padding != "valid"),
                        ("--dilation", args.dilation != 1)):
        if value:
            raise InvalidArgumentError(
                f"{flag} applies to grids; random patches are always whole (got it with --random)"
            )
    return random(
        sources,
        args.size,
        args.random,
        args.seed,
        level=args.level,
        mpp=args.mpp,
        weights=args.weights,
        min_tissue=args.min_tissue,
        per_slide=args.per_slide,
        balance=args.balanced,
    )


def _recorded_seed(output: str) -> int | None:
    """The seed recorded in an existing store's plan, if any."""
    import os

    from gigapatch.store import PatchStore

    if not os.path.exists(output):
        return None
    return PatchStore(output).plan.get("seed")


def _cmd_extract(args: argparse.Namespace) -> int:
    from gigapatch.engine import extract_to_zarr
    from gigapatch.plan import as_slides
    from gigapatch.plan.labels import find_slides

    found = find_slides(args.sources, labels_from_dirs=args.labels_from_dirs)
    slides = as_slides(found)
    if args.resume and args.random is not None and args.seed is None:
        args.seed = _recorded_seed(args.output)  # finish the random plan the store was made with
    plan = _plan_from_args(found, args)
    bar = _ProgressBar("extract", enabled=sys.stderr.isatty() and not args.quiet)
    before = _patches_done(args.output) if args.resume else 0
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
        progress=bar,
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


def _patches_done(output: str) -> int:
    """Patches in the done shards of an existing store (0 if there is none, or it is unreadable)."""
    from gigapatch.store import PatchStore

    try:
        store = PatchStore(output)
        done = store.done
    except GigapatchError:
        return 0
    ends = np.minimum((np.flatnonzero(done) + 1) * store.shard_size, len(store))
    return int((ends - np.flatnonzero(done) * store.shard_size).sum())


def _cmd_verify(args: argparse.Namespace) -> int:
    from gigapatch.store import PatchStore

    store = PatchStore(args.store)
    problems = store.verify()
    if problems:
        for p in problems:
            print(f"{args.store}: {p}", file=sys.stderr)
        return 1
    print(f"{args.store}: OK, {len(store)} patches in {store.n_shards} shards, all done")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from gigapatch.demo import run_demo

    bar = _ProgressBar("extract", enabled=sys.stderr.isatty() and not args.quiet)
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
        progress=bar,
    )
    h, w = r.slide_shape
    n, (ph, pw, _) = len(r.store), r.store.patch_shape
    grid_n = (h // ph) * (w // pw)
    print(
        f"slide     {r.slide_path} ({h}x{w}, {r.slide_levels} levels, {10 / r.slide_mpp:g}x "
        f"({r.slide_mpp:g} um/px), {_human_bytes(r.slide_path.stat().st_size)}, made in "
        f"{r.synth_seconds:.1f}s)"
    )
    print(f"patches   {n} of {ph}x{pw} at {10 / r.slide_mpp:g}x from tissue only "
          f"({n} of {grid_n} grid cells have >= {args.min_tissue:.0%} tissue)")
    print(f"extract   {r.extract_seconds:.2f}s, {r.patches_per_second:,.0f} patches/s "
          "(tissue mask, plan, read, write)")
    print(f"store     {r.store.path} ({_human_bytes(r.store_bytes)})")
    return 0


# --------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``gigapatch`` command."""
    parser = _Parser(prog="gigapatch", description="Whole-slide images to training patches.")
    parser.add_argument("--version", action="version", version=f"gigapatch {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("demo", help="synthesize a slide and run the main job on it")
    p.add_argument("--out", default="gigapatch-demo", help="folder for the slide and the store")
    p.add_argument("--size", type=_positive_int, default=8192, help="slide side in pixels")
    p.add_argument("--patch", type=_positive_int, default=299, help="patch side in pixels")
    p.add_argument("--min-tissue", type=float, default=0.5, dest="min_tissue",
                   help="keep patches with at least this tissue fraction (default 0.5)")
    p.add_argument("--seed", type=_natural_int, default=0)
    p.add_argument("--workers", type=_positive_int, default=None)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("synth", help="write a synthetic pyramidal whole-slide TIFF")
    p.add_argument("out", help="output .tif/.svs file")
    p.add_argument("--size", type=_positive_int, default=8192, help="level-0 side in pixels")
    p.add_argument("--tile", type=_positive_int, default=256, help="tile side in pixels")
    p.add_argument("--seed", type=_natural_int, default=0)
    p.set_defaults(func=_cmd_synth)

    p = sub.add_parser("info", help="describe a slide or a patch store")
    p.add_argument("path")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("extract", help="extract patches from slides into a Zarr store")
    p.add_argument(
        "sources", nargs="+", metavar="SRC", help="slide files, globs or folders of slides"
    )
    p.add_argument("-o", "--output", required=True, metavar="OUT.zarr")
    p.add_argument("--size", type=_positive_int, required=True, help="patch side in pixels")
    p.add_argument("--stride", type=_positive_int, default=None, help="grid step (default: size)")
    p.add_argument("--padding", default="valid", choices=["valid", "same"], help="grid padding")
    p.add_argument("--dilation", type=_positive_int, default=1, help="grid sampling rate")
    p.add_argument("--fill", type=float, default=0, help="value of pixels outside (same)")
    p.add_argument("--random", type=_positive_int, default=None, metavar="N",
                   help="N random whole patches instead of a grid (in total; see --per-slide)")
    p.add_argument("--seed", type=_natural_int, default=None, help="seed of --random")
    p.add_argument("--weights", default=None, metavar="tissue|MAP",
                   help="draw --random patches by tissue density or a weight map file (.npy)")
    p.add_argument("--per-slide", action="store_true", help="--random N patches per slide")
    p.add_argument("--balanced", action="store_true",
                   help="split --random N evenly over classes (with --labels-from-dirs)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--level", type=_natural_int, default=None, help="pyramid level")
    where.add_argument("--mpp", type=_positive_float, default=None,
                       help="pixel size in µm: each slide at its level of that size")
    p.add_argument("--min-tissue", type=_fraction, default=0.0, metavar="F",
                   help="keep patches at least F tissue (Otsu mask of a low level)")
    p.add_argument("--labels-from-dirs", action="store_true",
                   help="SRC is one folder whose sub-folders name the classes")
    p.add_argument("--shard-size", type=_positive_int, default=256, help="patches per shard")
    p.add_argument("--codec", default="lz4", choices=["lz4", "zstd", "zstd-3", "none"],
                   help="lossless codec of the patches (default lz4: fastest to write and read)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "gpu"])
    p.add_argument("--workers", type=_positive_int, default=None,
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
    p.set_defaults(func=_cmd_extract)

    p = sub.add_parser("verify", help="check that a store is complete and consistent")
    p.add_argument("store")
    p.set_defaults(func=_cmd_verify)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``gigapatch`` command; return its exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error already printed
        return int(exc.code or 0)
    prog = f"gigapatch {args.command}"
    try:
        return args.func(args)
    except InvalidArgumentError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except (GigapatchError, OSError) as exc:
        if isinstance(exc, GigapatchError) or exc.filename is None:
            message = str(exc) or type(exc).__name__
        else:
            message = f"{exc.filename}: {exc.strerror}"
        print(f"{prog}: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; partial output is not marked complete", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
