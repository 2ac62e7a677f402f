"""Averaged tiles shared by the threads of a run (:mod:`.tilemeans`), least recently used out.

A run's tasks (shards, or blocks of an in-memory extraction) each cover a run
of the plan; neighbouring runs share the tile rows at their boundary, and the
scheduler hands neighbouring runs to different threads, in an order of its own.
So averaged tiles live in one store per (slide, level, factor, tile shape) that
every thread reads and fills:

* a task *pins* the averaged tiles it copies from while it copies, so no other
  thread reuses their slots meanwhile;
* tiles a task touches near its first and last patches (where a neighbouring
  task may need them) are kept longer than the others: when slots run out, the
  least recently used tile from inside a task goes first, a boundary tile only
  when no other is left.

Averaged tiles are ``f²`` times smaller than decoded ones. Stores live for one
run (:func:`run_scope`, entered by :func:`~gigapatch.engine.extract` and
:func:`~gigapatch.engine.extract_to_zarr`), so a run never sees pixels of an
earlier one (an in-memory source may have changed in between) and a benchmark's
repeats decode their tiles again; outside a run (a direct
:func:`~gigapatch.engine.read_patches`) each call has its own. A store also goes
with its slide.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import numpy.typing as npt

from gigapatch.sources import Slide

__all__ = ["MEAN_BYTES", "MeanStore", "mean_store", "run_scope", "thread_buffer"]

#: Bytes of averaged tiles a store keeps (~2,700 averaged 256² RGB tiles at f = 2: two
#: tasks of 256 patches of 598² level pixels, or 21 tile rows of a 32,768-pixel-wide level).
MEAN_BYTES = 128 << 20
#: Stores kept at once (the most recently used); each holds ``MEAN_BYTES``.
STORES = 2

_LOCK = threading.Lock()
_RUNS = 0  # runs inside run_scope
_Key = tuple[int, int, int, tuple[int, int]]  # id(slide), level, f, tile shape
_STORES: OrderedDict[_Key, MeanStore] = OrderedDict()
_LOCAL = threading.local()


class MeanStore:
    """Averaged tiles by tile index: tile ``t``'s pixels are ``slab[slot]`` (an edge tile of
    the level fills its top-left part). Thread-safe.

    Parameters
    ----------
    shape
        (th/f, tw/f, C) of a slot.
    dtype
        Pixel dtype.
    capacity
        Bytes of slots (at least ``minimum`` slots).
    """

    def __init__(self, shape: tuple[int, int, int], dtype: npt.DTypeLike, capacity: int,
                 minimum: int = 64) -> None:
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        self.slots = max(minimum, capacity // nbytes)
        self.slab = np.empty((self.slots, *shape), dtype)
        self._lock = threading.Lock()
        self._slot: dict[int, int] = {}  # tile -> slot, for published tiles
        self._inner: OrderedDict[int, None] = OrderedDict()  # unpinned, evicted first
        self._boundary: OrderedDict[int, None] = OrderedDict()  # unpinned boundary tiles
        self._pins: dict[int, int] = {}
        self._free = list(range(self.slots - 1, -1, -1))
        self.decoded = 0  # tiles averaged into the store (for tests and estimates)
        self.owner: weakref.ref[Slide] | None = None  # the slide whose tiles it holds

    def acquire(self, tiles: Iterable[int]) -> tuple[dict[int, int], list[int]]:
        """Pin the ``tiles`` the store holds; return ``({tile: slot}, missing tiles)``."""
        found, missing = {}, []
        with self._lock:
            for t in tiles:
                slot = self._slot.get(t)
                if slot is None:
                    missing.append(t)
                    continue
                self._pin(t)
                found[t] = slot
        return found, missing

    def reserve(self, m: int) -> list[int | None]:
        """``m`` slots to average new tiles into (None where every slot is pinned),
        evicting least recently used tiles; they are not visible until :meth:`publish`."""
        out: list[int | None] = []
        with self._lock:
            for _ in range(m):
                if self._free:
                    out.append(self._free.pop())
                    continue
                lru = self._inner or self._boundary
                if not lru:
                    out.append(None)
                    continue
                t, _ = lru.popitem(last=False)
                out.append(self._slot.pop(t))
        return out

    def publish(self, tiles: list[int], slots: list[int]) -> dict[int, int]:
        """Make reserved ``slots`` (now holding ``tiles``) visible, pinned; return the slot
        of each tile — another thread's, when it published the same tile first (the
        reserved slot is then given back)."""
        out = {}
        with self._lock:
            for t, slot in zip(tiles, slots, strict=True):
                have = self._slot.get(t)
                if have is not None:
                    self._free.append(slot)
                    slot = have
                else:
                    self._slot[t] = slot
                    self.decoded += 1
                self._pin(t)
                out[t] = slot
        return out

    def give_back(self, slots: Iterable[int]) -> None:
        """Return reserved slots that were not published (their averaging failed)."""
        with self._lock:
            self._free.extend(slots)

    def release(self, tiles: Iterable[int], boundary: set[int]) -> None:
        """Unpin ``tiles`` (one pin each); those in ``boundary`` (near a task's first or last
        patches) are kept longer, in at most half the slots."""
        with self._lock:
            for t in tiles:
                left = self._pins[t] - 1
                if left:
                    self._pins[t] = left
                    continue
                del self._pins[t]
                if t not in boundary:
                    self._inner[t] = None
                    continue
                self._boundary[t] = None
                if len(self._boundary) > self.slots // 2:  # boundary tiles keep half at most
                    old, _ = self._boundary.popitem(last=False)
                    self._inner[old] = None
                    self._inner.move_to_end(old, last=False)

    def clear(self) -> None:
        """Forget every tile (none may be pinned)."""
        with self._lock:
            self._slot.clear()
            self._inner.clear()
            self._boundary.clear()
            self._pins.clear()
            self._free = list(range(self.slots - 1, -1, -1))

    def _pin(self, t: int) -> None:
        count = self._pins.get(t, 0)
        if not count:
            self._inner.pop(t, None)
            self._boundary.pop(t, None)
        self._pins[t] = count + 1


def mean_store(slide: Slide, level: int, f: int, tile: tuple[int, int]) -> MeanStore:
    """The store of averaged tiles of ``slide`` at ``level``, factor ``f``, ``tile`` shape.

    Inside a run, made on first use and shared (the :data:`STORES` most recently
    used are kept, and a store goes with its slide); outside, a new one.
    """
    th, tw = tile
    key = (id(slide), level, f, tile)
    with _LOCK:
        if not _RUNS:
            return MeanStore((th // f, tw // f, slide.channels), slide.dtype, MEAN_BYTES)
        store = _STORES.get(key)
        if store is not None and store.owner is not None and store.owner() is slide:
            _STORES.move_to_end(key)
            return store
        _STORES.pop(key, None)
        while len(_STORES) >= STORES:
            _STORES.popitem(last=False)
        store = MeanStore((th // f, tw // f, slide.channels), slide.dtype, MEAN_BYTES)
        store.owner = weakref.ref(slide, _dropper(key))
        _STORES[key] = store
        return store


def _dropper(key: _Key) -> Callable[[Any], None]:
    """A weakref callback dropping ``key``'s store (without the lock: the collector may
    run it while this thread holds it)."""

    def drop(_: Any) -> None:
        _STORES.pop(key, None)

    return drop


@contextmanager
def run_scope() -> Iterator[None]:
    """While any run is inside this context, tasks share stores; when the first run enters
    and the last one leaves, every store is let go (a thread still reading one keeps it
    until it is done)."""
    global _RUNS
    with _LOCK:
        _RUNS += 1
        if _RUNS == 1:
            _STORES.clear()
    try:
        yield
    finally:
        with _LOCK:
            _RUNS -= 1
            if _RUNS == 0:
                _STORES.clear()


def thread_buffer(role: str, shape: tuple[int, ...], dtype: npt.DTypeLike) -> Any:
    """A per-thread scratch array of ``shape`` for ``role``, reused from call to call.

    It may hold more rows than asked; the first ``shape[0]`` are returned.
    """
    buffers: dict[str, npt.NDArray[Any]] | None = getattr(_LOCAL, "buffers", None)
    if buffers is None:
        buffers = _LOCAL.buffers = {}
    buf = buffers.get(role)
    if (buf is None or buf.shape[1:] != tuple(shape[1:]) or buf.shape[0] < shape[0]
            or buf.dtype != np.dtype(dtype)):
        buf = buffers[role] = np.empty((max(32, shape[0]), *shape[1:]), dtype)
    return buf[: shape[0]]
