"""The plan flags shared by ``extract`` and ``preview``: where the patches are."""

from __future__ import annotations

import argparse
from typing import get_args

from gigapatch.cli.common import (
    fraction,
    natural_int,
    positive_float,
    positive_int,
    series_choice,
    tolerance,
)
from gigapatch.errors import ON_ERROR, InvalidArgumentError, check_on_error
from gigapatch.plan import PatchPlan, grid, random
from gigapatch.plan.core import Padding
from gigapatch.plan.labels import SlideSet, find_slides
from gigapatch.sources import READERS
from gigapatch.sources.resolution import MPP_TOLERANCE

__all__ = ["add_plan_arguments", "plan_from_args"]


def add_plan_arguments(p: argparse.ArgumentParser, *, size_required: bool = True) -> None:
    """Add ``--size`` and every flag that says where patches are (grid, random, resolution,
    tissue, labels, series, reader)."""
    p.add_argument("--size", type=positive_int, required=size_required,
                   help="patch side in pixels (of the target resolution)")
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
    p.add_argument("--mpp-tolerance", type=tolerance, default=None, metavar="F",
                   dest="mpp_tolerance",
                   help="with --mpp or --magnification: relative difference under which a "
                        f"level counts as the target (default {MPP_TOLERANCE:g})")
    p.add_argument("--min-tissue", type=fraction, default=0.0, metavar="F",
                   help="keep patches at least F tissue (Otsu mask of a low level)")
    p.add_argument("--series", type=series_choice, default=None, metavar="N|NAME",
                   help="image of a file holding several (default: the largest pyramid)")
    p.add_argument("--on-error", default="stop", choices=ON_ERROR, dest="on_error",
                   help="stop: the first slide or tile that cannot be read ends the run; skip: "
                        "leave out slides that cannot be opened or planned and the patches of "
                        "tiles that do not decode, and report them")
    p.add_argument("--reader", default="auto", choices=READERS,
                   help="how slides are opened (openslide: vendor formats, extra 'openslide')")
    p.add_argument("--labels-from-dirs", action="store_true",
                   help="SRC is one folder whose sub-folders name the classes")
    p.add_argument("--annotations", default=None, metavar="PATH",
                   help="regions drawn on the slides: a QuPath GeoJSON, ASAP or Aperio XML "
                        "file (one slide), or a folder with NAME.geojson|.json|.xml per slide "
                        "NAME.*; alone, only patches inside regions are kept")
    p.add_argument("--labels-from-annotations", action="store_true",
                   help="label each patch by the class covering most of it (see "
                        "--min-annotation)")
    p.add_argument("--min-annotation", type=fraction, default=None, metavar="F",
                   help="fraction of a patch a class (or, without labels, the regions) must "
                        "cover (default 0.5)")
    p.add_argument("--background", default=None, metavar="NAME",
                   help="label patches no class covers enough NAME instead of leaving them out")
    p.add_argument("--include-class", action="append", default=None, metavar="NAME",
                   dest="include_class", help="only regions of this class (repeatable)")
    p.add_argument("--exclude-class", action="append", default=None, metavar="NAME",
                   dest="exclude_class", help="no regions of this class (repeatable)")


def _refuse(given: dict[str, bool], why: str) -> None:
    """Raise for the first flag ``given`` that the chosen plan does not take."""
    for flag, present in given.items():
        if present:
            raise InvalidArgumentError(f"{flag} {why}")


def plan_from_args(args: argparse.Namespace) -> tuple[SlideSet, PatchPlan]:
    """The slides ``args.sources`` names (opened with ``--series``/``--reader``) and the plan
    the flags describe: :func:`~gigapatch.grid`, or :func:`~gigapatch.random` with
    ``--random N``; flags of the other kind are an error."""
    on_error = check_on_error(getattr(args, "on_error", "stop"))
    sources = find_slides(args.sources, labels_from_dirs=args.labels_from_dirs).open(
        series=args.series, reader=args.reader, on_error=on_error)
    if args.min_annotation == 0:
        raise InvalidArgumentError("--min-annotation must be in (0, 1]; got 0")
    _refuse({"--mpp-tolerance": args.mpp_tolerance is not None
             and args.mpp is None and args.magnification is None},
            "applies to --mpp or --magnification; got it without either")
    if args.mpp_tolerance is None:
        args.mpp_tolerance = MPP_TOLERANCE
    regions = {
        "annotations": args.annotations, "labels_from_annotations": args.labels_from_annotations,
        "min_annotation": args.min_annotation, "background": args.background,
        "include_classes": args.include_class, "exclude_classes": args.exclude_class,
    }
    if args.random is None:
        _refuse(
            {"--seed": args.seed is not None, "--weights": args.weights is not None,
             "--per-slide": args.per_slide, "--balanced": args.balanced},
            "applies to --random; got it without --random",
        )
        return sources, grid(
            sources, args.size, args.stride, padding=args.padding, dilation=args.dilation,
            level=args.level, mpp=args.mpp, magnification=args.magnification,
            mpp_tolerance=args.mpp_tolerance, fill=args.fill, min_tissue=args.min_tissue,
            on_error=on_error, **regions)
    _refuse(
        {"--stride": args.stride is not None, "--padding": args.padding != "valid",
         "--dilation": args.dilation != 1},
        "applies to grids; random patches are always whole (got it with --random)",
    )
    return sources, random(
        sources, args.size, args.random, args.seed, level=args.level, mpp=args.mpp,
        magnification=args.magnification, mpp_tolerance=args.mpp_tolerance,
        weights=args.weights, min_tissue=args.min_tissue, per_slide=args.per_slide,
        balance=args.balanced, on_error=on_error, **regions)
