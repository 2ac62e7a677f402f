"""Slide thumbnails from a low pyramid level, and what is drawn on them.

A thumbnail keeps the slide's aspect ratio with its larger side ``width``
pixels; level-0 pixel (y, x) lands on thumbnail pixel ``(y · sy, x · sx)``
with ``sy = th / H0``, ``sx = tw / W0``. A patch whose level-0 footprint is
``h0 × w0`` at (y, x) is outlined (1 pixel) on rows ``⌊y·sy⌋`` and
``max(⌊(y+h0)·sy⌋ − 1, ⌊y·sy⌋)`` and the matching columns: its interior keeps
the thumbnail's pixels. Above ``max_boxes`` patches a heat map of how many
patches cover each pixel replaces the boxes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gigapatch.plan.masks import thumbnail
from gigapatch.preview.canvas import (
    MASK_COLOUR,
    Key,
    heat_colours,
    label_colour,
    label_name,
)
from gigapatch.sources import Slide

__all__ = [
    "Extents",
    "annotate",
    "box_extents",
    "slide_thumbnail",
    "thumbnail_level",
    "thumbnail_shape",
    "to_rgb8",
]

#: Opacity of the heat map over the thumbnail.
HEAT_ALPHA = 0.6


def thumbnail_level(slide: Slide, width: int) -> int:
    """The level a ``width``-pixel thumbnail is made from.

    The coarsest level whose larger side is at least ``width``; when only
    level 0 is that large and it is more than twice ``width``, level 1
    instead (upscaled): level 0 of a pyramid is never read for a picture.
    When no level is that large, level 0 (it is then small).
    """
    sides = [max(lvl.shape) for lvl in slide.levels]
    big = [k for k, side in enumerate(sides) if side >= width]
    k = big[-1] if big else 0
    if k == 0 and len(sides) > 1 and sides[0] > 2 * width:
        k = 1
    return k


def thumbnail_shape(shape0: Sequence[int], width: int) -> tuple[int, int]:
    """(th, tw) of the thumbnail of a level-0 ``shape0``: larger side ``width``."""
    h0, w0 = int(shape0[0]), int(shape0[1])
    scale = width / max(h0, w0)
    return max(1, round(h0 * scale)), max(1, round(w0 * scale))


def to_rgb8(pixels: np.ndarray, dtype: np.dtype | None = None) -> np.ndarray:
    """(h, w, C) pixels as (h, w, 3) uint8 for display.

    ``dtype`` is the data's own type when ``pixels`` are block means of it
    (default: ``pixels.dtype``). uint8 is shown as it is (rounded); floats in
    [0, 1] are scaled by 255; anything else is stretched linearly from its
    0.5th to its 99.5th percentile. One channel is shown grey, two as the
    first in grey, more as the first three.
    """
    a = np.asarray(pixels)
    kind = np.dtype(a.dtype if dtype is None else dtype)
    if a.ndim == 2:
        a = a[..., None]
    a = a[..., :3] if a.shape[2] >= 3 else np.repeat(a[..., :1], 3, axis=2)
    f = a.astype(np.float64)
    if kind == np.uint8:
        pass
    elif kind.kind == "f" and f.size and f.min() >= 0 and f.max() <= 1:
        f = f * 255.0
    elif f.size:
        lo, hi = np.percentile(f, [0.5, 99.5])
        f = (f - lo) * (255.0 / max(float(hi - lo), 1e-12))
    return np.clip(np.rint(f), 0, 255).astype(np.uint8)


def slide_thumbnail(slide: Slide, width: int) -> np.ndarray:
    """(th, tw, 3) uint8 thumbnail of ``slide`` (see :func:`thumbnail_shape`), read from
    :func:`thumbnail_level` only, block-averaged while read, then resized by Pillow."""
    from PIL import Image

    level = thumbnail_level(slide, width)
    block = thumbnail(slide, level, max_side=2 * width)  # float32 block means, read in strips
    rgb = to_rgb8(block, slide.dtype)
    th, tw = thumbnail_shape(slide.shape, width)
    image = Image.fromarray(rgb)
    method = Image.Resampling.BOX if image.width >= tw else Image.Resampling.BILINEAR
    return np.asarray(image.resize((tw, th), method)).copy()


@dataclass(frozen=True)
class Extents:
    """Pixel rows ``y0…y1`` and columns ``x0…x1`` (inclusive) of boxes on a thumbnail."""

    y0: np.ndarray
    y1: np.ndarray
    x0: np.ndarray
    x1: np.ndarray

    def __len__(self) -> int:
        return len(self.y0)


def box_extents(
    y: np.ndarray, x: np.ndarray, footprint: tuple[float, float], scale: tuple[float, float]
) -> Extents:
    """Thumbnail extents of level-0 boxes at (``y``, ``x``) of ``footprint`` (h0, w0) level-0
    pixels, for ``scale`` (sy, sx) thumbnail pixels per level-0 pixel; at least one pixel."""
    yf, xf = np.asarray(y, np.float64), np.asarray(x, np.float64)
    (h0, w0), (sy, sx) = footprint, scale
    y0, x0 = np.floor(yf * sy).astype(np.int64), np.floor(xf * sx).astype(np.int64)
    y1 = np.maximum(np.floor((yf + h0) * sy).astype(np.int64) - 1, y0)
    x1 = np.maximum(np.floor((xf + w0) * sx).astype(np.int64) - 1, x0)
    return Extents(y0, y1, x0, x1)


def _draw_boxes(img: np.ndarray, ext: Extents, colours: np.ndarray) -> None:
    h, w = img.shape[:2]
    for i in range(len(ext)):
        y0, y1, x0, x1 = int(ext.y0[i]), int(ext.y1[i]), int(ext.x0[i]), int(ext.x1[i])
        ya, yb, xa, xb = max(y0, 0), min(y1, h - 1), max(x0, 0), min(x1, w - 1)
        if ya > yb or xa > xb:
            continue  # wholly outside (padding="same")
        c = colours[i]
        for yy in (y0, y1):
            if 0 <= yy < h:
                img[yy, xa : xb + 1] = c
        for xx in (x0, x1):
            if 0 <= xx < w:
                img[ya : yb + 1, xx] = c


def _heat(img: np.ndarray, ext: Extents) -> int:
    """Blend how many boxes cover each pixel onto ``img``; return the largest count."""
    h, w = img.shape[:2]
    ya, yb = np.clip(ext.y0, 0, h), np.clip(ext.y1 + 1, 0, h)
    xa, xb = np.clip(ext.x0, 0, w), np.clip(ext.x1 + 1, 0, w)
    inside = (ya < yb) & (xa < xb)
    ya, yb, xa, xb = ya[inside], yb[inside], xa[inside], xb[inside]
    diff = np.zeros((h + 1, w + 1), np.int64)
    np.add.at(diff, (ya, xa), 1)
    np.add.at(diff, (ya, xb), -1)
    np.add.at(diff, (yb, xa), -1)
    np.add.at(diff, (yb, xb), 1)
    count = diff.cumsum(0).cumsum(1)[:h, :w]
    peak = int(count.max(initial=0))
    if peak:
        hit = count > 0
        colour = heat_colours(count[hit] / peak).astype(np.float64)
        img[hit] = np.rint((1 - HEAT_ALPHA) * img[hit] + HEAT_ALPHA * colour).astype(np.uint8)
    return peak


def _outline(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The boundary pixels of ``mask`` (≥ 0.5 is inside) stretched over ``shape``."""
    m = np.asarray(mask)
    m = m >= 0.5 if m.dtype.kind == "f" else m != 0
    (mh, mw), (th, tw) = m.shape, shape
    rows = np.minimum(((np.arange(th) + 0.5) * mh / th).astype(np.int64), mh - 1)
    cols = np.minimum(((np.arange(tw) + 0.5) * mw / tw).astype(np.int64), mw - 1)
    big = m[rows][:, cols]
    p = np.pad(big, 1, mode="edge")
    inner = p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:]
    edge: np.ndarray = big & ~inner
    return edge


