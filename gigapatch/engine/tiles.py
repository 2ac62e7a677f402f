"""The tiles a plan decodes: which, how many, and how fast this machine decodes them.

A job's floor is decoding its tiles: every tile a patch's footprint (its
:meth:`~gigapatch.PatchPlan.read_size` at the level read) touches, once per
run of patches the engine reads together (a shard, or a resampling batch).
:func:`tile_decodes` counts those decodes for a whole plan without reading a
pixel; :func:`decode_tiles` decodes a set of tiles once each in a tight loop on
several threads — the *decode limit* that ``gigapatch bench`` and the
estimates of ``gigapatch extract --dry-run`` measure against.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from gigapatch.plan import PatchPlan
from gigapatch.sources import Slide

__all__ = ["decode_tiles", "read_chunk", "split", "tile_decodes", "touched_tiles"]

T = TypeVar("T")

#: Tiles one read of :func:`decode_tiles` fills at once (per thread).
_BATCH = 32


def split(items: Sequence[T], workers: int, work: Callable[[Sequence[T]], None]) -> None:
    """Run ``work(items[k::workers])`` on ``workers`` threads and wait for all.

    The first exception a thread raised is raised here, after every thread ended.
    """
    errors: list[BaseException] = []

    def run(part: Sequence[T]) -> None:
        try:
            work(part)
        except BaseException as exc:  # re-raised in the caller below
            errors.append(exc)

    parts = [items[k::workers] for k in range(max(1, workers))]
    threads = [threading.Thread(target=run, args=(p,)) for p in parts if len(p)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def read_chunk(slide: Slide, plan: PatchPlan, index: int, shard_size: int) -> int:
    """Patches of source ``index`` that the engine reads in one go (tiles decoded once each).

    A shard (``shard_size`` patches) for patches read as they are; a resampling
    batch of the engine (:data:`gigapatch.engine.reading.RESAMPLE_BUDGET` bytes
    of level pixels) when resampled, if smaller.
    """
    if plan.factor_of(index) == 1.0:
        return shard_size
    from gigapatch.engine.reading import RESAMPLE_BUDGET

    rh, rw = plan.read_size(index)
    per = rh * rw * slide.channels * slide.dtype.itemsize
    return max(1, min(shard_size, RESAMPLE_BUDGET // per))


def _tile_ids(slide: Slide, level: int, ys: npt.NDArray[np.int64], xs: npt.NDArray[np.int64],
              size: tuple[int, int]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(tile index, patch index) of every tile each footprint touches, inside the level."""
    (th, tw), (lh, lw) = slide.levels[level].tile, slide.levels[level].shape
    dy, dx = slide.levels[level].downsample
    h, w = size
    ly = np.rint(np.asarray(ys) / dy).astype(np.int64)
    lx = np.rint(np.asarray(xs) / dx).astype(np.int64)
    across, down = -(-lw // tw), -(-lh // th)
    ty = (ly // th)[:, None, None] + np.arange((h - 1) // th + 2)[None, :, None]
    tx = (lx // tw)[:, None, None] + np.arange((w - 1) // tw + 2)[None, None, :]
    touched = ((ty * th < (ly + h)[:, None, None]) & (tx * tw < (lx + w)[:, None, None])
               & (ty >= 0) & (tx >= 0) & (ty < down) & (tx < across))
    tile = np.broadcast_to(ty * across + tx, touched.shape)[touched]
    patch = np.broadcast_to(np.arange(len(ly))[:, None, None], touched.shape)[touched]
    return tile.astype(np.int64), patch.astype(np.int64)


def touched_tiles(slide: Slide, level: int, ys: npt.ArrayLike, xs: npt.ArrayLike,
                  size: tuple[int, int]) -> npt.NDArray[np.int64]:
    """Sorted indices (row-major, ``row * tiles_across + column``) of the tiles of ``level``
    that regions of ``size`` level pixels at level-0 top-left corners (``ys``, ``xs``) touch.

    Parts of regions outside the level touch nothing.
    """
    y = np.asarray(ys, np.int64).ravel()
    x = np.asarray(xs, np.int64).ravel()
    tiles, _ = _tile_ids(slide, level, y, x, size)
    return np.unique(tiles)


def tile_decodes(slides: Sequence[Slide], plan: PatchPlan, *, shard_size: int = 256,
                 chunk: int | None = None) -> int:
    """How many tile decodes the engine makes to extract ``plan``, without reading a pixel.

    The plan is cut as the engine cuts it — into runs of ``shard_size``
    patches, each run into runs of one source, each of those into
    :func:`read_chunk` pieces (``chunk`` patches instead, when given) — and
    every tile a piece's footprints touch counts once per piece.
    """
    n = len(plan)
    total = 0
    for start in range(0, n, shard_size):
        rows = plan.rows(start, min(start + shard_size, n))
        cuts = np.flatnonzero(np.diff(rows.slide)) + 1
        bounds = np.concatenate([[0], cuts, [len(rows)]]).astype(int).tolist()
        for a, b in itertools.pairwise(bounds):
            k = int(rows.slide[a])
            slide, level = slides[k], plan.level_of(k)
            step = chunk or read_chunk(slide, plan, k, shard_size)
            tiles, patch = _tile_ids(slide, level, rows.y[a:b], rows.x[a:b], plan.read_size(k))
            piece = patch // step
            across = int(tiles.max()) + 1 if len(tiles) else 1
            total += len(np.unique(piece * across + tiles))
    return total


def decode_tiles(slide: Slide, level: int, tiles: npt.ArrayLike, *, workers: int = 1) -> None:
    """Decode each of ``tiles`` (indices as :func:`touched_tiles` gives) of ``level`` once,
    on ``workers`` threads, through the slide's own reader.

    Tiles are read as tile-aligned regions in batches into a buffer reused per
    thread, so a JPEG tile of a TIFF decodes straight into it: the time this
    takes is the decode limit of a job that needs these tiles.
    """
    (th, tw), (lh, lw) = slide.levels[level].tile, slide.levels[level].shape
    across = -(-lw // tw)
    index = np.asarray(tiles, np.int64).ravel()
    row, column = np.divmod(index, across)
    y, x = row * th, column * tw
    h, w = np.minimum(th, lh - y), np.minimum(tw, lw - x)
    # group tiles of one shape (edge tiles are cut by the level's border), then batch each group
    jobs: list[tuple[int, int, npt.NDArray[np.int64], npt.NDArray[np.int64]]] = []
    for hh, ww in sorted(set(zip(h.tolist(), w.tolist(), strict=True))):
        sel = (h == hh) & (w == ww)
        gy, gx = y[sel], x[sel]
        for s in range(0, len(gy), _BATCH):
            jobs.append((hh, ww, gy[s : s + _BATCH], gx[s : s + _BATCH]))
    dy, dx = slide.levels[level].downsample

    def work(part: Sequence[tuple[int, int, Any, Any]]) -> None:
        buffers: dict[tuple[int, int, int], npt.NDArray[Any]] = {}
        for hh, ww, gy, gx in part:
            key = (len(gy), hh, ww)
            if key not in buffers:
                buffers[key] = np.empty((len(gy), hh, ww, slide.channels), slide.dtype)
            oy = np.rint(gy * dy).astype(np.int64)
            ox = np.rint(gx * dx).astype(np.int64)
            slide.read_regions(oy, ox, hh, ww, level, out=buffers[key])

    split(jobs, workers, work)
