"""In-memory rows of ``bench/extract.py``: decode ceiling, gigapatch (allocating and ``out=``),
OpenSlide and tiffslide ``read_region`` loops on 1 and 2 threads, and ``--busy`` scaling.

* ``decode ceiling (N tiles)``: every level-0 tile the job's patches touch,
  read with ``os.pread`` and decoded once by libjpeg-turbo (simplejpeg, strict,
  as gigapatch decodes) into one reused buffer per thread, in a tight loop on
  that many threads: nothing does less work for this job.
* ``gigapatch -> memory``: ``extract`` allocating its result (first touch of
  fresh memory included); ``gigapatch -> memory out=``: into one reused array.
* ``tiffslide loop`` / ``openslide loop``: ``read_region`` per patch, one
  handle per thread (:func:`gigapatch.engine.loops.read_region_loop`), on
  ``--loop-patches`` patches spread evenly over the plan.
* ``--busy``: a process spinning one core (``while True: pass``) runs during
  the random job's 2-worker run (and, for comparison, during a 1-worker run).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

import gigapatch
from gigapatch.engine.loops import LoopUnavailable, read_region_loop
from gigapatch.engine.tiles import split, touched_tiles


def decode_ceiling(path: Path, tiles: np.ndarray, workers: int):
    """``run()`` decoding each of ``tiles`` (level 0) once on ``workers`` threads."""
    import simplejpeg
    import tifffile

    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        offsets, counts = page.dataoffsets, page.databytecounts
        shape = (page.tilelength, page.tilewidth, page.samplesperpixel)
        if page.jpegtables:
            raise SystemExit(f"{path}: the ceiling reads self-contained JPEG tiles only")
    fd = os.open(path, os.O_RDONLY)
    ids = [int(t) for t in tiles]

    def work(part) -> None:
        buf = np.empty(shape, np.uint8)
        for i in part:
            simplejpeg.decode_jpeg(os.pread(fd, counts[i], offsets[i]), buffer=buf, strict=True)

    return lambda: split(ids, workers, work)


def spread(plan, k: int):
    """``k`` patches of ``plan`` spread evenly over it (loops are slow)."""
    if k >= len(plan):
        return plan
    return plan.take(np.unique(np.linspace(0, len(plan) - 1, k).round().astype(np.int64)))


@contextlib.contextmanager
def spinner() -> Iterator[None]:
    """A process keeping one core busy for the duration."""
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield
    finally:
        proc.kill()
        proc.wait()


def memory_rows(record, timed, job: str, path: Path, slide, plan, workers: int,
                repeats: int, loop_patches: int, out: np.ndarray) -> None:
    """Record this job's in-memory rows for ``workers`` (see the module's docstring)."""
    tiles = touched_tiles(slide, 0, plan.y, plan.x, plan.size)
    n = len(plan)
    record(job, f"decode ceiling ({len(tiles)} tiles)", workers,
           timed(decode_ceiling(path, tiles, workers), repeats), n)
    record(job, "gigapatch -> memory", workers, timed(
        lambda: gigapatch.extract(slide, plan, workers=workers), repeats), n)
    record(job, "gigapatch -> memory out=", workers, timed(
        lambda: gigapatch.extract(slide, plan, workers=workers, out=out), repeats), n)
    subset = spread(plan, loop_patches)
    for lib in ("tiffslide", "openslide"):
        try:
            loop = read_region_loop(lib, slide, subset, workers)
        except LoopUnavailable as exc:
            print(f"  {job:<7} {lib} loop: skipped ({exc})", flush=True)
            continue
        try:
            record(job, f"{lib} loop", workers, timed(loop, repeats), len(subset))
        finally:
            loop.close()


def busy_rows(record, timed, slide, plan, repeats: int, out: np.ndarray) -> None:
    """The random job's gigapatch rows with a process spinning one core."""
    for w in (2, 1):
        with spinner():
            record("random", "gigapatch -> memory out= +busy", w, timed(
                lambda w=w: gigapatch.extract(slide, plan, workers=w, out=out), repeats),
                len(plan))


def fair_share(workers: int, others: int) -> float:
    """Cores ``workers`` busy threads get next to ``others`` busy threads, shared fairly."""
    cores = os.cpu_count() or 1
    return min(workers, cores * workers / (workers + others))


def memory_ratios(rows: list[dict], busy: bool) -> dict[str, float]:
    """Median-over-median ratios of the in-memory rows, with the issue's targets in the names."""

    def med(job, method, w):
        """The median of the row ``method`` (a prefix ending in "(": any tile count)."""
        found = [r["median"] for r in rows if (r["job"], r["workers"]) == (job, w) and (
            r["method"] == method or (method.endswith("(") and r["method"].startswith(method)))]
        return found[0] if found else None

    ratios: dict[str, float] = {}

    def put(name, a, b):
        if a is not None and b:
            ratios[name] = a / b

    for job in ("grid", "random"):
        for w in (1, 2):
            mem, out = med(job, "gigapatch -> memory", w), med(job, "gigapatch -> memory out=", w)
            ceiling = med(job, "decode ceiling (", w)
            loops = [v for v in (med(job, "tiffslide loop", w), med(job, "openslide loop", w))
                     if v is not None]
            put(f"{job} w={w} memory out= / decode ceiling", out, ceiling)
            put(f"{job} w={w} memory / decode ceiling", mem, ceiling)
            put(f"{job} w={w} memory / tiffslide loop", mem, med(job, "tiffslide loop", w))
            put(f"{job} w={w} memory / tiffslide loop w=1", mem, med(job, "tiffslide loop", 1))
            if loops:
                put(f"{job} w={w} memory / best peer loop", mem, max(loops))
        put(f"{job} memory 2 / 1 workers", med(job, "gigapatch -> memory", 2),
            med(job, "gigapatch -> memory", 1))
        put(f"{job} memory out= 2 / 1 workers", med(job, "gigapatch -> memory out=", 2),
            med(job, "gigapatch -> memory out=", 1))
    if busy:
        one = med("random", "gigapatch -> memory out=", 1)
        put("random out= 2 workers busy / 1 quiet", med(
            "random", "gigapatch -> memory out= +busy", 2), one)
        put("random out= 2 / 1 workers, both busy", med(
            "random", "gigapatch -> memory out= +busy", 2),
            med("random", "gigapatch -> memory out= +busy", 1))
        ratios["fair-share bound, 2 workers + 1 spinner / 1 worker"] = fair_share(2, 1)
    return ratios
