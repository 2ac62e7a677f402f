"""Vendor formats through OpenSlide (the ``openslide`` extra): MRXS, VMS/VMU, NDPI, SCN, BIF…

OpenSlide renders regions as premultiplied ARGB; openslide-python un-premultiplies them into
RGBA. A `Slide` wants RGB, so pixels are composited over the slide's background colour
(``openslide.background-color``, white when the file does not give one): an opaque pixel
keeps its colour exactly (what ``read_region(...).convert("RGB")`` gives), a transparent one
(outside the scanned area of MRXS, VMS, BIF… files) becomes the background, and a partly
transparent one (rare: edges of some formats) is blended with it.

Level geometry follows the other readers: ``Level.downsample`` is (level-0 height / level
height, level-0 width / level width). OpenSlide maps a level-0 coordinate to a level with one
downsample per level (the mean of both axes); a read at level pixel ``(y, x)`` asks OpenSlide
for level-0 ``(round(x · d), round(y · d))``. Where ``d`` is not an integer, OpenSlide itself
may shift that read by a fraction of a pixel and interpolate.

Besides the pyramid (series 0, ``"main"``), OpenSlide's associated images (``label``,
``macro``, ``thumbnail``…) are series 1, 2, … in name order: small single-level images,
decoded whole on open.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from gigapatch.errors import SlideError
from gigapatch.sources.series import Series, choose_series
from gigapatch.sources.slide import Level, Slide

__all__ = ["EXTRA_HINT", "OpenSlideReader", "load_openslide", "open_openslide", "vendor_of"]

#: How to get OpenSlide, for messages.
EXTRA_HINT = "pip install 'gigapatch[openslide]'"
_MAIN = "main"


def load_openslide() -> Any | None:
    """The ``openslide`` module, or ``None`` when it (or its library) is not installed."""
    try:
        import openslide
    except (ImportError, OSError):
        return None
    return openslide


def _require_openslide(path: str) -> Any:
    module = load_openslide()
    if module is None:
        raise SlideError(
            f"{path!r}: reader 'openslide' needs OpenSlide, which is not installed: {EXTRA_HINT}"
        )
    return module


def vendor_of(path: str | os.PathLike[str]) -> str | None:
    """OpenSlide's vendor name for ``path`` (``"mirax"``, ``"hamamatsu"``…), or ``None``.

    ``None`` also when OpenSlide is not installed.
    """
    module = load_openslide()
    if module is None:
        return None
    try:
        vendor = module.OpenSlide.detect_format(os.fspath(path))
    except Exception:  # OpenSlide raises its own errors on unreadable files
        return None
    return None if vendor is None else str(vendor)


def _number(value: str | None) -> float | None:
    try:
        number = float(value) if value is not None else None
    except ValueError:
        return None
    return number if number is not None and np.isfinite(number) and number > 0 else None


def background_of(value: str | None) -> np.ndarray:
    """An ``RRGGBB`` hex colour as a (3,) uint8 array; white when missing or malformed."""
    try:
        if value is not None and len(value) == 6:
            return np.frombuffer(bytes.fromhex(value), np.uint8).copy()
    except ValueError:
        pass
    return np.full(3, 255, np.uint8)


def rgba_to_rgb(rgba: np.ndarray, background: np.ndarray, out: np.ndarray) -> None:
    """Composite straight (un-premultiplied) RGBA over ``background`` into ``out`` (RGB, uint8).

    Opaque pixels keep their colour, transparent ones take ``background``, the others
    ``rint((c · a + b · (255 − a)) / 255)``.
    """
    out[...] = rgba[..., :3]
    alpha = rgba[..., 3]
    partial = alpha != 255
    if not partial.any():
        return
    a = alpha[partial].astype(np.uint32)[:, None]
    c = rgba[..., :3][partial].astype(np.uint32)
    blended = (c * a + background.astype(np.uint32) * (255 - a) + 127) // 255
    out[partial] = blended.astype(np.uint8)


class OpenSlideReader:
    """Reads the pyramid of a file OpenSlide opens (thread-safe: OpenSlide is).

    Parameters
    ----------
    path
        The slide file.
    osr
        An open ``openslide.OpenSlide`` of it.
    """

    dtype: np.dtype[Any] = np.dtype(np.uint8)
    channels: int = 3

    def __init__(self, path: str, osr: Any) -> None:
        self.path = path
        self._osr: Any | None = osr
        self._lock = threading.Lock()
        props = osr.properties
        self.format = f"openslide-{props.get('openslide.vendor') or 'unknown'}"
        w0, h0 = osr.dimensions
        levels = []
        for k, (w, h) in enumerate(osr.level_dimensions):
            tile = (int(props.get(f"openslide.level[{k}].tile-height", 0)) or min(h, 256),
                    int(props.get(f"openslide.level[{k}].tile-width", 0)) or min(w, 256))
            levels.append(Level(shape=(int(h), int(w)), downsample=(h0 / h, w0 / w), tile=tile,
                                compression="unknown"))
        self.levels = tuple(levels)
        self._downsamples = tuple(float(d) for d in osr.level_downsamples)
        self.mpp = _number(props.get("openslide.mpp-x"))
        self.magnification = _number(props.get("openslide.objective-power"))
        self.background = background_of(props.get("openslide.background-color"))
        associated = sorted(osr.associated_images)
        self.series = (
            Series(0, _MAIN, (int(h0), int(w0)), len(levels)),
            *(Series(k, name, _associated_shape(osr, name), 1)
              for k, name in enumerate(associated, start=1)),
        )
        self.series_index = 0

    def _handle(self) -> Any:
        with self._lock:
            if self._osr is None:
                module = _require_openslide(self.path)
                try:
                    self._osr = module.OpenSlide(self.path)
                except Exception as exc:
                    raise SlideError(f"cannot reopen {self.path!r}: {exc}") from None
            return self._osr

    def read_level(self, level: int, y: int, x: int, out: np.ndarray) -> None:
        """Fill ``out`` (h, w, 3) with the level pixels whose top-left is (y, x)."""
        h, w = out.shape[:2]
        d = self._downsamples[level]
        location = (round(x * d), round(y * d))
        try:
            region = self._handle().read_region(location, level, (w, h))
        except SlideError:
            raise
        except Exception as exc:  # OpenSlideError latches: reopen on the next read
            self.close()
            raise SlideError(
                f"{self.path!r}: OpenSlide cannot read level {level} region y={y}, x={x}, "
                f"height={h}, width={w}: {exc}"
            ) from None
        rgba_to_rgb(np.asarray(region), self.background, out)

    def close(self) -> None:
        with self._lock:
            if self._osr is not None:
                self._osr.close()
                self._osr = None


def _associated_shape(osr: Any, name: str) -> tuple[int, int]:
    props = osr.properties
    h = props.get(f"openslide.associated.{name}.height")
    w = props.get(f"openslide.associated.{name}.width")
    if h is None or w is None:  # not announced: decode it to learn its size
        w, h = osr.associated_images[name].size
    return int(h), int(w)


class AssociatedReader:
    """An OpenSlide associated image (label, macro, thumbnail), decoded whole on open."""

    dtype: np.dtype[Any] = np.dtype(np.uint8)
    channels: int = 3
    mpp: float | None = None
    magnification: float | None = None

    def __init__(self, main: OpenSlideReader, osr: Any, index: int) -> None:
        entry = main.series[index]
        image = np.asarray(osr.associated_images[entry.name].convert("RGBA"))
        self.image = np.empty((*image.shape[:2], 3), np.uint8)
        rgba_to_rgb(image, main.background, self.image)
        h, w = self.image.shape[:2]
        self.format = main.format
        self.levels: tuple[Level, ...] = (
            Level(shape=(h, w), downsample=(1.0, 1.0), tile=(h, w), compression="unknown"),
        )
        self.series = main.series
        self.series_index = index

    def read_level(self, level: int, y: int, x: int, out: np.ndarray) -> None:
        h, w = out.shape[:2]
        out[...] = self.image[y : y + h, x : x + w]

    def close(self) -> None:
        """Nothing to release: the image is in memory."""


def open_openslide(path: str | os.PathLike[str], *, series: int | str | None = None) -> Slide:
    """Open a slide through OpenSlide as a :class:`~gigapatch.sources.slide.Slide`.

    Parameters
    ----------
    path
        Any file OpenSlide reads (for MRXS the ``.mrxs`` file next to its data folder, for
        VMS/VMU the text file that names the image files).
    series
        ``None`` or 0 (``"main"``): the pyramid; an associated image by index or name.

    Raises
    ------
    SlideError
        OpenSlide is not installed (the message says how to install it), or it cannot open
        the file.
    """
    path = os.fspath(path)
    module = _require_openslide(path)
    try:
        osr = module.OpenSlide(path)
    except Exception as exc:  # OpenSlideUnsupportedFormatError, OpenSlideError
        raise SlideError(f"{path!r} cannot be opened by OpenSlide: {exc}") from None
    main = OpenSlideReader(path, osr)
    try:
        index = choose_series(main.series, 0 if series is None else series, path)
        reader = main if index == 0 else AssociatedReader(main, osr, index)
    except Exception:
        main.close()
        raise
    if reader is not main:  # the associated image is in memory: no handle to keep
        main.close()
    return Slide(reader, name=Path(path).name, path=os.path.abspath(path),
                 reopen=(_reopen, (os.path.abspath(path), index)))


def _reopen(path: str, series: int) -> Slide:
    return open_openslide(path, series=series)
