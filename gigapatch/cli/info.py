"""``gigapatch info``: describe a slide (levels, pixel size, tiles) or a patch store."""

from __future__ import annotations

import argparse
from pathlib import Path

from gigapatch.cli.common import Subparsers, human_bytes, series_choice
from gigapatch.sources import READERS, describe_file, open_slide
from gigapatch.store import PatchStore, is_store, summarize

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Subparsers) -> argparse.ArgumentParser:
    """Add ``info PATH``."""
    p = subparsers.add_parser("info", help="describe a slide or a patch store")
    p.add_argument("path")
    p.add_argument("--series", type=series_choice, default=None, metavar="N|NAME",
                   help="image of a file holding several (default: the largest pyramid)")
    p.add_argument("--reader", default="auto", choices=READERS)
    return p


def run(args: argparse.Namespace) -> int:
    """Print what ``args.path`` is, one ``key  value`` line each (a table for pyramid levels)."""
    path = Path(args.path)
    if is_store(path):
        for key, value in summarize(PatchStore(path)):
            print(f"{key:<9} {value}")
        return 0
    slide = open_slide(path, series=args.series, reader=args.reader)
    print(f"file      {path} ({human_bytes(describe_file(path)['size'])})")
    print(f"format    {slide.format}")
    print(f"dtype     {slide.dtype} x{slide.channels}")
    print(f"mpp       {slide.mpp if slide.mpp is not None else 'unknown'}")
    mag = slide.magnification
    print(f"magnif.   {f'{mag:g}x (recorded)' if mag else 'not recorded'}")
    if len(slide.series) > 1:
        for s in slide.series:
            mark = "*" if s.index == slide.series_index else " "
            print(f"series  {mark} {s}")
    print("levels    level   height    width  downsample  mpp       tile       compression")
    for k, lvl in enumerate(slide.levels):
        (h, w), (dy, dx), (th, tw) = lvl.shape, lvl.downsample, lvl.tile
        mpp = f"{slide.mpp * dx:.4g}" if slide.mpp is not None else "-"
        print(f"          {k:>5} {h:>8} {w:>8} {dy:>11.4g}  {mpp:<9} {f'{th}x{tw}':<10} "
              f"{lvl.compression}")
    return 0
