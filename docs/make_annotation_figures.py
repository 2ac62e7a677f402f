"""Draw the picture of docs/annotations.md with gigapatch.preview (about 10 s).

Run ``python docs/make_annotation_figures.py [--out DIR]``. It synthesizes a
40× slide (3072 × 4096 at 0.25 µm/px), writes regions in QuPath's GeoJSON
export shape (stroma with a hole, a tumour drawn inside it, a second tumour,
necrosis as a two-part MultiPolygon), plans 128² patches at 20× (0.5 µm/px):
300 random ones balanced over the three classes and "normal" background on
tissue, and writes into ``DIR`` (default ``docs/img/``):

* ``annotations-plan.png``: the plan on the slide's thumbnail with the region
  outlines under the patch boxes, each in its class's colour (``preview.plan``).

The picture is reduced to 64 colours (no dithering) so that the PNG stays small.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

import gigapatch
from gigapatch import preview
from gigapatch.synth import write_qupath_geojson

HERE = Path(__file__).resolve().parent


def _ring(*xy: tuple[float, float]) -> np.ndarray:
    return np.array(xy, np.float64)


def _blob(cx: float, cy: float, r: float, wobble: float, n: int = 48) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    rr = r * (1 + wobble * np.sin(3 * t) + 0.5 * wobble * np.cos(5 * t))
    return np.stack([cx + rr * np.cos(t), cy + rr * np.sin(t)], 1)


#: (class, [(exterior, [holes])]) in level-0 (x, y) of a 3072 x 4096 slide.
SHAPES = [
    ("stroma", [(_blob(1250, 780, 640, 0.12), [_blob(900, 700, 150, 0.1, 24)])]),
    ("tumor", [(_blob(1550, 850, 260, 0.15), []), (_blob(3300, 1150, 330, 0.1), [])]),
    ("necrosis", [(_blob(3100, 2350, 230, 0.2), []), (_blob(3650, 2700, 170, 0.2), [])]),
]


def _save(image: Image.Image, path: Path) -> None:
    image.quantize(colors=64, dither=Image.Dither.NONE).save(path, optimize=True)
    print(f"wrote {path} ({image.width}x{image.height})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Draw the picture of docs/annotations.md.")
    parser.add_argument("--out", type=Path, default=HERE / "img", help="folder for the PNG")
    parser.add_argument("--width", type=int, default=800, help="width of the picture")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        path = gigapatch.synthesize(Path(tmp) / "slide.svs", (3072, 4096), seed=3)  # 40x
        regions = write_qupath_geojson(Path(tmp) / "slide.geojson", SHAPES)
        slide = gigapatch.open(path)
        plan = gigapatch.random(slide, 128, 300, seed=0, mpp=0.5, annotations=regions,
                                labels_from_annotations=True, balance=True, background="normal",
                                min_tissue=0.5)
        _save(preview.plan(slide, plan, width=args.width), args.out / "annotations-plan.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
