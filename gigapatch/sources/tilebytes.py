"""JPEG tiles of a TIFF level as stored, never decoded: what tile pass-through copies.

:class:`JpegTileBytes` is the part of :class:`~gigapatch.sources.tiff.TiffReader`
that hands out each tile's bytes as a standalone JPEG stream (shared
``JPEGTables`` and a colour marker spliced in, :meth:`JpegTiles.standalone`),
reading tiles that lie back to back in the file with one ``pread`` per run
(:func:`_runs`), and that says why a level's tiles cannot be handed out so.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import tifffile

from gigapatch.errors import CorruptTileError, SlideError
from gigapatch.sources.jpeg import TileDecodeError, header

if TYPE_CHECKING:
    from gigapatch.sources.slide import Level

__all__ = ["JpegTileBytes"]


class JpegTileBytes:
    """Tile pass-through reads of a TIFF reader (mixed into ``TiffReader``, whose state it
    reads: the levels' layout, the open file and its size)."""

    path: str
    levels: tuple[Level, ...]
    _data: list[Any]
    _size: int

    if TYPE_CHECKING:
        def _handle(self) -> int: ...
        def _corrupt(self, level: int, index: int, reason: str) -> CorruptTileError: ...
        def _segment_bytes(self, level: int, data: Any, plane: int, index: int,
                           fd: int) -> bytes | None: ...

    def jpeg_problem(self, level: int) -> str | None:
        """Why the tiles of ``level`` cannot be handed out as standalone JPEG streams that
        decode to the pixels this reader decodes (``None``: they can).

        Looks at the level's layout and at the header of its first stored tile.
        """
        data, lvl = self._data[level], self.levels[level]
        if data.compression != tifffile.COMPRESSION.JPEG:
            return f"level {level} is stored with {lvl.compression} compression, not JPEG"
        if not data.tiled:
            return f"level {level} is stored in strips, not tiles"
        if data.jpeg is None or len(data.offsets) != 1:
            return (f"the JPEG tiles of level {level} are not 8-bit RGB, YCbCr or grey in one "
                    "plane")
        stored = np.flatnonzero((data.counts[0] > 0)
                                & (data.offsets[0] + data.counts[0] <= self._size))
        if not len(stored):
            return None  # every tile is sparse or missing: nothing to contradict
        index = int(stored[0])
        raw = os.pread(self._handle(), int(data.counts[0][index]),
                       int(data.offsets[0][index]))
        try:
            head = header(data.jpeg.standalone(raw))
        except TileDecodeError as exc:
            return f"tile {index} of level {level} is not a complete JPEG stream: {exc}"
        if head.precision != 8 or len(head.components) != data.samples:
            return (f"the JPEG tiles of level {level} hold {len(head.components)} components "
                    f"of {head.precision} bits, not {data.samples} of 8")
        if (head.height, head.width) != lvl.tile:
            return (f"the JPEG frames of level {level} are {head.height}x{head.width} pixels, "
                    f"not its {lvl.tile[0]}x{lvl.tile[1]} tiles")
        if data.jpeg.force_rgb and head.adobe not in (None, 0):
            return (f"the tiles of level {level} carry an Adobe marker saying YCbCr where the "
                    "TIFF says RGB: one stream cannot say both")
        return None

    def jpeg_tiles(self, level: int, indices: Sequence[int]) -> list[bytes | None]:
        """The standalone JPEG stream of each tile ``indices`` (row × tiles across + column)
        of ``level``, as stored, never decoded (:meth:`JpegTiles.standalone`); None for a
        sparse tile (never written: it reads as zeros).

        Raises
        ------
        SlideError
            The level's tiles are not such streams (:meth:`jpeg_problem` says why).
        CorruptTileError
            A tile's bytes are missing, or are not a complete JPEG stream.
        """
        data = self._data[level]
        jpeg = data.jpeg
        if jpeg is None or not data.tiled or len(data.offsets) != 1:
            raise SlideError(f"{self.path!r}: {self.jpeg_problem(level)}")
        fd = self._handle()
        tiles = np.asarray(indices, np.int64).reshape(-1)
        offsets, counts = data.offsets[0][tiles], data.counts[0][tiles]
        bad = np.flatnonzero(((counts == 0) & (offsets != 0)) | (offsets + counts > self._size))
        if len(bad):  # the first tile whose bytes are missing, named as a read names it
            self._segment_bytes(level, data, 0, int(tiles[bad[0]]), fd)
        found: list[bytes | None] = []
        at, size = offsets.tolist(), counts.tolist()
        standalone = jpeg.standalone
        for a, b in _runs(offsets, counts):
            start, span = at[a], at[b - 1] + size[b - 1] - at[a]
            if span == 0:  # sparse: never written, reads as zeros
                found.extend([None] * (b - a))
                continue
            run = os.pread(fd, span, start)
            view = memoryview(run)
            for k in range(a, b):
                lo, hi = at[k] - start, at[k] - start + size[k]
                if hi > len(run):  # the file shrank after it was opened
                    raise self._corrupt(level, int(tiles[k]), f"only {max(len(run) - lo, 0)} "
                                        f"of its {size[k]} bytes at byte {at[k]} could be "
                                        "read: the file is truncated")
                try:
                    found.append(standalone(view[lo:hi]))
                except TileDecodeError as exc:
                    raise self._corrupt(level, int(tiles[k]), str(exc)) from None
        return found


#: Most bytes one read of consecutive tiles covers (:func:`_runs`).
_RUN_BYTES = 8 << 20


def _runs(offsets: npt.NDArray[np.int64],
          counts: npt.NDArray[np.int64]) -> list[tuple[int, int]]:
    """Split tiles into runs ``[a, b)`` that lie back to back in the file, each read with one
    ``pread`` of at most :data:`_RUN_BYTES` (a grid row of a scan is one run); a sparse tile
    (count 0) is a run of its own, of no bytes."""
    n = len(offsets)
    if not n:
        return []
    ends = offsets + counts
    breaks = np.flatnonzero((offsets[1:] != ends[:-1]) | (counts[1:] == 0) | (counts[:-1] == 0))
    bounds = [0, *(breaks + 1).tolist(), n]
    runs = []
    for a, b in itertools.pairwise(bounds):
        while b - a > 1 and ends[b - 1] - offsets[a] > _RUN_BYTES:  # too long: cut it
            cut = a + max(1, int(np.searchsorted(ends[a:b], offsets[a] + _RUN_BYTES, "right")))
            runs.append((a, cut))
            a = cut
        runs.append((a, b))
    return runs
