"""Writing the synthetic slide: an Aperio-SVS-style pyramidal TIFF, in bounded memory.

:func:`synthesize` writes a file that tifffile, tiffslide and OpenSlide all
open and agree on:

* page 0: level 0, tiled, JPEG (quality 85, RGB in, stored as YCbCr 4:2:0);
  with ``jpeg_tables=True`` every tiled level stores abbreviated streams (no
  tables in the tiles) and their shared tables in the ``JPEGTables`` tag, as
  Aperio's scanners write them — the same pixels either way;
* page 1: a small untiled thumbnail (as SVS files have);
* pages 2…: tiled levels, each 4× smaller than the one before, until the
  largest side is at most 1024 pixels;
* every ImageDescription starts with ``Aperio Image Library``; page 0's
  carries ``|AppMag = 40|MPP = 0.25`` (for the default 0.25 µm/px; the
  magnification is 10 / mpp); resolution tags in pixels per cm.

Level-0 tiles are rendered by :class:`~gigapatch.synth.texture.Painter` in
threads. Lower levels are 4×4 box averages of the level above, kept on disk in
a temporary memory-mapped file while level 0 is written, so memory stays
bounded whatever the slide size.
"""

from __future__ import annotations

import itertools
import os
import tempfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeAlias, TypeVar

import imagecodecs
import numpy as np
import numpy.typing as npt
import tifffile

from gigapatch.errors import InvalidArgumentError, check_int, check_positive, parse_pair
from gigapatch.sources.jpeg import split_tables
from gigapatch.synth.texture import Painter

__all__ = ["pyramid_shapes", "synthesize"]

_DOWNSAMPLE = 4
_SMALLEST = 1024
_MAX_TILE = 4096  # libjpeg's limit is 65,500; a scanner's tiles are 240-1024
_MAX_SIDE = 1 << 20  # no scanner writes more than ~200k pixels a side
_T = TypeVar("_T")
_R = TypeVar("_R")
U8: TypeAlias = npt.NDArray[np.uint8]


