"""Tile pass-through: a grid whose patches are its sources' own JPEG tiles, stored as they are.

When every patch of a plan is exactly one JPEG tile of its source — a grid,
read at a stored level as it is (no resampling), patch size = tile size,
patches on tile corners (stride a multiple of the tile), no patch past the
edge of the level, no dilation, uint8 pixels — and the store's codec is
``jpeg:source``, a shard task reads each tile's compressed bytes
(:meth:`Slide.jpeg_tiles`: the file's shared ``JPEGTables`` and a colour
marker spliced in where its tiles leave them out) and writes them as the
chunks of its shard: no decode, no re-encode. A chunk then decodes to exactly
the pixels tifffile decodes from the file, bit for bit.

Which patches there are is still the plan's choice (the tissue mask,
``min_tissue``); pass-through only changes how their pixels reach the store.

Partial edge tiles never pass: the file stores them full size, padded however
its writer chose, while a patch past the edge holds the plan's ``fill`` there
— so a grid with ``padding="same"`` that reaches past the edge is refused,
and a ``"valid"`` grid has no such patches. A ``jpeg:source`` request that
does not qualify is one :class:`~gigapatch.errors.InvalidArgumentError` naming
why (:func:`passthrough_problem`), never a silent re-encode.

Tiles are copied, not decoded, so damage that libjpeg would find inside a
tile's data is found when the chunk is read (the store's JPEG decoder is
strict, as the source reader is; ``gigapatch verify --deep`` decodes every
chunk). A tile whose bytes are missing or cut short (no end marker) is a
:class:`~gigapatch.errors.CorruptTileError` here already, handled by
``on_error`` like any other; a failed or sparse (never written) tile is
stored as a black tile, as the decoding path stores it.
"""

from __future__ import annotations

import errno
import functools
import itertools
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

import imagecodecs
import numpy as np
import zarr

from gigapatch.engine.workers import TaskSlides, check_output_seen
from gigapatch.engine.writing import WriterHandle, leave_worker_pool
from gigapatch.errors import CorruptTileError, InvalidArgumentError, NoSpaceError, OnError
from gigapatch.plan import PatchPlan
from gigapatch.sources import Slide
from gigapatch.store import ShardLayout, parse_codec

__all__ = ["SOURCE_CODEC", "check_passthrough", "passthrough_problem", "passthrough_task"]

#: The store codec whose chunks are the source's own JPEG tiles.
SOURCE_CODEC = "jpeg:source"

#: What a shard task reports of the patches it could not read: (row in the shard, source, why).
Failures = list[tuple[int, int, str]]


