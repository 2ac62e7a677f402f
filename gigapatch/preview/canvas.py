"""Pillow at arm's length: the lazy import, fonts, colours, and the header (title and legend).

Pillow is an extra (``pip install 'gigapatch[preview]'``): nothing here imports
it at module level, so ``import gigapatch.preview`` works without it and only
drawing asks for it (:func:`require_pil`).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from gigapatch.errors import MissingExtraError

if TYPE_CHECKING:
    from PIL import Image, ImageDraw, ImageFont

    Font = ImageFont.FreeTypeFont | ImageFont.ImageFont

__all__ = [
    "BACKGROUND",
    "LABEL_COLOURS",
    "MASK_COLOUR",
    "MAX_WIDTH",
    "REGION_COLOUR",
    "UNLABELLED",
    "Key",
    "fit_text",
    "font",
    "heat_colours",
    "label_colour",
    "label_name",
    "require_pil",
    "with_header",
]

#: Widest picture (and largest sheet cell) drawn, in pixels: beyond it, a picture is a mistake.
MAX_WIDTH = 1 << 15

#: Box colours of labels 0, 1, 2… (cycling): distinct on H&E pinks and purples and on white.
LABEL_COLOURS: tuple[tuple[int, int, int], ...] = (
    (230, 25, 75),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 200, 200),
    (240, 50, 230),
    (128, 128, 0),
    (0, 0, 128),
    (170, 110, 40),
)
#: Box colour of unlabelled patches (label -1).
UNLABELLED = (0, 0, 0)
#: Colour of the tissue mask's outline.
MASK_COLOUR = (40, 190, 60)
#: Colour of region outlines when patches are not labelled by their class.
REGION_COLOUR = (255, 200, 0)
#: Background of the header and of sheet margins.
BACKGROUND = (255, 255, 255)
HEADER_FONT = 14
MARGIN = 8


def require_pil() -> None:
    """Import Pillow, or raise :class:`MissingExtraError` naming the extra that installs it."""
    try:
        from PIL import Image, ImageDraw, ImageFont  # noqa: F401
    except ImportError:
        raise MissingExtraError(
            "gigapatch.preview needs Pillow to draw pictures: pip install 'gigapatch[preview]'"
        ) from None


@functools.lru_cache(maxsize=8)
def font(size: int) -> Font:
    """Pillow's bundled font at ``size`` px (its fixed bitmap font on Pillow < 10.1 or
    without FreeType)."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: no size
        return ImageFont.load_default()


_SPELLING = {"µ": "u", "×": "x", "·": "-", "…": "..."}


@functools.lru_cache(maxsize=8)
def _spelling(face: Font) -> dict[int, str]:
    """ASCII spellings of the characters ``face`` has no glyph for (it draws them as the
    missing-glyph box, like a private-use code point)."""
    from PIL import ImageFont

    if not isinstance(face, ImageFont.FreeTypeFont):
        return str.maketrans(_SPELLING)

    def shape(text: str) -> tuple[tuple[int, int], bytes]:
        mask = face.getmask(text)
        return mask.size, bytes(mask)

    missing = shape("\U000FFFFF")
    return str.maketrans({c: a for c, a in _SPELLING.items() if shape(c) == missing})


def _plain(text: str, face: Font) -> str:
    """``text`` with µ, ×, · and … spelled in ASCII where ``face`` lacks them."""
    return text.translate(_spelling(face))


def fit_text(text: str, face: Font, width: float) -> str:
    """``text`` as drawable by ``face``, cut with an ellipsis to at most ``width`` pixels."""
    text = _plain(text, face)
    if face.getlength(text) <= width:
        return text
    dots = _plain("…", face)
    while text and face.getlength(text + dots) > width:
        text = text[:-1]
    return text + dots


def line_height(face: Font) -> int:
    """Pixels between baselines of ``face``."""
    _, top, _, bottom = face.getbbox("Ayg|µ")
    return int(bottom - top) + 4


