"""Does gigapatch help on this machine? One slide, one job, every way of doing it, timed.

:func:`benchmark` plans one job on the user's own slide (``random`` patches,
or the whole grid) and times, on the same workers:

* the **decode limit**: every tile of the level read that the patches touch,
  decoded once in a tight loop (:func:`~gigapatch.engine.tiles.decode_tiles`);
* **gigapatch → memory** (:func:`gigapatch.extract`) and **→ store**
  (:func:`gigapatch.extract_to_zarr` into a temporary folder, deleted after);
* the loops users write today, on an evenly spread subset of the patches: a
  ``read_region`` per patch with **tiffslide** and with **OpenSlide** (one
  handle per thread), then ``cv2.resize(..., INTER_AREA)`` when the patches
  are resampled. A library that is not installed gets a row that says so.

The slide's tiles are decoded once before anything is timed, so every method
finds the file in the page cache: the figures compare CPUs and code, not a
first read from the disk.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gigapatch.engine.loops import LoopUnavailable, read_region_loop
from gigapatch.engine.run import extract, extract_to_zarr
from gigapatch.engine.scheduling import check_scheduler
from gigapatch.engine.slides import slide_rows
from gigapatch.engine.tiles import decode_tiles, touched_tiles
from gigapatch.errors import check_int, check_seed
from gigapatch.plan import PatchPlan, grid
from gigapatch.plan.sampling import random as random_plan
from gigapatch.sources import Slide, open_slide
from gigapatch.sources.tilecache import forget_cached_tiles
from gigapatch.store.codecs import parse_codec
from gigapatch.store.format import Codec
from gigapatch.store.summary import describe_plan

__all__ = ["Benchmark", "Row", "benchmark"]


@dataclass(frozen=True)
class Row:
    """One method's result.

    Attributes
    ----------
    method
        What was timed: ``"decode limit"``, ``"gigapatch -> memory"``, ``"gigapatch ->
        store"``, ``"tiffslide read_region"``, ``"openslide read_region"`` (those two
        with ``" + INTER_AREA"`` when the patches are resampled).
    patches
        Patches it made (loops run on a subset).
    seconds
        Best wall-clock time of the repeats; ``None`` when it did not run.
    patches_per_second, megabytes_per_second
        Rates (MB of patch pixels, 10⁶ bytes); ``None`` when it did not run.
    limit_fraction
        Its rate over the decode limit's.
    vs_tiffslide
        Its rate over the tiffslide loop's (``None`` without tiffslide).
    note
        Why it did not run (``"not installed (pip install tiffslide)"``), or ``""``.
    """

    method: str
    patches: int
    seconds: float | None
    patches_per_second: float | None
    megabytes_per_second: float | None
    limit_fraction: float | None = None
    vs_tiffslide: float | None = None
    note: str = ""


@dataclass(frozen=True)
class Benchmark:
    """What :func:`benchmark` ran and found.

    Attributes
    ----------
    slide
        The slide's path.
    plan
        The job in words (``"random of 256x256, at level 0, seed 0"``).
    patches
        Patches of the job.
    patch_shape
        (h, w, C) of a patch.
    level, level_mpp, patch_mpp, factor
        Level read, its pixel size, the patches' pixel size, the resampling factor.
    tiles
        Tiles the job touches (what the decode limit decodes).
    workers, repeats
        Threads every method ran on; best of how many runs.
    rows
        One :class:`Row` per method, the decode limit first.
    """

    slide: str
    plan: str
    patches: int
    patch_shape: tuple[int, int, int]
    level: int
    level_mpp: float | None
    patch_mpp: float | None
    factor: float
    tiles: int
    workers: int
    repeats: int
    rows: tuple[Row, ...]


def _best(run: Callable[[], Any], repeats: int) -> float:
    """Best time of ``repeats`` runs, each starting with empty tile caches (a small job's
    tiles would otherwise all be cached by the first)."""
    times = []
    for _ in range(repeats):
        forget_cached_tiles()
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return min(times)


def _spread(plan: PatchPlan, k: int) -> PatchPlan:
    """``k`` patches of ``plan`` evenly spread over it, in plan order."""
    if k >= len(plan):
        return plan
    rows = np.unique(np.linspace(0, len(plan) - 1, k).round().astype(np.int64))
    return PatchPlan(plan.slide[rows], plan.y[rows], plan.x[rows], level=plan.level,
                     size=plan.size, stride=plan.stride, kind=plan.kind, levels=plan.levels,
                     factors=plan.factors)


def benchmark(
    slide_path: Any,
    *,
    size: int = 256,
    random: int | None = 500,
    mpp: float | None = None,
    workers: int | None = None,
    repeats: int = 1,
    loop_patches: int = 200,
    codec: Codec = "lz4",
    tmp: str | None = None,
    seed: int = 0,
) -> Benchmark:
    """Time the decode limit, gigapatch and ``read_region`` loops on one job on one slide.

    Parameters
    ----------
    slide_path
        The slide (a path, or anything :func:`gigapatch.open` takes).
    size
        Patch side in pixels (of the target pixel size with ``mpp``).
    random
        That many random patches (seeded by ``seed``); ``None``: the whole grid.
    mpp
        Pixel size (µm) of the patches; a level is read as it is or the next
        finer one is downsampled (default: level 0).
    workers
        Threads of every method (default: the number of CPUs).
    repeats
        Runs of each method; the best is kept.
    loop_patches
        Patches of the ``read_region`` loops (slow): evenly spread over the job.
    codec
        Codec spec of the temporary store (:func:`~gigapatch.store.parse_codec`;
        docs/codecs.md).
    tmp
        Folder for the temporary store (default: the system's); deleted after.
    seed
        Seed of the random patches.

    Returns
    -------
    Benchmark
        The job and one :class:`Row` per method.
    """
    size = check_int("size", size)
    repeats = check_int("repeats", repeats)
    loop_patches = check_int("loop_patches", loop_patches)
    seed = check_seed(seed)
    codec = str(parse_codec(codec))  # before the slide is read
    workers = check_scheduler("threads", workers)
    slide: Slide = open_slide(slide_path)
    if random is None:
        plan = grid(slide, size, mpp=mpp)
    else:
        plan = random_plan(slide, size, check_int("random", random), seed, mpp=mpp)
    info = slide_rows([slide], plan)[0]
    level, (h, w) = plan.level_of(0), plan.size
    n = len(plan)
    per_patch = h * w * slide.channels * slide.dtype.itemsize
    tiles = touched_tiles(slide, level, plan.y, plan.x, plan.read_size(0))
    decode_tiles(slide, level, tiles, workers=workers)  # page cache warm for every method
    timed: list[tuple[str, int, float | None, str]] = [
        ("decode limit", n,
         _best(lambda: decode_tiles(slide, level, tiles, workers=workers), repeats), ""),
        ("gigapatch -> memory", n,
         _best(lambda: extract(slide, plan, workers=workers), repeats), ""),
    ]
    folder = Path(tempfile.mkdtemp(prefix="gigapatch-bench-", dir=tmp))
    try:
        timed.append(("gigapatch -> store", n, _best(
            lambda: extract_to_zarr(slide, plan, folder / "bench.zarr", workers=workers,
                                    codec=codec, overwrite=True), repeats), ""))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    subset = _spread(plan, loop_patches)
    resize = " + INTER_AREA" if plan.factor_of(0) != 1.0 else ""
    for library in ("tiffslide", "openslide"):
        name = f"{library} read_region{resize}"
        try:
            loop = read_region_loop(library, slide, subset, workers)
        except LoopUnavailable as exc:
            timed.append((name, 0, None, str(exc)))
            continue
        try:
            timed.append((name, len(subset), _best(loop, repeats), ""))
        finally:
            loop.close()
    rates = {m: k / s for m, k, s, _ in timed if s}
    limit = rates[timed[0][0]]
    base = next((rates.get(m) for m, *_ in timed if m.startswith("tiffslide")), None)
    rows = tuple(
        Row(method=m, patches=k, seconds=s,
            patches_per_second=rates.get(m), megabytes_per_second=(
                None if m not in rates else rates[m] * per_patch / 1e6),
            limit_fraction=None if m not in rates else rates[m] / limit,
            vs_tiffslide=None if m not in rates or not base else rates[m] / base,
            note=note)
        for m, k, s, note in timed
    )
    return Benchmark(
        slide=str(slide.path or slide.name), plan=describe_plan(plan.params()), patches=n,
        patch_shape=(h, w, slide.channels), level=level, level_mpp=info.level_mpp,
        patch_mpp=info.patch_mpp, factor=info.factor, tiles=len(tiles), workers=workers,
        repeats=repeats, rows=rows,
    )
