"""Draw the pictures of docs/first-hour.md with gigapatch.preview (about 20 s).

Run ``python docs/make_first_hour_figures.py [--out DIR]``. It synthesizes a
small 40× slide (3072 × 4096 at 0.25 µm/px), plans 256² patches at 20×
(0.5 µm/px) on its tissue, extracts them, and writes into ``DIR`` (default
``docs/img/``):

* ``first-hour-plan.png``: the plan on the slide's thumbnail (``preview.plan``);
* ``first-hour-sheet.png``: a contact sheet of the extracted patches (``preview.sheet``);
* ``first-hour-stored.png``: the stored patches' boxes (``preview.store_boxes``).

Pictures are reduced to 64 colours (no dithering) so that the PNGs stay small in the repository.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from PIL import Image

import gigapatch
from gigapatch import preview

HERE = Path(__file__).resolve().parent


def _save(image, path: Path) -> None:
    image.quantize(colors=64, dither=Image.Dither.NONE).save(path, optimize=True)
    print(f"wrote {path} ({image.width}x{image.height})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Draw the pictures of docs/first-hour.md.")
    parser.add_argument("--out", type=Path, default=HERE / "img", help="folder for the PNGs")
    parser.add_argument("--width", type=int, default=800, help="width of the slide pictures")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        path = gigapatch.synthesize(Path(tmp) / "slide.svs", (3072, 4096), seed=7)  # 40x
        slide = gigapatch.open(path)
        plan = gigapatch.grid(slide, 256, mpp=0.5, min_tissue=0.5)  # 20x, on tissue
        _save(preview.plan(slide, plan, width=args.width), args.out / "first-hour-plan.png")
        store = gigapatch.extract_to_zarr(slide, plan, Path(tmp) / "patches.zarr")
        _save(preview.sheet(store, n=24, tile=128, columns=8),
              args.out / "first-hour-sheet.png")
        _save(preview.store_boxes(store, 0, width=args.width),
              args.out / "first-hour-stored.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
