"""The tiles a plan decodes: which, how many, and how fast this machine decodes them.

A job's floor is decoding its tiles: every tile a patch's footprint (its
:meth:`~gigapatch.PatchPlan.read_size` at the level read) touches, once per
run of patches the engine reads together (a shard, with the readers' tile
caches) — or once per run of the engine when the patches are read from tiles
averaged once (grids resampled by an integer factor: :mod:`.tilemeans`).
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

from gigapatch.engine.tilemeans import tile_means_apply
from gigapatch.plan import PatchPlan
from gigapatch.sources import Slide

__all__ = ["decode_tiles", "split", "tile_decodes", "touched_tiles"]

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
    patches, each run into runs of one source (into pieces of ``chunk``
    patches, when given) — and every tile a run's (piece's) footprints touch
    counts once per run: resampled runs are read in batches, but consecutive
    batches share their boundary tiles through the reader's tile cache
    (measured: 12,764 decodes for 2,000 random 299² patches at 0.5 µm/px of a
    32,768² 40× slide, two workers — as counted here). Patches the host reads
    from averaged tiles (:func:`~.tilemeans.tile_means_apply`) count each tile
    they touch once in all, as the engine's tasks share those tiles.
    """
    n = len(plan)
    total = 0
    shared: dict[int, set[int]] = {}  # source -> tiles read through averaged tiles
    for start in range(0, n, shard_size):
        rows = plan.rows(start, min(start + shard_size, n))
        cuts = np.flatnonzero(np.diff(rows.slide)) + 1
        bounds = np.concatenate([[0], cuts, [len(rows)]]).astype(int).tolist()
        for a, b in itertools.pairwise(bounds):
            k = int(rows.slide[a])
            slide, level = slides[k], plan.level_of(k)
            tiles, patch = _tile_ids(slide, level, rows.y[a:b], rows.x[a:b], plan.read_size(k))
            if chunk is None and _averaged(slide, level, plan, rows.y[a:b], rows.x[a:b], k):
                shared.setdefault(k, set()).update(tiles.tolist())
                continue
            step = chunk or shard_size
            piece = patch // step
            across = int(tiles.max()) + 1 if len(tiles) else 1
            total += len(np.unique(piece * across + tiles))
    return total + sum(len(tiles) for tiles in shared.values())


def _averaged(slide: Slide, level: int, plan: PatchPlan, ys: npt.NDArray[np.int64],
              xs: npt.NDArray[np.int64], k: int) -> bool:
    """Whether the host reads these patches of source ``k`` from averaged tiles."""
    if tuple(plan.dilation) != (1, 1):
        return False
    dy, dx = slide.levels[level].downsample
    ly, lx = np.rint(ys / dy).astype(np.int64), np.rint(xs / dx).astype(np.int64)
    return tile_means_apply(slide, level, plan.factor_of(k), ly, lx)


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
