"""The per-thread tile cache: emptied for every thread by ``forget_cached_tiles``."""

from __future__ import annotations

import threading

import numpy as np

import gigapatch
from gigapatch.sources.tilecache import TileCache, forget_cached_tiles, thread_cache
from gigapatch.synth import synthesize


def test_forgetting_empties_every_threads_cache_and_keeps_its_buffers(tmp_path):
    slide = gigapatch.open(synthesize(tmp_path / "s.svs", (700, 900), seed=3))
    calls: list[int] = []
    real = slide._reader._segment

    def counting(level, data, plane, index, fd, out=None):
        calls.append(index)
        return real(level, data, plane, index, fd, out=out)

    slide._reader._segment = counting
    seen: dict[str, object] = {}

    def read_twice(name: str) -> None:
        first = slide.read(100, 100, 300, 300)  # unaligned: its 4 tiles go to the cache
        seen[name] = thread_cache((256, 256, 3), np.uint8)
        assert np.array_equal(slide.read(100, 100, 300, 300), first)

    worker = threading.Thread(target=read_twice, args=("worker",))
    worker.start()
    worker.join()
    read_twice("main")
    assert len(calls) == 8  # each thread decoded the 4 tiles once
    calls.clear()
    forget_cached_tiles()
    slide.read(100, 100, 300, 300)
    assert len(calls) == 4  # decoded again
    assert thread_cache((256, 256, 3), np.uint8) is seen["main"]  # the same buffers


def test_clear_keeps_the_buffers_for_the_next_tiles():
    cache = TileCache((2, 2, 1), np.uint8, capacity=0)
    tiles = [cache.take() for _ in range(3)]
    for k, t in enumerate(tiles):
        cache.put(k, t)
    cache.clear()
    assert all(cache.get(k) is None for k in range(3))
    assert {id(cache.take()) for _ in range(3)} == {id(t) for t in tiles}