#: Heat map colours from few (0) to most (1) patches per pixel.
_HEAT_STOPS = np.array([[255, 235, 80], [250, 130, 20], [180, 0, 30]], np.float64)


def heat_colours(t: np.ndarray) -> np.ndarray:
    """(..., 3) uint8 colours of densities ``t`` in [0, 1] (yellow, orange, dark red)."""
    t = np.clip(np.asarray(t, np.float64), 0.0, 1.0) * (len(_HEAT_STOPS) - 1)
    i = np.minimum(t.astype(np.int64), len(_HEAT_STOPS) - 2)
    w = (t - i)[..., None]
    out: np.ndarray = np.rint(_HEAT_STOPS[i] * (1 - w) + _HEAT_STOPS[i + 1] * w).astype(np.uint8)
    return out


def label_colour(label: int) -> tuple[int, int, int]:
    """The box colour of ``label`` (-1: :data:`UNLABELLED`)."""
    return UNLABELLED if label < 0 else LABEL_COLOURS[label % len(LABEL_COLOURS)]


def label_name(label: int, classes: Sequence[str]) -> str:
    """``classes[label]``, else ``label N``; ``unlabelled`` for -1."""
    if label < 0:
        return "unlabelled"
    return str(classes[label]) if label < len(classes) else f"label {label}"


@dataclass(frozen=True)
class Key:
    """One legend entry: a swatch (box outline, line or heat ramp) and its text."""

    kind: Literal["box", "line", "ramp"]
    colour: tuple[int, int, int]
    text: str


def _swatch(draw: ImageDraw.ImageDraw, key: Key, x: int, y: int, size: int) -> None:
    if key.kind == "box":
        draw.rectangle((x, y, x + size - 1, y + size - 1), outline=key.colour, width=2)
    elif key.kind == "line":
        draw.line((x, y + size // 2, x + size - 1, y + size // 2), fill=key.colour, width=2)
    else:
        ramp = heat_colours(np.linspace(0.0, 1.0, 2 * size))
        for i, c in enumerate(ramp):
            draw.line((x + i, y, x + i, y + size - 1), fill=tuple(int(v) for v in c))


def with_header(body: Image.Image, title: str, keys: Sequence[Key], width: int) -> Image.Image:
    """A ``width``-wide picture: ``title`` and the legend ``keys`` on top, ``body`` below at the
    left edge (the header's height is whatever the text needs; ``body`` fills the bottom rows)."""
    from PIL import Image, ImageDraw

    face = font(HEADER_FONT)
    lh = line_height(face)
    sw = lh - 4
    widths = [(2 * sw if k.kind == "ramp" else sw) + 6 + face.getlength(_plain(k.text, face))
              for k in keys]
    rows: list[list[int]] = []
    x = width
    for i, w in enumerate(widths):
        if x + w > width - MARGIN and (not rows or rows[-1]):
            rows.append([])
            x = MARGIN
        rows[-1].append(i)
        x += int(w) + 18
    top = MARGIN + lh * (1 + len(rows)) + MARGIN // 2
    canvas = Image.new("RGB", (max(width, body.width), top + body.height), BACKGROUND)
    canvas.paste(body, (0, top))
    draw = ImageDraw.Draw(canvas)
    draw.text((MARGIN, MARGIN), fit_text(title, face, width - 2 * MARGIN), fill=(0, 0, 0),
              font=face)
    for r, row in enumerate(rows):
        x, y = MARGIN, MARGIN + lh * (1 + r)
        for i in row:
            key = keys[i]
            _swatch(draw, key, x, y + 2, sw)
            x += (2 * sw if key.kind == "ramp" else sw) + 6
            draw.text((x, y), fit_text(key.text, face, width - x - MARGIN), fill=(0, 0, 0),
                      font=face)
            x += int(face.getlength(_plain(key.text, face))) + 18
    return canvas
