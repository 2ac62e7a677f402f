"""The batch read behind :meth:`Slide.read_regions <gigapatch.sources.slide.Slide.read_regions>`.

Given checked arguments (level-0 corners, a size, an output array), :func:`read_batch`
maps the corners to the level, hands the regions inside it to the reader's
``read_many`` (TIFF: each touched tile decoded once in all) or ``read_level``,
and reads the regions that leave the level one at a time with ``fill``.
:func:`check_tiles` checks a ``tiles=(first, stop)`` range, which only readers
that decode by tile accept.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from gigapatch.errors import InvalidArgumentError

if TYPE_CHECKING:
    from gigapatch.sources.reader import Reader
    from gigapatch.sources.slide import Slide

__all__ = ["check_tiles", "read_batch"]


def check_tiles(slide: Slide, tiles: Any, out: Any) -> tuple[int, int]:
    """``tiles`` as ``(first, stop)`` ints, for a reader that decodes by tile."""
    if not slide.reads_tiles:
        raise InvalidArgumentError(
            f"tiles= needs a reader that decodes by tile (TIFF); {slide.name!r} is read as "
            f"{slide.format!r}")
    if out is None:
        raise InvalidArgumentError("tiles= fills part of out: pass out=")
    if (not isinstance(tiles, tuple) or len(tiles) != 2
            or not all(isinstance(v, int | np.integer) and not isinstance(v, bool)
                       for v in tiles) or not 0 <= tiles[0] < tiles[1]):
        raise InvalidArgumentError(
            f"tiles must be a pair of tile indices (first, stop), 0 <= first < stop; got "
            f"{tiles!r}")
    return int(tiles[0]), int(tiles[1])


def read_batch(
    slide: Slide, reader: Reader, ys: npt.NDArray[Any], xs: npt.NDArray[Any], height: int,
    width: int, level: int, fill: float | None, out: npt.NDArray[Any],
    tiles: tuple[int, int] | None,
) -> npt.NDArray[Any]:
    """Fill ``out`` (N, height, width, channels) with the regions at level-0 ``ys``, ``xs``.

    The arguments are checked already (:meth:`Slide.read_regions`); ``tiles``
    reads one range of the level's tiles into ``out`` and needs every region
    inside the level.
    """
    dy, dx = slide.levels[level].downsample
    ly, lx = np.rint(ys / dy).astype(np.int64), np.rint(xs / dx).astype(np.int64)
    lh, lw = slide.levels[level].shape
    inside = (ly >= 0) & (lx >= 0) & (ly + height <= lh) & (lx + width <= lw)
    if tiles is not None:
        if not inside.all():
            k = int(np.flatnonzero(~inside)[0])
            raise InvalidArgumentError(
                f"tiles= reads regions inside the level only; region {k} at y={int(ys[k])}, "
                f"x={int(xs[k])} ({height}x{width} at level {level}) leaves {slide.name!r}")
        reader.read_many(level, ly, lx, out, tiles)  # type: ignore[attr-defined]
        return out
    if not inside.all():
        if fill is None:
            k = int(np.flatnonzero(~inside)[0])
            slide.read(int(ys[k]), int(xs[k]), height, width, level)  # raises, naming it
        for k in np.flatnonzero(~inside).tolist():
            out[k] = slide.read(int(ys[k]), int(xs[k]), height, width, level, fill=fill)
    many = getattr(reader, "read_many", None)
    if inside.all() and many is not None:
        many(level, ly, lx, out)
    elif many is not None and inside.any():
        idx = np.flatnonzero(inside)
        part = np.empty((len(idx), height, width, slide.channels), slide.dtype)
        many(level, ly[idx], lx[idx], part)
        out[idx] = part
    else:
        for k in np.flatnonzero(inside).tolist():
            reader.read_level(level, int(ly[k]), int(lx[k]), out[k])
    return out
