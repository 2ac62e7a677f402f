"""Extracting into one array in memory: tasks that own tiles, run by self-scheduling threads.

:func:`gigapatch.extract` with the ``"threads"`` or ``"synchronous"``
scheduler fills one (N, h, w, C) array that every task writes into directly
(its own, or the caller's ``out=``). How the work is cut:

* **Tile tasks.** A run of plain patches (no resampling, no dilation) of one
  TIFF source, inside the level and in tile-band order (as
  :func:`~gigapatch.grid` and :func:`~gigapatch.random` plan them), is cut into
  bands of whole tile rows, about :data:`TILES_PER_TASK` touched tiles each.
  A task decodes each tile of its band once and copies it into every patch
  that overlaps it (:meth:`Slide.read_regions` with ``tiles=``): a patch that
  straddles two bands gets its pixels from two tasks, each writing its own
  pixels. So each tile is decoded exactly once in the whole run whatever the
  number of threads — no tile cache, no tile shared between threads, and no
  thread ever waits for another's tile.
* **Patch blocks.** Any other run (resampled, dilated, other readers, patches
  off the level, unsorted plans) is read :data:`block_size` patches per task,
  as the store path reads a shard (:func:`~gigapatch.engine.reading.read_patches`).

The threads take the next task themselves (a shared counter), so none waits for
a driver thread to hand it work, and small tasks keep the last ones balanced.
Each task's writes are also the first touch of its part of a freshly allocated
output, so that cost (~1.5 s per GiB on this project's virtual machines, where
freed memory goes back to the host within seconds) is spread over the threads
and overlaps with decoding; a caller's reused ``out=`` does not pay it at all.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from gigapatch.engine.reading import read_patches
from gigapatch.engine.tiles import touched_tiles
from gigapatch.errors import InvalidArgumentError
from gigapatch.plan import PatchPlan
from gigapatch.sources import Slide

__all__ = ["TILES_PER_TASK", "MemoryTask", "check_out", "fill", "memory_tasks", "run_threads"]

#: Touched tiles one tile task decodes, at least (whole tile rows): ~20 ms of decoding, small
#: enough that the last tasks leave no thread idle for long.
TILES_PER_TASK = 64


@dataclass(frozen=True)
class MemoryTask:
    """Plan rows ``[start, stop)``; with ``tiles``, only the tiles ``[first, stop)`` of source
    ``source``'s level ``level`` are read for them (a tile task), else all of them."""

    start: int
    stop: int
    tiles: tuple[int, int] | None = None
    source: int = 0
    level: int = 0


def check_out(out: Any, shape: tuple[int, ...], dtype: np.dtype[Any]) -> npt.NDArray[Any]:
    """``out`` after checking it can hold the patches: a writable, C-contiguous NumPy array of
    exactly ``shape`` and ``dtype``; anything else is one :class:`InvalidArgumentError`."""
    want = f"a writable C-contiguous numpy array of shape {shape} and dtype {dtype}"
    if not isinstance(out, np.ndarray):
        raise InvalidArgumentError(f"out must be {want}; got {type(out).__name__}")
    wrong = []
    if out.shape != shape:
        wrong.append(f"shape {out.shape}")
    if out.dtype != dtype:
        wrong.append(f"dtype {out.dtype}")
    if not out.flags.c_contiguous:
        wrong.append("a non-contiguous array")
    if not out.flags.writeable:
        wrong.append("a read-only array")
    if wrong:
        raise InvalidArgumentError(f"out must be {want}; got {', '.join(wrong)}")
    return out


