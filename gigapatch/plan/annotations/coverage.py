"""How much of each patch's footprint each class covers, in bounded memory.

The regions are rasterized (:mod:`gigapatch.plan.annotations.raster`) on a
grid fine enough that a patch's footprint spans at least :data:`MIN_SIDE`
mask pixels a side: cell ``s = min(h0, w0) / 16`` level-0 pixels for a
footprint of h0 × w0 level-0 pixels. The grid is never held whole: it is cut
into tiles of :data:`TILE`² cells, and only a tile where some patch starts
*and* some region lies is painted (with a margin of one footprint, so every
patch starting in it is wholly inside), so memory follows the tiles near the
regions, not the slide: a few megabytes per tile at a time (a 2-byte label
and a 4-byte integral image per cell), plus a cache of at most
:data:`CACHE_BYTES` of painted tiles for random plans that come back to them.

Each mask pixel holds one class (the smallest region covering its centre,
see :func:`~gigapatch.plan.annotations.raster.paint`), so the coverages of a
patch sum to the fraction covered by any region. A footprint's coverage is
the exact area-weighted mean over the cells it overlaps, partial cells
counting by their overlap (an integral image, interpolated bilinearly).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from gigapatch.plan.annotations.raster import paint
from gigapatch.plan.annotations.regions import Region
from gigapatch.plan.masks import box_sums

__all__ = ["CACHE_BYTES", "MIN_SIDE", "TILE", "Coverage", "mask_scale"]

#: Mask pixels a patch's footprint spans at least, along its shorter side.
MIN_SIDE = 16
#: Mask pixels a side of one tile of work.
TILE = 1024
#: Painted tiles kept for later calls (random plans draw in rounds).
CACHE_BYTES = 64 << 20


def mask_scale(footprint: tuple[float, float]) -> float:
    """Level-0 pixels per mask pixel for patches of ``footprint`` (h0, w0) level-0 pixels."""
    return min(float(footprint[0]), float(footprint[1])) / MIN_SIDE


def _edge(a: npt.NDArray[np.float64], n: int) -> tuple[npt.NDArray[np.int64], np.ndarray]:
    """Cell index and fraction into it of window positions ``a`` (within [0, n])."""
    i = np.minimum(np.floor(a).astype(np.int64), n - 1)
    return i, a - i


def _integral(m: npt.NDArray[np.bool_], out: npt.NDArray[np.int32]) -> None:
    """The integral image of ``m`` into ``out[1:, 1:]`` (row sums along the contiguous axis,
    then rows added one after the other: 4x faster than NumPy's cumsum along axis 0)."""
    np.cumsum(m.view(np.uint8), axis=1, dtype=np.int32, out=out[1:, 1:])
    for i in range(2, len(out)):
        out[i, 1:] += out[i - 1, 1:]


class Coverage:
    """The per-class coverage of patch footprints on one slide.

    Parameters
    ----------
    regions
        The slide's regions.
    labels
        The class index of each region (0 … ``classes - 1``).
    classes
        How many classes there are (columns of the result).
    shape0
        (H0, W0) of the slide's level 0.
    footprint
        (h0, w0) level-0 extent of every patch.
    """

    def __init__(
        self, regions: Sequence[Region], labels: Sequence[int], classes: int,
        shape0: tuple[int, int], footprint: tuple[float, float],
    ) -> None:
        self.regions = list(regions)
        self.labels = [int(v) for v in labels]
        self.classes = classes
        self.footprint = (float(footprint[0]), float(footprint[1]))
        self.s = mask_scale(footprint)
        self.grid = (max(1, math.ceil(shape0[0] / self.s)), max(1, math.ceil(shape0[1] / self.s)))
        self.halo = math.ceil(max(self.footprint) / self.s) + 2
        box = np.array([r.bbox for r in self.regions], np.float64).reshape(-1, 4)
        self._top = np.ceil(box[:, 1] / self.s - 0.5)  # first and last pixel rows/cols
        self._left = np.ceil(box[:, 0] / self.s - 0.5)
        self._bottom = np.floor(box[:, 3] / self.s - 0.5)
        self._right = np.floor(box[:, 2] / self.s - 0.5)
        self._cache: OrderedDict[tuple[int, int], npt.NDArray[np.integer[Any]]] = OrderedDict()
        self.painted = 0  # tiles painted so far (a measure of work, for tests and benches)

    def window(self, ti: int, tj: int) -> tuple[int, int, int, int]:
        """(row0, col0, height, width) of tile (ti, tj) with its margin, inside the grid."""
        r0, c0 = ti * TILE, tj * TILE
        return r0, c0, min(TILE + self.halo, self.grid[0] - r0), min(
            TILE + self.halo, self.grid[1] - c0)

    def _tile(self, ti: int, tj: int) -> npt.NDArray[np.integer[Any]] | None:
        key = (ti, tj)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        r0, c0, h, w = win = self.window(ti, tj)
        near = np.flatnonzero((self._bottom >= r0) & (self._top < r0 + h)
                              & (self._right >= c0) & (self._left < c0 + w))
        if not len(near):
            return None
        tile: npt.NDArray[np.integer[Any]] = paint(
            [self.regions[k] for k in near], [self.labels[k] for k in near], self.s, win)
        if self.classes < 128:
            tile = tile.astype(np.int8)  # half the memory, for the cache
        self.painted += 1
        self._cache[key] = tile
        while len(self._cache) > 1 and sum(t.nbytes for t in self._cache.values()) > CACHE_BYTES:
            self._cache.popitem(last=False)
        return tile

    def __call__(
        self, y: npt.NDArray[np.int64], x: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.float32]:
        """(N, classes) float32: the fraction of each footprint at level-0 top-left (y, x)
        that each class covers (outside the slide counts as covered by none)."""
        yf = np.asarray(y, np.float64)
        xf = np.asarray(x, np.float64)
        out = np.zeros((len(yf), self.classes), np.float32)
        if not len(yf) or not self.regions:
            return out
        s, (mh, mw) = self.s, self.grid
        ti = np.clip(np.floor(yf / s), 0, mh - 1).astype(np.int64) // TILE
        tj = np.clip(np.floor(xf / s), 0, mw - 1).astype(np.int64) // TILE
        key = ti * (mw // TILE + 1) + tj
        order = np.argsort(key, kind="stable")
        cuts = np.flatnonzero(np.diff(key[order])) + 1
        for group in np.split(order, cuts):
            a, b = int(ti[group[0]]), int(tj[group[0]])
            tile = self._tile(a, b)
            if tile is not None:
                out[group] = self._fractions(tile, self.window(a, b), yf[group], xf[group])
        return out

    def _fractions(
        self, tile: npt.NDArray[np.integer[Any]], win: tuple[int, int, int, int],
        y: npt.NDArray[np.float64], x: npt.NDArray[np.float64],
    ) -> npt.NDArray[np.float32]:
        """Coverage of footprints in one tile: summed cell by cell when they are few, else
        read off per-class integral images of the whole tile (the same exact values)."""
        r0, c0, h, w = win
        s, (fh, fw) = self.s, self.footprint
        rows = np.clip(y / s - r0, 0, h), np.clip((y + fh) / s - r0, 0, h)
        cols = np.clip(x / s - c0, 0, w), np.clip((x + fw) / s - c0, 0, w)
        area = (fh / s) * (fw / s)
        span = math.ceil(fh / s) + 1, math.ceil(fw / s) + 1  # cells a footprint can touch
        if 2 * len(y) * span[0] * span[1] < h * w:
            return self._summed(tile, rows, cols, span, area)
        out = np.zeros((len(y), self.classes), np.float32)
        ends = [_edge(rows[0], h), _edge(rows[1], h)], [_edge(cols[0], w), _edge(cols[1], w)]
        present = np.flatnonzero(np.bincount(tile.ravel() + 1, minlength=self.classes + 1)[1:])
        sat = np.zeros((h + 1, w + 1), np.int32)
        for k in present:
            _integral(tile == k, sat)
            out[:, int(k)] = np.clip(box_sums(sat, *ends) / area, 0.0, 1.0)
        return out

    def _summed(
        self, tile: npt.NDArray[np.integer[Any]], rows: tuple[np.ndarray, np.ndarray],
        cols: tuple[np.ndarray, np.ndarray], span: tuple[int, int], area: float,
    ) -> npt.NDArray[np.float32]:
        """Coverage by summing, for each footprint, the cells it overlaps times the overlap."""
        n = len(rows[0])
        out = np.zeros((n, self.classes), np.float32)
        step = max(1, (1 << 22) // (span[0] * span[1]))
        for a in range(0, n, step):
            part = slice(a, a + step)
            ri, wr = _overlaps(rows[0][part], rows[1][part], span[0], tile.shape[0])
            ci, wc = _overlaps(cols[0][part], cols[1][part], span[1], tile.shape[1])
            vals = tile[ri[:, :, None], ci[:, None, :]]
            weight = wr[:, :, None] * wc[:, None, :]
            present = np.flatnonzero(np.bincount(vals.ravel() + 1, minlength=self.classes + 1)[1:])
            for k in present:
                covered = np.where(vals == k, weight, 0.0).sum(axis=(1, 2))
                out[part, int(k)] = np.clip(covered / area, 0.0, 1.0)
        return out


def _overlaps(
    lo: npt.NDArray[np.float64], hi: npt.NDArray[np.float64], span: int, n: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """(N, span) cells from ``floor(lo)`` on (clipped to ``n - 1``) and how much of each the
    interval ``[lo, hi]`` covers."""
    first = np.floor(lo).astype(np.int64)
    cells = first[:, None] + np.arange(span)[None, :]
    weight = np.clip(np.minimum(hi[:, None], cells + 1) - np.maximum(lo[:, None], cells), 0, 1)
    return np.minimum(cells, n - 1), weight