def _polylines(img: np.ndarray, lines: Sequence[tuple[np.ndarray, tuple[int, int, int]]]) -> None:
    """Draw each closed polyline onto ``img`` in place, 2 pixels wide (Pillow)."""
    from PIL import Image, ImageDraw

    canvas = Image.fromarray(img)
    draw = ImageDraw.Draw(canvas)
    for points, colour in lines:
        xy = [(float(x), float(y)) for x, y in points]
        draw.line([*xy, xy[0]], fill=colour, width=2, joint="curve")
    img[:] = np.asarray(canvas)


def annotate(
    thumb: np.ndarray,
    ext: Extents,
    labels: np.ndarray,
    classes: Sequence[str],
    *,
    max_boxes: int,
    mask: np.ndarray | None,
    lines: Sequence[tuple[np.ndarray, tuple[int, int, int]]] = (),
    line_keys: Sequence[Key] = (),
) -> tuple[np.ndarray, list[Key]]:
    """``thumb`` with a heat map (more than ``max_boxes`` boxes), the outline of ``mask``, the
    closed polylines ``lines`` ((n, 2) thumbnail (x, y), colour: region outlines), and the
    boxes (coloured by label, at most ``max_boxes``), and the legend of what was drawn
    (``line_keys`` for the lines)."""
    img = np.array(thumb, np.uint8)
    keys: list[Key] = []
    heat = len(ext) > max_boxes
    if heat:
        peak = _heat(img, ext)
        keys.append(Key("ramp", (0, 0, 0),
                        f"patches per pixel, 1 to {peak} (heat map: {len(ext):,} patches > "
                        f"{max_boxes:,})"))
    if mask is not None:
        img[_outline(mask, img.shape[:2])] = MASK_COLOUR
        keys.append(Key("line", MASK_COLOUR, "tissue mask"))
    if lines:
        _polylines(img, lines)
        keys.extend(line_keys)
    if not heat:
        labels = np.asarray(labels, np.int64)
        present = [int(v) for v in np.unique(labels)]
        palette = {v: label_colour(v) for v in present}
        colours = np.array([palette[int(v)] for v in labels], np.uint8).reshape(-1, 3)
        _draw_boxes(img, ext, colours)
        keys.extend(Key("box", palette[v], label_name(v, classes)) for v in present)
    return img, keys