def _tile_run(slide: Slide, plan: PatchPlan, k: int, a: int, b: int) -> list[MemoryTask] | None:
    """Tile tasks for plan rows ``[a, b)`` (all of source ``k``), or None when they cannot be
    read by tile ranges."""
    level = plan.level_of(k)
    if plan.factor_of(k) != 1.0 or tuple(plan.dilation) != (1, 1) or not slide.reads_tiles:
        return None
    (th, tw), (lh, lw) = slide.levels[level].tile, slide.levels[level].shape
    dy, dx = slide.levels[level].downsample
    h, w = plan.size
    ly = np.rint(plan.y[a:b] / dy).astype(np.int64)
    lx = np.rint(plan.x[a:b] / dx).astype(np.int64)
    if ((ly < 0) | (lx < 0) | (ly + h > lh) | (lx + w > lw)).any():
        return None  # SAME padding off the level: read patch by patch, with the fill
    band = ly // th
    if (np.diff(band) < 0).any():
        return None  # not in band order: a band's patches are not one run of rows
    across = -(-lw // tw)
    per_row = np.bincount(touched_tiles(slide, level, plan.y[a:b], plan.x[a:b], (h, w))
                          // across, minlength=-(-lh // th))
    reach = (h - 1) // th + 1  # tile rows a patch of band r can touch beyond r
    tasks: list[MemoryTask] = []
    r0, count = 0, 0
    for r, n in enumerate(per_row.tolist()):
        count += n
        if count >= TILES_PER_TASK or r == len(per_row) - 1:
            if count:
                lo = a + int(np.searchsorted(band, r0 - reach, side="left"))
                hi = a + int(np.searchsorted(band, r + 1, side="left"))
                tasks.append(MemoryTask(lo, hi, (r0 * across, (r + 1) * across), k, level))
            r0, count = r + 1, 0
    return tasks


def memory_tasks(slides: Sequence[Slide], plan: PatchPlan, block_size: int) -> list[MemoryTask]:
    """The tasks that fill an in-memory result for ``plan``: tile tasks where a run of one
    source can be read by tile ranges, blocks of ``block_size`` patches elsewhere."""
    tasks: list[MemoryTask] = []
    cuts = np.flatnonzero(np.diff(plan.slide)) + 1  # runs of one source, in plan order
    bounds = np.concatenate([[0], cuts, [len(plan)]]).astype(int).tolist()
    for a, b in itertools.pairwise(bounds):
        k = int(plan.slide[a])
        run = _tile_run(slides[k], plan, k, a, b)
        if run is not None:
            tasks.extend(run)
        else:
            tasks.extend(MemoryTask(s, min(s + block_size, b)) for s in range(a, b, block_size))
    return tasks


def fill(slides: Sequence[Slide], plan: PatchPlan, task: MemoryTask, device: str,
         out: npt.NDArray[Any]) -> None:
    """Run ``task``: write its patches' pixels (of its tiles, for a tile task) into ``out``."""
    s, e = task.start, task.stop
    if task.tiles is None:
        read_patches(slides, plan.rows(s, e), device, out=out[s:e])
        return
    h, w = plan.size
    slides[task.source].read_regions(plan.y[s:e], plan.x[s:e], h, w, task.level,
                                     out=out[s:e], tiles=task.tiles)


def run_threads(count: int, workers: int, work: Callable[[int], None]) -> None:
    """Call ``work(i)`` for every ``i < count`` on ``workers`` threads, each taking the next
    ``i`` itself; with one worker, in the calling thread.

    The first exception stops the threads from taking more work and is raised here once
    they have all ended (also when the wait itself is interrupted: no thread is left
    writing after this returns).
    """
    if workers <= 1 or count <= 1:
        for i in range(count):
            work(i)
        return
    counter = itertools.count()  # next() on it is atomic under the GIL
    lock = threading.Lock()
    stop = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        while not stop.is_set():
            with lock:
                i = next(counter)
            if i >= count:
                return
            try:
                work(i)
            except BaseException as exc:  # raised in the caller below
                errors.append(exc)
                stop.set()

    threads = [threading.Thread(target=run, name=f"gigapatch-extract-{j}", daemon=True)
               for j in range(min(workers, count))]
    for t in threads:
        t.start()
    try:
        for t in threads:
            t.join()
    except BaseException:
        stop.set()
        for t in threads:
            t.join()
        raise
    if errors:
        raise errors[0]
