"""Draw the pictures of docs/sampling.md: a slide thumbnail with patch boxes.

Run ``python docs/make_sampling_figures.py`` (a minute: it synthesizes an
8192² slide unless ``--slide`` names one). Writes small PNGs to ``docs/img/``:

* ``sampling-grid.png``: a VALID 512² grid, patches kept by ``min_tissue=0.5`` in green;
* ``sampling-same.png``: a SAME grid of 1000² patches overhanging every edge (padding grey);
* ``sampling-random.png``: 150 uniform random 384² patches;
* ``sampling-weighted.png``: 150 patches weighted by tissue density, mask tinted.

Only the thumbnail level is read, as the planners do.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import imagecodecs
import numpy as np

import gigapatch
from gigapatch.plan.masks import tissue_mask

HERE = Path(__file__).resolve().parent
GREEN, BLUE, RED, GREY = (20, 150, 60), (40, 80, 220), (220, 40, 40), (200, 200, 200)


def _box(img: np.ndarray, y: float, x: float, h: float, w: float, color, scale: float,
         offset: int = 0) -> None:
    """Draw a 1-pixel rectangle outline of a level-0 box on a thumbnail."""
    H, W = img.shape[:2]
    y0, x0 = int(y * scale) + offset, int(x * scale) + offset
    y1, x1 = int((y + h) * scale) + offset - 1, int((x + w) * scale) + offset - 1
    ya, yb, xa, xb = max(y0, 0), min(y1, H - 1), max(x0, 0), min(x1, W - 1)
    if ya > yb or xa > xb:
        return
    for yy in (y0, y1):
        if 0 <= yy < H:
            img[yy, xa : xb + 1] = color
    for xx in (x0, x1):
        if 0 <= xx < W:
            img[ya : yb + 1, xx] = color


def _boxes(img, plan, scale, color, offset=0, keep=None):
    """Outline every patch of a level-0 plan; patches with ``keep`` false in grey."""
    h, w = plan.span
    for i in range(len(plan)):
        c = color if keep is None or keep[i] else GREY
        _box(img, plan.y[i], plan.x[i], h, w, c, scale, offset)


def _save(img: np.ndarray, name: str) -> None:
    (HERE / "img" / name).write_bytes(imagecodecs.png_encode(img, level=9))
    print(f"wrote docs/img/{name}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Draw the sampling pictures of the docs.")
    parser.add_argument("--slide", default=None, help="a slide (default: synthesize 8192²)")
    args = parser.parse_args(argv)
    (HERE / "img").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        path = args.slide or gigapatch.synthesize(Path(tmp) / "slide.svs", 8192, seed=2)
        slide = gigapatch.open(path)
        level = len(slide.levels) - 1
        lh, lw = slide.levels[level].shape
        thumb = slide.read(0, 0, lh, lw, level=level) // 24 * 24 + 12  # posterized: small PNGs
        scale = lh / slide.shape[0]

        img = thumb.copy()
        all_patches = gigapatch.grid(slide, 512, mask="tissue")
        _boxes(img, all_patches, scale, GREEN, keep=all_patches.tissue >= 0.5)
        _save(img, "sampling-grid.png")

        plan = gigapatch.grid(slide, 1000, padding="same")
        pad = int(-plan.y.min() * scale) + 4
        canvas = np.full((lh + 2 * pad, lw + 2 * pad, 3), 235, np.uint8)
        canvas[pad : pad + lh, pad : pad + lw] = thumb
        _boxes(canvas, plan, scale, BLUE, offset=pad)
        _save(canvas, "sampling-same.png")

        img = thumb.copy()
        _boxes(img, gigapatch.random(slide, 384, 150, seed=0), scale, RED)
        _save(img, "sampling-random.png")

        mask = tissue_mask(slide)
        img = thumb.copy()  # tissue tinted yellow
        my, mx = np.linspace(0, mask.shape[0] - 1, lh).astype(int), np.linspace(
            0, mask.shape[1] - 1, lw).astype(int)
        tint = mask[my][:, mx]
        img[tint] = (0.8 * img[tint] + 0.2 * np.array([255, 230, 0])).astype(np.uint8)
        _boxes(img, gigapatch.random(slide, 384, 150, seed=0, weights="tissue"), scale, RED)
        _save(img, "sampling-weighted.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
