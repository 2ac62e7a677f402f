"""``gigapatch preview``: a picture of a plan on a slide, or a contact sheet of a store.

``preview SLIDE... [plan flags as for extract] -o plan.png`` draws the first
slide's thumbnail, tissue outline and planned patches (:func:`gigapatch.preview.plan`);
``preview STORE -o sheet.png [--n K] [--label L] [--seed K]`` a contact sheet of
stored patches (:func:`gigapatch.preview.sheet`), and with ``--slide NAME`` that
slide's thumbnail with the stored patches' boxes (:func:`gigapatch.preview.store_boxes`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gigapatch import preview
from gigapatch.cli.common import Subparsers, natural_int, positive_int
from gigapatch.cli.planargs import add_plan_arguments, plan_from_args
from gigapatch.errors import InvalidArgumentError
from gigapatch.store import PatchStore, is_store

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Subparsers) -> argparse.ArgumentParser:
    """Add ``preview SRC... -o OUT.png [plan flags | --n K --label L --slide NAME]``."""
    p = subparsers.add_parser(
        "preview", help="draw a plan on a slide, or a contact sheet of a store (PNG)")
    p.add_argument("sources", nargs="+", metavar="SRC",
                   help="slides (with the plan flags of extract) or one store")
    p.add_argument("-o", "--output", required=True, metavar="OUT.png", help="the PNG to write")
    p.add_argument("--width", type=positive_int, default=1600, help="picture width in pixels")
    p.add_argument("--max-boxes", type=positive_int, default=5000, dest="max_boxes",
                   help="above this many patches, a density heat map instead of boxes")
    p.add_argument("--slide-index", type=natural_int, default=0, dest="slide_index",
                   help="which of the planned slides to draw (default the first)")
    p.add_argument("--n", type=positive_int, default=64, help="store: patches on the sheet")
    p.add_argument("--label", type=int, default=None, help="store: only patches of this label")
    p.add_argument("--slide", default=None, metavar="NAME",
                   help="store: draw this source's thumbnail with the stored patches' boxes")
    add_plan_arguments(p, size_required=False)
    return p


def run(args: argparse.Namespace) -> int:
    """Draw the picture and save it; print where it went."""
    out = Path(args.output)
    if out.suffix.lower() != ".png":
        raise InvalidArgumentError(f"-o/--output must name a .png file; got {str(out)!r}")
    if len(args.sources) == 1 and is_store(Path(args.sources[0])):
        store = PatchStore(args.sources[0])
        if args.slide is not None:
            picture = preview.store_boxes(store, args.slide, max_boxes=args.max_boxes,
                                          width=args.width)
            what = f"the patches of {args.slide}"
        else:
            picture = preview.sheet(store, n=args.n, label=args.label,
                                    seed=0 if args.seed is None else args.seed)
            what = f"{len(picture.info.get('patches', []))} patches"
    else:
        if args.size is None:
            raise InvalidArgumentError("--size is required to preview a plan on slides")
        sources, plan = plan_from_args(args)
        if not 0 <= args.slide_index < len(sources):
            raise InvalidArgumentError(
                f"--slide-index must be in [0, {len(sources) - 1}]; got {args.slide_index}")
        picture = preview.plan(list(sources), plan, slide_index=args.slide_index,
                               max_boxes=args.max_boxes, width=args.width)
        what = f"{int((plan.slide == args.slide_index).sum())} planned patches"
    picture.save(out)
    print(f"wrote {out} ({picture.width}x{picture.height}, {what})")
    return 0
