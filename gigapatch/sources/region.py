"""OpenSlide's ``read_region`` on any :class:`~gigapatch.sources.Slide`, for code ported from it.

``slide.read_region((x, y), level, (width, height))`` gives what
``openslide.OpenSlide.read_region(...).convert("RGB")`` gives, as a NumPy
array: (x, y) first, in level-0 pixels; the size in pixels of ``level``;
pixels outside the level black (OpenSlide's transparent pixels, whose colour
``convert("RGB")`` drops). With ``as_rgba=True`` an alpha channel says which
pixels lie inside the level (255) and which outside (0).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from gigapatch.errors import InvalidArgumentError

if TYPE_CHECKING:
    from gigapatch.sources.slide import Slide

__all__ = ["read_region"]


def _pair(name: str, value: Any, what: str, positive: bool) -> tuple[int, int]:
    ok = isinstance(value, Sequence | np.ndarray) and len(value) == 2 and all(
        isinstance(v, int | np.integer) and not isinstance(v, bool) and (v > 0 or not positive)
        and -(2**63) <= v < 2**63 for v in value
    )
    if not ok:
        raise InvalidArgumentError(f"{name} must be a pair of {what}; got {value!r}")
    return int(value[0]), int(value[1])


def read_region(
    slide: Slide, location: tuple[int, int], level: int, size: tuple[int, int], *,
    as_rgba: bool = False,
) -> npt.NDArray[np.uint8]:
    """The pixels OpenSlide's ``read_region(location, level, size).convert("RGB")`` gives.

    Parameters
    ----------
    slide
        A slide of uint8 pixels with 3 channels (1-channel slides are repeated into R, G, B).
    location
        (x, y) top-left in level-0 pixels, as OpenSlide takes it (may lie outside).
    level
        Pyramid level.
    size
        (width, height) in pixels of ``level``.
    as_rgba
        Add a fourth channel: 255 inside the level, 0 outside.

    Returns
    -------
    numpy.ndarray
        (height, width, 3) uint8, or (height, width, 4) with ``as_rgba``.

    Raises
    ------
    InvalidArgumentError
        ``location`` or ``size`` is not a pair of integers (``size`` positive),
        the level does not exist, or the slide is not 8-bit RGB or grey.
    """
    x, y = _pair("location", location, "integers (x, y)", positive=False)
    width, height = _pair("size", size, "positive integers (width, height)", positive=True)
    level = slide.check_level(level)
    if slide.dtype != np.uint8 or slide.channels not in (1, 3):
        raise InvalidArgumentError(
            f"read_region gives 8-bit RGB; {slide.name!r} has {slide.channels} channels of "
            f"{slide.dtype}: use slide.read"
        )
    rgb = slide.read(y, x, height, width, level, fill=0)
    if slide.channels == 1:
        rgb = np.repeat(rgb, 3, axis=2)
    if not as_rgba:
        return rgb
    ly, lx = slide.to_level(y, x, level)
    lh, lw = slide.levels[level].shape
    rows = (np.arange(ly, ly + height) >= 0) & (np.arange(ly, ly + height) < lh)
    cols = (np.arange(lx, lx + width) >= 0) & (np.arange(lx, lx + width) < lw)
    alpha = (rows[:, None] & cols[None, :]).astype(np.uint8) * np.uint8(255)
    rgba: npt.NDArray[np.uint8] = np.concatenate([rgb, alpha[..., None]], axis=2)
    return rgba
