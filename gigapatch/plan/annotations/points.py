"""Exact point-in-polygon tests for many points at once (the even-odd rule).

A point (y, x) is inside a ring when a ray from it towards +x crosses the
ring's edges an odd number of times, an edge from (y0, x0) to (y1, x1)
counting when ``min(y0, y1) <= y < max(y0, y1)`` and the crossing lies
strictly right of the point (W. R. Franklin's PNPOLY rule). The rasterizer
(:mod:`gigapatch.plan.annotations.raster`) fills exactly the pixel centres
this rule calls inside, so a point test and a mask agree.

Rings with thousands of vertices (CAMELYON outlines) are cut into
horizontal bands, each listing the edges that reach into it, so a point is
tested against the edges of its band only.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["RingIndex"]

#: Largest number of (point, edge) pairs compared at once (bounds the memory of a test).
CHUNK = 1 << 21


class RingIndex:
    """The edges of one closed ring, banded by y, ready for :meth:`contains`.

    Parameters
    ----------
    ring
        (n, 2) float64 vertices as (x, y), not repeating the first one at the end.
    """

    def __init__(self, ring: npt.NDArray[np.float64]) -> None:
        x0, y0 = ring[:, 0], ring[:, 1]
        x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
        keep = y0 != y1  # horizontal edges never count
        self.x0, self.y0, self.x1, self.y1 = x0[keep], y0[keep], x1[keep], y1[keep]
        self.dx, self.dy = self.x1 - self.x0, self.y1 - self.y0
        self.top = float(ring[:, 1].min())
        self.bottom = float(ring[:, 1].max())
        n = len(self.y0)
        self.bands = max(1, int(math.sqrt(n) / 2))
        self.height = max((self.bottom - self.top) / self.bands, 1e-9)
        lo = np.minimum(self.y0, self.y1)
        hi = np.maximum(self.y0, self.y1)
        first = self._band(lo)
        last = self._band(hi)
        spans = last - first + 1
        edge = np.repeat(np.arange(n), spans)
        band = np.repeat(first, spans) + (np.arange(len(edge)) - np.repeat(
            np.cumsum(spans) - spans, spans))
        order = np.argsort(band, kind="stable")
        self.edges = edge[order]
        self.starts = np.searchsorted(band[order], np.arange(self.bands + 1))

    def _band(self, y: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
        b = np.floor((y - self.top) / self.height).astype(np.int64)
        return np.clip(b, 0, self.bands - 1)

    def contains(
        self, y: npt.NDArray[np.floating[Any]], x: npt.NDArray[np.floating[Any]]
    ) -> npt.NDArray[np.bool_]:
        """(N,) whether each point (y, x) is inside the ring (even-odd rule)."""
        yf = np.asarray(y, np.float64)
        xf = np.asarray(x, np.float64)
        inside = np.zeros(len(yf), bool)
        near = np.flatnonzero((yf >= self.top) & (yf < self.bottom))
        if not len(near):
            return inside
        band = self._band(yf[near])
        order = np.argsort(band, kind="stable")
        near, band = near[order], band[order]
        cuts = np.searchsorted(band, np.arange(self.bands + 1))
        for b in range(self.bands):
            pts = near[cuts[b] : cuts[b + 1]]
            edges = self.edges[self.starts[b] : self.starts[b + 1]]
            if not len(pts) or not len(edges):
                continue
            step = max(1, CHUNK // len(edges))
            for a in range(0, len(pts), step):
                p = pts[a : a + step]
                inside[p] = self._parity(yf[p], xf[p], edges)
        return inside

    def _parity(
        self, y: npt.NDArray[np.float64], x: npt.NDArray[np.float64],
        edges: npt.NDArray[np.intp],
    ) -> npt.NDArray[np.bool_]:
        y0, y1 = self.y0[edges], self.y1[edges]
        py = y[:, None]
        spans = (y0 > py) != (y1 > py)
        with np.errstate(all="ignore"):  # pairs that do not span are masked out below
            cross = self.x0[edges] + self.dx[edges] * ((py - y0) / self.dy[edges])
        hits = spans & (x[:, None] < cross)
        odd: npt.NDArray[np.bool_] = (np.count_nonzero(hits, axis=1) & 1).astype(bool)
        return odd
