"""A small per-thread cache of decoded tiles, so consecutive batch reads decode a tile once.

The engine reads a shard's patches in batches (resampled patches: ``round(size · f)``
level pixels each, bounded by a memory budget). Neighbouring batches share the tile
rows at their boundary; without a cache those tiles are decoded once per batch (about
1.35× the decodes for 20× patches from a 40× level). The cache keeps the most
recently decoded tiles of the calling thread — one cache per thread for all slides,
so its memory does not grow with the number of slides — in a ring of preallocated
buffers (fresh memory costs ~1.8 s/GiB to touch here, as much as decoding it).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["CACHE_BYTES", "TileCache", "forget_cached_tiles", "thread_cache"]

#: Bytes of decoded tiles each thread keeps (a 40× row of 256² RGB tiles of a 100k² slide:
#: ~77 MB; 64 MB keeps the last ~340 tiles, the boundary rows of consecutive batches).
CACHE_BYTES = 64 << 20

_LOCAL = threading.local()
_GENERATION = [0]  # bumped by forget_cached_tiles: every thread's cache empties on next use


class TileCache:
    """Decoded tiles of one shape and dtype, least recently stored first out.

    Parameters
    ----------
    shape, dtype
        Of every tile the cache holds.
    capacity
        Bytes of tiles to keep (at least 4 tiles).
    """

    def __init__(self, shape: tuple[int, ...], dtype: npt.DTypeLike,
                 capacity: int = CACHE_BYTES) -> None:
        self.shape, self.dtype = tuple(shape), np.dtype(dtype)
        nbytes = int(np.prod(self.shape)) * self.dtype.itemsize
        self.slots = max(4, capacity // max(nbytes, 1))
        self._tiles: OrderedDict[Hashable, npt.NDArray[Any]] = OrderedDict()
        self._free: list[npt.NDArray[Any]] = []

    def get(self, key: Hashable) -> npt.NDArray[Any] | None:
        """The tile stored under ``key``, or None."""
        return self._tiles.get(key)

    def take(self) -> npt.NDArray[Any]:
        """A buffer to decode the next tile into: a free one, or the oldest tile's (evicted)."""
        if self._free:
            return self._free.pop()
        if len(self._tiles) < self.slots:
            return np.empty(self.shape, self.dtype)
        return self._tiles.popitem(last=False)[1]

    def put(self, key: Hashable, tile: npt.NDArray[Any]) -> None:
        """Store ``tile`` (a buffer from :meth:`take`, now holding the decoded tile)."""
        self._tiles[key] = tile

    def give_back(self, tile: npt.NDArray[Any]) -> None:
        """Return a buffer from :meth:`take` that holds no valid tile (its decode failed)."""
        self._free.append(tile)

    def clear(self) -> None:
        """Forget every tile (their buffers are kept for the next ones)."""
        self._free.extend(self._tiles.values())
        self._tiles.clear()


def forget_cached_tiles() -> None:
    """Empty every thread's cache (each on its next use): a benchmark's repeats then decode
    their tiles again."""
    _GENERATION[0] += 1


def thread_cache(shape: tuple[int, ...], dtype: npt.DTypeLike) -> TileCache:
    """The calling thread's cache for tiles of ``shape`` and ``dtype`` (one per thread)."""
    cache: TileCache | None = getattr(_LOCAL, "cache", None)
    if cache is None or cache.shape != tuple(shape) or cache.dtype != np.dtype(dtype):
        cache = TileCache(shape, dtype)
        _LOCAL.cache = cache
        _LOCAL.generation = _GENERATION[0]
    elif _LOCAL.generation != _GENERATION[0]:
        cache.clear()
        _LOCAL.generation = _GENERATION[0]
    return cache
