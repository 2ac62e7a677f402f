"""Reading a run of a plan's patches into one host array: plain, dilated or resampled.

* Plain patches (no dilation, read at the target resolution) go through
  :meth:`Slide.read_regions`: each touched tile is decoded once and copied
  into every patch that needs it, with no intermediate region.
* Dilated patches read the region their span covers (bounded by
  :data:`REGION_BUDGET`), move it to the device once and gather there.
* Resampled patches (a target pixel size between pyramid levels: 20× from a
  40× scan) on the host, when their corners lie on multiples of an integer
  factor f that divides the tiles (every grid), are copied from tiles averaged
  once each right after decoding (:mod:`.tilemeans`), shared by the run's
  threads. Other resampled patches read ``round(span · f)`` level pixels each —
  in batches, so each tile is still decoded once per batch — then the area
  resampler brings them to the target size on the chosen device (and the
  dilation, if any, samples the resampled span). Both give the same pixels.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from gigapatch.engine.tilemeans import read_tile_means, tile_means_apply
from gigapatch.kernels import area_resample, array_module, gather, to_host
from gigapatch.plan import PatchPlan
from gigapatch.sources import Slide

__all__ = ["REGION_BUDGET", "RESAMPLE_BUDGET", "read_patches", "shard_buffer"]

#: Largest source region (pixels of the level) one dilated read covers; bounds task memory.
REGION_BUDGET = 1 << 24
#: Bytes of level pixels one resampling batch holds (per task thread).
RESAMPLE_BUDGET = 64 << 20

_LOCAL = threading.local()


def shard_buffer(shape: tuple[int, ...], dtype: npt.DTypeLike, name: str = "buf") -> Any:
    """A per-thread buffer reused from shard to shard (fresh memory costs ~1.8 s/GiB here).

    ``name`` keeps buffers of different roles apart (the shard's output, a
    resampling batch).
    """
    dtype = np.dtype(dtype)
    buf: npt.NDArray[Any] | None = getattr(_LOCAL, name, None)
    if buf is None or buf.shape[1:] != shape[1:] or buf.shape[0] < shape[0] or buf.dtype != dtype:
        buf = np.empty(shape, dtype)
        setattr(_LOCAL, name, buf)
    return buf[: shape[0]]


def _groups(ly: npt.NDArray[np.int64], lx: npt.NDArray[np.int64],
            size: tuple[int, int]) -> list[tuple[int, int]]:
    """Split consecutive patches into runs whose bounding box stays within the budget."""
    h, w = size
    runs, start = [], 0
    y0 = y1 = x0 = x1 = 0
    for i in range(len(ly)):
        y, x = int(ly[i]), int(lx[i])
        if i == start:
            y0, y1, x0, x1 = y, y + h, x, x + w
            continue
        ny0, ny1, nx0, nx1 = min(y0, y), max(y1, y + h), min(x0, x), max(x1, x + w)
        if (ny1 - ny0) * (nx1 - nx0) > REGION_BUDGET:
            runs.append((start, i))
            start = i
            y0, y1, x0, x1 = y, y + h, x, x + w
        else:
            y0, y1, x0, x1 = ny0, ny1, nx0, nx1
    if len(ly):
        runs.append((start, len(ly)))
    return runs


def read_patches(
    slides: Sequence[Slide], plan: PatchPlan, device: str = "cpu",
    out: npt.NDArray[Any] | None = None,
) -> npt.NDArray[Any]:
    """Read every patch of ``plan`` (a few shards' worth) into a host (N, h, w, C) array.

    With ``padding="same"`` pixels outside the level take ``plan.fill``.
    ``device`` (``"cpu"`` or ``"gpu"``) is where dilated gathers and
    resampling run; decoding is always on the host.
    """
    h, w = plan.size
    fill = plan.fill if plan.padding == "same" else None
    first = slides[int(plan.slide[0])] if len(plan) else slides[0]
    if out is None:
        out = np.empty((len(plan), h, w, first.channels), dtype=first.dtype)
    cuts = np.flatnonzero(np.diff(plan.slide)) + 1  # runs of the same slide, in plan order
    bounds = np.concatenate([[0], cuts, [len(plan)]]).astype(int)
    for a, b in itertools.pairwise(bounds.tolist()):
        k = int(plan.slide[a])
        slide, level = slides[k], plan.level_of(k)
        if plan.factor_of(k) != 1.0:
            _read_resampled(slide, level, plan, k, a, b, fill, device, out[a:b])
        elif tuple(plan.dilation) == (1, 1):
            slide.read_regions(plan.y[a:b], plan.x[a:b], h, w, level, fill=fill, out=out[a:b])
        else:
            out[a:b] = _read_dilated(slide, level, plan.y[a:b], plan.x[a:b], plan, fill, device)
    return out


def _read_dilated(slide: Slide, level: int, ys: npt.NDArray[np.int64],
                  xs: npt.NDArray[np.int64], plan: PatchPlan, fill: float | None,
                  device: str) -> npt.NDArray[Any]:
    xp = array_module(device)
    span = plan.span
    dy, dx = slide.levels[level].downsample
    ly, lx = np.rint(ys / dy).astype(np.int64), np.rint(xs / dx).astype(np.int64)
    out = xp.empty((len(ys), *plan.size, slide.channels), dtype=slide.dtype)
    for s, e in _groups(ly, lx, span):
        y0, x0 = int(ly[s:e].min()), int(lx[s:e].min())
        rh, rw = int(ly[s:e].max()) + span[0] - y0, int(lx[s:e].max()) + span[1] - x0
        oy, ox = slide.to_level0(y0, x0, level)
        region = xp.asarray(slide.read(oy, ox, rh, rw, level=level, fill=fill))
        gather(region, ly[s:e] - y0, lx[s:e] - x0, plan.size, dilation=plan.dilation,
               fill=None, out=out[s:e])
    result: npt.NDArray[Any] = to_host(out)
    return result


def _read_resampled(slide: Slide, level: int, plan: PatchPlan, k: int, a: int, b: int,
                    fill: float | None, device: str, out: npt.NDArray[Any]) -> None:
    """Patches ``a:b`` of source ``k``: batches of level regions → area resampling → ``out``.

    On the host, grid patches (corners on multiples of an integer factor that
    divides the tiles) are copied from tiles averaged once (:mod:`.tilemeans`);
    other patches, dilated ones and the GPU path take level regions.
    """
    rh, rw = plan.read_size(k)
    factor = plan.factor_of(k)
    if device == "cpu" and tuple(plan.dilation) == (1, 1):
        dy, dx = slide.levels[level].downsample
        ly = np.rint(plan.y[a:b] / dy).astype(np.int64)
        lx = np.rint(plan.x[a:b] / dx).astype(np.int64)
        lh, lw = slide.levels[level].shape
        inside = (ly >= 0) & (lx >= 0) & (ly + rh <= lh) & (lx + rw <= lw)
        idx = np.flatnonzero(inside)
        if len(idx) and tile_means_apply(slide, level, factor, ly[idx], lx[idx]):
            if len(idx) == b - a:
                read_tile_means(slide, level, int(factor), ly, lx, out)
                return
            part = np.empty((len(idx), *out.shape[1:]), out.dtype)
            read_tile_means(slide, level, int(factor), ly[idx], lx[idx], part)
            out[idx] = part
            for i in np.flatnonzero(~inside).tolist():
                _read_regions_resampled(slide, level, plan, a + i, a + i + 1, fill, device,
                                        out[i : i + 1])
            return
    _read_regions_resampled(slide, level, plan, a, b, fill, device, out)


def _read_regions_resampled(slide: Slide, level: int, plan: PatchPlan, a: int, b: int,
                            fill: float | None, device: str, out: npt.NDArray[Any]) -> None:
    """Patches ``a:b`` (one source) as level regions, area-resampled on ``device``."""
    rh, rw = plan.read_size(int(plan.slide[a]))
    span = plan.span
    per = rh * rw * slide.channels * slide.dtype.itemsize
    batch = max(1, min(b - a, RESAMPLE_BUDGET // per))
    buf = shard_buffer((batch, rh, rw, slide.channels), slide.dtype, name="resample")
    xp = array_module(device)
    ry, rx = plan.dilation
    for s in range(a, b, batch):
        e = min(s + batch, b)
        region = slide.read_regions(plan.y[s:e], plan.x[s:e], rh, rw, level, fill=fill,
                                    out=buf[: e - s])
        if device == "cpu" and (ry, rx) == (1, 1):  # straight into the shard's buffer
            area_resample(region, span, out=out[s - a : e - a])
            continue
        block = region if device == "cpu" else xp.asarray(region)
        small = area_resample(block, span)
        if (ry, rx) != (1, 1):
            small = small[:, ::ry, ::rx]
        out[s - a : e - a] = to_host(small)
