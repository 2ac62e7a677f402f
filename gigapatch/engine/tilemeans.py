"""Grid patches resampled by an integer factor, from tiles averaged once each (host path).

A patch read at an integer factor f (20× patches from a 40× level: f = 2) is the
f × f block mean of its level region. When the region's corner is a multiple of
f — every patch of a grid, which is laid out in target pixels — and the tiles'
sides are multiples of f, every block lies inside one tile. So rather than
copying each patch's level region out of its tiles and averaging that (a large
intermediate per patch, out of the CPU caches by the time it is averaged), each
tile is averaged right after it is decoded, while it is still in cache, and the
patches are copied together from the f² times smaller averaged tiles.

Every output pixel is the same integer arithmetic on the same pixels as the
region path (:func:`gigapatch.kernels.area_resample`): ``rint`` of the exact
block sum over f², ties to even. Each thread keeps its averaged tiles
(:mod:`.meancache`), so the tile rows that consecutive runs of patches share are
decoded and averaged once.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from gigapatch.engine.meancache import MeanStore, mean_store, thread_buffer
from gigapatch.kernels.resample_host import block_mean
from gigapatch.sources import Slide

__all__ = ["BATCH", "MAX_TILE", "read_tile_means", "tile_means_apply", "working_tile"]

#: Tiles decoded by one read and averaged together.
BATCH = 32
#: Largest reader tile (pixels) used as it is; bigger ones (an in-memory array's
#: "tile" is the whole level) are cut into virtual tiles of about 256².
MAX_TILE = 1 << 22


def working_tile(slide: Slide, level: int, f: int) -> tuple[int, int] | None:
    """The tile shape averaging works in, or None when the reader's tiles do not suit ``f``."""
    th, tw = slide.levels[level].tile
    if th * tw > MAX_TILE:
        side = f * -(-256 // f)
        return side, side
    if th % f or tw % f:
        return None
    return th, tw


def tile_means_apply(slide: Slide, level: int, factor: float, ly: npt.NDArray[np.int64],
                     lx: npt.NDArray[np.int64]) -> bool:
    """Whether :func:`read_tile_means` reads patches at level pixels (``ly``, ``lx``) of
    ``slide`` at ``level`` by ``factor``: an integer factor, tiles it divides, corners on
    multiples of it."""
    if not float(factor).is_integer() or factor < 2:
        return False
    f = int(factor)
    if working_tile(slide, level, f) is None:
        return False
    return bool(np.all(ly % f == 0) and np.all(lx % f == 0))


def read_tile_means(slide: Slide, level: int, f: int, ly: npt.NDArray[np.int64],
                    lx: npt.NDArray[np.int64], out: npt.NDArray[Any]) -> None:
    """Fill ``out[k]`` with the f × f block means of the level region at (``ly[k]``, ``lx[k]``).

    ``out`` is (N, h, w, C); each region is (f·h) × (f·w) pixels of ``level``
    whose top-left level pixel (ly, lx) is a multiple of f, wholly inside the
    level (the caller checks both). Integer pixels are ``rint`` of the exact
    block sum over f² (ties to even); float pixels the block mean in their
    precision.
    """
    tile = working_tile(slide, level, f)
    if tile is None:
        raise ValueError(f"level {level} tiles {slide.levels[level].tile} do not suit f={f}")
    n, h, w = out.shape[:3]
    if n == 0:
        return
    store = mean_store(slide, level, f, tile)
    th, tw = tile
    ly, lx = np.asarray(ly, np.int64), np.asarray(lx, np.int64)
    # the first and last tile rows of the first and last patches: a neighbouring task's
    # patches may share them
    boundary = {int(y) // th for y in (ly[0], ly[0] + f * h - 1, ly[-1], ly[-1] + f * h - 1)}
    per_patch = (-(-h * f // th) + 1) * (-(-w * f // tw) + 1)
    step = max(1, store.slots // 8 // per_patch)  # eight threads' chunks fit the store
    for s in range(0, n, step):
        e = min(n, s + step)
        _Chunk(slide, level, f, store, tile, ly[s:e], lx[s:e], out[s:e]).run(boundary)


class _Chunk:
    """One run of patches whose averaged tiles fit the store together."""

    def __init__(self, slide: Slide, level: int, f: int, store: MeanStore,
                 tile: tuple[int, int], ly: npt.NDArray[np.int64], lx: npt.NDArray[np.int64],
                 out: npt.NDArray[Any]) -> None:
        self.slide, self.level, self.f, self.out, self.store = slide, level, f, out, store
        (self.th, self.tw), (self.lh, self.lw) = tile, slide.levels[level].shape
        self.bh, self.bw = self.th // f, self.tw // f  # an averaged tile
        self.across = -(-self.lw // self.tw)
        self.gy, self.gx = ly // f, lx // f  # output-pixel (lattice) origin of each patch
        self.private: dict[int, npt.NDArray[Any]] = {}  # averaged tiles no slot was free for

    def run(self, boundary: set[int]) -> None:
        """Average the tiles the store lacks, copy the patches, and let the tiles go (those
        in the tile rows ``boundary`` are kept longer)."""
        k, ty, tx = self._pairs()
        uniq, inverse = np.unique(ty * self.across + tx, return_inverse=True)
        slots, missing = self.store.acquire(uniq.tolist())
        try:
            for s in range(0, len(missing), BATCH):
                slots.update(self._average(missing[s : s + BATCH]))
            self._assemble(k, ty, tx, [slots.get(t, -1) for t in uniq.tolist()], uniq,
                           inverse)
        finally:
            self.store.release(slots, {t for t in slots if t // self.across in boundary})

    def _pairs(self) -> tuple[npt.NDArray[np.int64], ...]:
        """(patch, tile row, tile column) of every tile each patch takes pixels from."""
        h, w = self.out.shape[1:3]
        ty0, ty1 = self.gy // self.bh, (self.gy + h - 1) // self.bh
        tx0, tx1 = self.gx // self.bw, (self.gx + w - 1) // self.bw
        ty = ty0[:, None, None] + np.arange(int((ty1 - ty0).max()) + 1)[None, :, None]
        tx = tx0[:, None, None] + np.arange(int((tx1 - tx0).max()) + 1)[None, None, :]
        mask = (ty <= ty1[:, None, None]) & (tx <= tx1[:, None, None])
        k = np.broadcast_to(np.arange(len(ty0))[:, None, None], mask.shape)[mask]
        return k, np.broadcast_to(ty, mask.shape)[mask], np.broadcast_to(tx, mask.shape)[mask]

    def _average(self, tiles: list[int]) -> dict[int, int]:
        """Decode ``tiles`` (one read per tile shape: edge tiles are cut), average them into
        reserved slots and publish them; their slots (private tiles: -1)."""
        reserved = self.store.reserve(len(tiles))
        mine = [(i, slot) for i, slot in enumerate(reserved) if slot is not None]
        try:
            small = self._decode_and_average(tiles, reserved)
            if small is not None and mine:
                self.store.slab[[slot for _, slot in mine]] = small[[i for i, _ in mine]]
        except BaseException:
            self.store.give_back(slot for _, slot in mine)
            raise
        if small is not None:  # tiles no slot was free for stay with this chunk
            for i, slot in enumerate(reserved):
                if slot is None:
                    self.private[tiles[i]] = small[i].copy()
        return self.store.publish([tiles[i] for i, _ in mine], [slot for _, slot in mine])

    def _decode_and_average(self, tiles: list[int],
                            reserved: list[int | None]) -> npt.NDArray[Any] | None:
        """Average ``tiles`` straight into their reserved slots when those run consecutively
        (they mostly do: slots are freed in the order they were filled); else into a
        buffer, returned."""
        f, c, dtype = self.f, self.out.shape[3], self.out.dtype
        rows, cols = np.divmod(np.asarray(tiles, np.int64), self.across)
        eh = np.minimum(self.th, self.lh - rows * self.th)
        ew = np.minimum(self.tw, self.lw - cols * self.tw)
        dy, dx = self.slide.levels[self.level].downsample
        decoded = thread_buffer("decoded", (len(tiles), self.th, self.tw, c), dtype)
        first = reserved[0]
        if first is not None and reserved == list(range(first, first + len(tiles))):
            small, into = self.store.slab[first : first + len(tiles)], None
        else:
            small = into = thread_buffer("small", (len(tiles), self.bh, self.bw, c), dtype)
        for hh, ww in sorted(set(zip(eh.tolist(), ew.tolist(), strict=True))):
            idx = np.flatnonzero((eh == hh) & (ew == ww))
            ys = np.rint(rows[idx] * self.th * dy).astype(np.int64)
            xs = np.rint(cols[idx] * self.tw * dx).astype(np.int64)
            if (hh, ww) == (self.th, self.tw) and idx[-1] - idx[0] + 1 == len(idx):
                src = decoded[idx[0] : idx[-1] + 1]  # JPEG tiles decode straight into it
                self.slide.read_regions(ys, xs, hh, ww, self.level, out=src)
            else:
                src = self.slide.read_regions(ys, xs, hh, ww, self.level)
            bh, bw = hh // f, ww // f
            if len(idx) == len(tiles):  # the last decoded first: they are still in cache
                block_mean(src[::-1, : f * bh, : f * bw], (f, f), small[::-1, :bh, :bw])
            else:
                small[idx, :bh, :bw] = block_mean(
                    src[:, : f * bh, : f * bw], (f, f), np.empty((len(idx), bh, bw, c), dtype))
        return into

    def _assemble(self, k: npt.NDArray[np.int64], ty: npt.NDArray[np.int64],
                  tx: npt.NDArray[np.int64], slot_of: list[int], uniq: npt.NDArray[np.int64],
                  inverse: npt.NDArray[np.int64]) -> None:
        """Copy each patch's part of each averaged tile into ``out``."""
        h, w = self.out.shape[1:3]
        bh, bw = self.bh, self.bw
        y0 = np.maximum(self.gy[k], ty * bh)
        y1 = np.minimum(self.gy[k] + h, (ty + 1) * bh)
        x0 = np.maximum(self.gx[k], tx * bw)
        x1 = np.minimum(self.gx[k] + w, (tx + 1) * bw)
        out, slab, private = self.out, self.store.slab, self.private
        tiles = uniq[inverse].tolist()
        slots = np.asarray(slot_of, np.int64)[inverse].tolist()
        for kk, a, b, c, d, p, q, slot, t in zip(
                k.tolist(), (y0 - self.gy[k]).tolist(), (y1 - y0).tolist(),
                (x0 - self.gx[k]).tolist(), (x1 - x0).tolist(), (y0 - ty * bh).tolist(),
                (x0 - tx * bw).tolist(), slots, tiles, strict=True):
            src = slab[slot] if slot >= 0 else private[t]
            out[kk, a : a + b, c : c + d] = src[p : p + b, q : q + d]