def _level_pixels(slide: Slide, level: int, plan: PatchPlan,
                  rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Top-left corners of patches ``rows`` in pixels of ``level`` (as the reader rounds)."""
    dy, dx = slide.levels[level].downsample
    return (np.rint(plan.y[rows] / dy).astype(np.int64),
            np.rint(plan.x[rows] / dx).astype(np.int64))


def _slide_problem(slide: Slide, k: int, plan: PatchPlan) -> str | None:
    """Why the patches of source ``k`` are not its JPEG tiles, or None."""
    level, factor = plan.level_of(k), plan.factor_of(k)
    name = repr(slide.name)
    if factor != 1.0:
        return (f"{name} is resampled (level {level} read {factor:g}x larger and averaged "
                "down to the requested pixel size): only a level read as it is passes")
    if slide.dtype != np.uint8:
        return f"{name} holds {slide.dtype} pixels, not uint8"
    problem = slide.jpeg_problem(level)
    if problem is not None:
        return f"{name}: {problem}"
    (th, tw), (lh, lw) = slide.levels[level].tile, slide.levels[level].shape
    if tuple(plan.size) != (th, tw):
        return (f"the patch size {plan.size[0]}x{plan.size[1]} is not the {th}x{tw} tiles of "
                f"{name} level {level}")
    rows = np.flatnonzero(plan.slide == k)
    ly, lx = _level_pixels(slide, level, plan, rows)
    off = np.flatnonzero((ly % th != 0) | (lx % tw != 0))
    if len(off):
        i = int(off[0])
        sy, sx = plan.stride
        why = (f"the stride {sy}x{sx} is not a multiple of the tile size" if sy % th or sx % tw
               else "the grid does not start on a tile corner")
        return (f"patch {int(rows[i])} at level-{level} pixel (y={int(ly[i])}, x={int(lx[i])}) "
                f"of {name} is not on a corner of its {th}x{tw} tiles ({why})")
    past = np.flatnonzero((ly < 0) | (lx < 0) | (ly + th > lh) | (lx + tw > lw))
    if len(past):
        i = int(past[0])
        return (f"patch {int(rows[i])} at level-{level} pixel (y={int(ly[i])}, x={int(lx[i])}) "
                f"reaches past the edge of {name} level {level} ({lh}x{lw}): a partial edge "
                "tile is padded one way in the file and another in the patch; use "
                "padding='valid'")
    return None


def passthrough_problem(slides: Sequence[Slide], plan: PatchPlan) -> str | None:
    """Why the patches of ``plan`` are not exactly their sources' JPEG tiles (None: they are).

    They are when the plan is a grid, not dilated, and for every source with
    patches: read at a stored level without resampling, uint8, the level's
    tiles are JPEG streams that stand alone (:meth:`Slide.jpeg_problem`), the
    patch size is the tile size, and every patch lies on a tile corner and
    inside the level.
    """
    if plan.kind != "grid":
        return (f"the plan is a {plan.kind} plan: patches at random places are not the file's "
                "tiles")
    if tuple(plan.dilation) != (1, 1):
        ry, rx = plan.dilation
        return f"the patches are dilated {ry}x{rx} (a transform of the tiles' pixels)"
    for k in np.unique(plan.slide).tolist():
        problem = _slide_problem(slides[k], k, plan)
        if problem is not None:
            return problem
    return None


def check_passthrough(slides: Sequence[Slide], plan: PatchPlan, codec: Any) -> bool:
    """Whether a run stores its patches by tile pass-through: True when ``codec`` is
    ``jpeg:source`` and the plan qualifies, False for any other codec.

    Raises
    ------
    InvalidArgumentError
        ``codec`` is ``jpeg:source`` and the plan's patches are not exactly its sources'
        JPEG tiles; the message says why (:func:`passthrough_problem`).
    """
    if str(parse_codec(codec)) != SOURCE_CODEC:  # an unknown codec is named here already
        return False
    problem = passthrough_problem(slides, plan)
    if problem is not None:
        raise InvalidArgumentError(
            f"codec {SOURCE_CODEC!r} stores each source JPEG tile as it is, but {problem}; "
            "choose codec 'jpeg' (to re-encode patches) or a lossless codec"
        )
    return True


@functools.cache
def _black_tile(height: int, width: int, channels: int) -> bytes:
    """A JPEG stream decoding to exactly zeros: what a failed or sparse tile is stored as."""
    shape = (height, width) if channels == 1 else (height, width, channels)
    return bytes(imagecodecs.jpeg8_encode(np.zeros(shape, np.uint8), level=100,
                                          subsampling="444"))


def read_tiles(slides: Sequence[Slide], plan: PatchPlan,
               on_error: OnError = "stop") -> tuple[list[bytes], Failures]:
    """The standalone JPEG stream of every patch of ``plan`` (a qualifying plan), in order.

    A sparse tile is a black tile; with ``on_error="skip"`` so is a tile whose bytes are
    missing or cut short, and it is reported (row, source, why).

    Raises
    ------
    CorruptTileError
        A tile's bytes are missing or cut short, and ``on_error="stop"``.
    """
    blobs: list[bytes] = []
    failures: Failures = []
    cuts = np.flatnonzero(np.diff(plan.slide)) + 1  # runs of one source, in plan order
    bounds = np.concatenate([[0], cuts, [len(plan)]]).astype(int).tolist()
    for a, b in itertools.pairwise(bounds):
        k = int(plan.slide[a])
        slide, level = slides[k], plan.level_of(k)
        (th, tw), across = slide.levels[level].tile, -(-slide.levels[level].shape[1]
                                                       // slide.levels[level].tile[1])
        ly, lx = _level_pixels(slide, level, plan, np.arange(a, b))
        indices = ((ly // th) * across + lx // tw).tolist()
        black = _black_tile(th, tw, slide.channels)
        try:
            found = slide.jpeg_tiles(level, indices)
        except CorruptTileError:
            if on_error == "stop":
                raise
            found = []
            for i, index in enumerate(indices):
                try:
                    found.extend(slide.jpeg_tiles(level, [index]))
                except CorruptTileError as exc:
                    found.append(None)
                    failures.append((a + i, k, str(exc)))
        blobs.extend(black if blob is None else blob for blob in found)
    return blobs, failures


def passthrough_task(
    sources: TaskSlides, plan: PatchPlan, images: zarr.Array[Any], index: int, device: str,
    sync: bool, on_error: OnError = "stop", writer: WriterHandle | None = None,
) -> tuple[int, int | Future[int] | None, Failures]:
    """Read shard ``index``'s JPEG tiles as stored and hand them to the writer (the shard task
    of a pass-through run; ``device`` is unused: nothing is decoded). Return the shard, the
    size of its file — or, in the driver's process, the ticket that gives it once the file is
    durable — and the patches that failed, as the decoding shard task does.

    The writer threads write and sync the shard file while this task reads the next shard's
    tiles, so the syncs of several shards overlap.
    """
    check_output_seen(images)
    layout = ShardLayout.of(images)
    if layout is None:  # a store gigapatch made is always laid out so
        raise InvalidArgumentError(f"codec {SOURCE_CODEC!r} needs a store gigapatch lays out "
                                   "itself (a local folder)")
    blobs, failures = read_tiles(sources.open(), plan, on_error)

    def write() -> int:
        try:
            return layout.write_blobs(index, blobs, sync=sync)
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
            raise NoSpaceError(str(layout.path(index)), sum(map(len, blobs))) from None

    handle = writer if writer is not None else WriterHandle()
    ticket = handle.writer.submit(write)
    if handle.deferred:
        return index, ticket, failures
    leave_worker_pool()  # a distributed worker reads another shard while this one is written
    return index, ticket.result(), failures