def pyramid_shapes(height: int, width: int) -> list[tuple[int, int]]:
    """Return the (height, width) of every pyramid level of a synthetic slide.

    Each level is 4× smaller (floor) than the one above, until the largest side
    is at most 1024 pixels.
    """
    shapes = [(height, width)]
    while max(shapes[-1]) > _SMALLEST and min(shapes[-1]) >= 2 * _DOWNSAMPLE:
        h, w = shapes[-1]
        shapes.append((h // _DOWNSAMPLE, w // _DOWNSAMPLE))
    return shapes



# --------------------------------------------------------------------------- writing


def _downsample(block: U8) -> U8:
    """4×4 box average of an (h, w, 3) uint8 block whose sides are multiples of 4."""
    h, w, c = block.shape
    f = _DOWNSAMPLE
    acc = block.reshape(h // f, f, w // f, f, c).sum(axis=(1, 3), dtype=np.uint32)
    return np.asarray((acc + (f * f) // 2) // (f * f), np.uint8)


class _Abbreviated:
    """Encodes tiles as tifffile does (RGB in, YCbCr 4:2:0 out) and keeps only their
    abbreviated streams; :attr:`tables` is what every tile was written with (libjpeg's
    tables depend on the quality alone: standard Huffman tables, no optimisation)."""

    def __init__(self, quality: int) -> None:
        self.quality = quality
        self.tables = split_tables(self._encode(np.zeros((16, 16, 3), np.uint8)))[0]

    def _encode(self, pixels: U8) -> bytes:
        return bytes(imagecodecs.jpeg8_encode(pixels, level=self.quality, colorspace="RGB",
                                              outcolorspace="YCBCR", subsampling=(2, 2)))

    def __call__(self, pixels: U8) -> bytes:
        tables, tile = split_tables(self._encode(pixels))
        if tables != self.tables:  # would make the file wrong: never write it
            raise RuntimeError("the JPEG encoder wrote other tables for one tile")
        return tile


def _bounded_map(fn: Callable[[_T], _R], items: Iterable[_T], workers: int) -> Iterator[_R]:
    """Like ``executor.map`` in order, but with at most ``2 * workers`` results pending."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending: deque[Future[_R]] = deque()
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def synthesize(
    path: str | os.PathLike[str],
    size: int | tuple[int, int] = 8192,
    *,
    tile: int = 256,
    seed: int = 0,
    mpp: float = 0.25,
    quality: int = 85,
    workers: int | None = None,
    jpeg_tables: bool = False,
) -> Path:
    """Write a synthetic Aperio-style pyramidal whole-slide TIFF.

    Parameters
    ----------
    path
        Output file (``.tif`` or ``.svs``); replaced if it exists.
    size
        Level-0 side (square) or (height, width), in pixels; at least ``tile``.
    tile
        Tile side in pixels, a multiple of 16 (JPEG blocks), default 256.
    seed
        The picture is a pure function of ``seed``: the same seed gives the
        same pixels and the same file bytes.
    mpp
        Microns per pixel recorded for level 0 (0.25: a 40× scan, 0.5: 20×).
    quality
        JPEG quality of every level.
    workers
        Threads rendering tiles (default: the number of CPUs).
    jpeg_tables
        Store the tiles of every tiled level as abbreviated JPEG streams with their
        shared tables in the ``JPEGTables`` tag (as Aperio's scanners do) instead of
        complete streams; the pixels are the same.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    tile = check_int("tile", tile, 16, _MAX_TILE)
    if tile % 16:
        raise InvalidArgumentError(f"tile must be a multiple of 16; got {tile}")
    height, width = parse_pair("size", size, tile, _MAX_SIDE)
    seed = check_int("seed", seed, 0, 2**63 - 1)
    mpp = check_positive("mpp", mpp)
    quality = check_int("quality", quality, 1, 100)
    workers = (os.cpu_count() or 1) if workers is None else check_int("workers", workers)
    if not isinstance(jpeg_tables, bool):
        raise InvalidArgumentError(f"jpeg_tables must be True or False; got {jpeg_tables!r}")
    abbreviate = _Abbreviated(quality) if jpeg_tables else None
    path = Path(path)
    shapes = pyramid_shapes(height, width)
    painter = Painter(height, width, seed)
    rows, cols = -(-height // tile), -(-width // tile)

    with tempfile.TemporaryDirectory(prefix="gigapatch-synth-") as tmp:
        h1, w1 = height // _DOWNSAMPLE, width // _DOWNSAMPLE
        below = np.lib.format.open_memmap(
            os.path.join(tmp, "level1.npy"), mode="w+", dtype=np.uint8, shape=(h1, w1, 3)
        )

        def level0_tile(index: int) -> Any:  # pixels, or their abbreviated stream
            ty, tx = divmod(index, cols)
            pixels = painter.render(ty * tile, tx * tile, tile, tile)
            # 4x4 average into the next level (tile is a multiple of 4: no tile overlaps)
            small = _downsample(pixels)
            s = tile // _DOWNSAMPLE
            ya, xa = ty * s, tx * s
            yb, xb = min(ya + s, h1), min(xa + s, w1)
            if ya < yb and xa < xb:
                below[ya:yb, xa:xb] = small[: yb - ya, : xb - xa]
            return pixels if abbreviate is None else abbreviate(pixels)

        levels = [below]
        for h, w in shapes[2:]:
            levels.append(
                np.lib.format.open_memmap(
                    os.path.join(tmp, f"level{len(levels) + 1}.npy"),
                    mode="w+",
                    dtype=np.uint8,
                    shape=(h, w, 3),
                )
            )

        resolution = 1e4 / mpp  # pixels per cm
        desc0 = (
            f"Aperio Image Library v12.0.15 \r\n{width}x{height} [0,0 {width}x{height}] "
            f"({tile}x{tile}) JPEG/RGB Q={quality}|AppMag = {10 / mpp:g}|MPP = {mpp:g}"
            f"|Generator = gigapatch.synth seed {seed}"
        )
        common: dict[str, Any] = dict(  # options of every page
            photometric="rgb",
            compression="jpeg",
            compressionargs={"level": quality},
            metadata=None,
        )
        tiled: dict[str, Any] = dict(common, tile=(tile, tile), dtype=np.uint8)
        if abbreviate is not None:  # tiles written as they are, tables in JPEGTables
            tiled.update(jpegtables=abbreviate.tables, subsampling=(2, 2))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp_out = path.with_name(path.name + ".part")
        with tifffile.TiffWriter(tmp_out, bigtiff=height * width * 3 > 2**31) as tw:
            tw.write(
                _bounded_map(level0_tile, list(range(rows * cols)), workers),
                shape=(height, width, 3),
                description=desc0,
                resolution=(resolution, resolution),
                resolutionunit="CENTIMETER",
                **tiled,
            )
            below.flush()
            for src, dst in itertools.pairwise(levels):
                _downsample_into(src, dst)
            thumb = levels[-1]
            while max(thumb.shape[:2]) > 768:
                h, w = (thumb.shape[0] // 2) * 2, (thumb.shape[1] // 2) * 2
                t = thumb[:h, :w].reshape(h // 2, 2, w // 2, 2, 3).mean(axis=(1, 3))
                thumb = np.round(t).astype(np.uint8)
            th, tw_ = thumb.shape[:2]
            tw.write(
                np.ascontiguousarray(thumb),
                description=f"Aperio Image Library v12.0.15 \r\n{width}x{height} -> {tw_}x{th}",
                **common,
            )
            for k, (h, w) in enumerate(shapes[1:], start=1):
                level, ds = levels[k - 1], _DOWNSAMPLE**k
                pixels = _tiles_of(level, tile)
                tiles: Iterator[Any] = (
                    pixels if abbreviate is None else _bounded_map(abbreviate, pixels, workers))
                tw.write(
                    tiles,
                    shape=(h, w, 3),
                    description=(
                        f"Aperio Image Library v12.0.15 \r\n{width}x{height} [0,0 {w}x{h}] "
                        f"({tile}x{tile}) JPEG/RGB Q={quality}|MPP = {mpp * ds:g}"
                    ),
                    resolution=(resolution / ds, resolution / ds),
                    resolutionunit="CENTIMETER",
                    **tiled,
                )
        levels.clear()  # release the memory maps before the folder goes
        os.replace(tmp_out, path)
    return path


def _downsample_into(src: U8, dst: U8, rows: int = 1024) -> None:
    """Fill ``dst`` with the 4×4 box average of ``src``, a band of rows at a time."""
    h, w = dst.shape[:2]
    for y in range(0, h, rows):
        yb = min(y + rows, h)
        band = src[y * _DOWNSAMPLE : yb * _DOWNSAMPLE, : w * _DOWNSAMPLE]
        dst[y:yb] = _downsample(np.ascontiguousarray(band))


def _tiles_of(level: U8, tile: int) -> Iterator[U8]:
    """Yield the tiles of an (h, w, 3) level in row-major order, zero-padded at the edges."""
    h, w = level.shape[:2]
    for y in range(0, h, tile):
        for x in range(0, w, tile):
            block = level[y : y + tile, x : x + tile]
            if block.shape[:2] != (tile, tile):
                padded = np.zeros((tile, tile, 3), np.uint8)
                padded[: block.shape[0], : block.shape[1]] = block
                block = padded
            yield np.ascontiguousarray(block)
