"""Synthetic whole-slide images: realistic enough to benchmark and test on.

:func:`synthesize` writes an Aperio-SVS-style pyramidal TIFF that tifffile,
tiffslide and OpenSlide all open and agree on:

* page 0: level 0, tiled, JPEG (quality 85, RGB in, stored as YCbCr 4:2:0);
* page 1: a small untiled thumbnail (as SVS files have);
* pages 2…: tiled levels, each 4× smaller than the one before, until the
  largest side is at most 1024 pixels;
* every ImageDescription starts with ``Aperio Image Library``; page 0's
  carries ``|AppMag = 40|MPP = 0.25`` (for the default 0.25 µm/px; the
  magnification is 10 / mpp); resolution tags in pixels per cm.

The picture is procedural and order-independent: every pixel is a function of
its level-0 coordinates and the seed only (hashed value noise), so tiles are
rendered independently, in any order, in bounded memory, and the same seed
always gives the same bytes. Near-white background; irregular tissue (about
40 % of the area) in eosin pinks and hematoxylin purples with fibrous texture
and nuclei-like dark dots, so JPEG compresses it about as much as a real scan.

Lower levels are 4×4 box averages of the level above, kept on disk in a
temporary memory-mapped file while level 0 is written, so memory stays
bounded whatever the slide size.
"""

from __future__ import annotations

import itertools
import os
import tempfile
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import tifffile

from gigapatch.errors import InvalidArgumentError, check_int

__all__ = ["TISSUE_FRACTION", "pyramid_shapes", "render", "synthesize"]

#: Fraction of the slide area covered by tissue (by construction of the threshold).
TISSUE_FRACTION = 0.40
_DOWNSAMPLE = 4
_SMALLEST = 1024
_MIX = np.uint64(0x9E3779B97F4A7C15)
_MIX_X = np.uint64(0xC2B2AE3D27D4EB4F)
_M1 = np.uint64(0xFF51AFD7ED558CCD)
_M2 = np.uint64(0xC4CEB9FE1A85EC53)

_BACKGROUND = np.array([241.0, 239.0, 243.0], np.float32)
_EOSIN = np.array([234.0, 164.0, 204.0], np.float32)
_EOSIN_DENSE = np.array([212.0, 118.0, 168.0], np.float32)
_HEMATOXYLIN = np.array([168.0, 118.0, 190.0], np.float32)
_NUCLEUS = np.array([78.0, 42.0, 122.0], np.float32)


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


# --------------------------------------------------------------------------- noise


def _hash01(iy: np.ndarray, ix: np.ndarray, salt: int) -> np.ndarray:
    """Deterministic uniform [0, 1) values for integer lattice points (a splitmix-like hash)."""
    h = (iy.astype(np.int64).view(np.uint64) * _MIX) ^ (
        ix.astype(np.int64).view(np.uint64) * _MIX_X
    )
    h ^= np.uint64(salt & 0xFFFFFFFFFFFFFFFF)
    h ^= h >> np.uint64(33)
    h *= _M1
    h ^= h >> np.uint64(33)
    h *= _M2
    h ^= h >> np.uint64(33)
    return (h >> np.uint64(40)).astype(np.float32) * np.float32(2.0**-24)


def _smooth(t: np.ndarray) -> np.ndarray:
    return t * t * (3.0 - 2.0 * t)


def _value_noise(y0: int, x0: int, h: int, w: int, cell: float, salt: int) -> np.ndarray:
    """Smooth value noise in [0, 1) on the pixel grid [y0, y0+h) × [x0, x0+w)."""
    ys = (np.arange(h, dtype=np.float64) + y0 + 0.5) / cell
    xs = (np.arange(w, dtype=np.float64) + x0 + 0.5) / cell
    iy0, ix0 = int(np.floor(ys[0])), int(np.floor(xs[0]))
    iy = np.arange(iy0, int(np.floor(ys[-1])) + 2)
    ix = np.arange(ix0, int(np.floor(xs[-1])) + 2)
    lattice = _hash01(iy[:, None], ix[None, :], salt)  # (ny, nx)
    fy, fx = np.floor(ys), np.floor(xs)
    ty = _smooth((ys - fy).astype(np.float32))[:, None]
    tx = _smooth((xs - fx).astype(np.float32))[None, :]
    ry = (fy - iy0).astype(np.intp)
    rx = (fx - ix0).astype(np.intp)
    # separable bilinear interpolation: along x on the lattice rows, then along y
    rows = lattice[:, rx] * (1.0 - tx) + lattice[:, rx + 1] * tx  # (ny, w)
    return rows[ry] * (1.0 - ty) + rows[ry + 1] * ty


def _value_noise_points(ys: np.ndarray, xs: np.ndarray, cell: float, salt: int) -> np.ndarray:
    """The same value noise as :func:`_value_noise`, at scattered points."""
    py, px = ys / cell, xs / cell
    fy, fx = np.floor(py), np.floor(px)
    ty, tx = _smooth((py - fy).astype(np.float32)), _smooth((px - fx).astype(np.float32))
    iy, ix = fy.astype(np.int64), fx.astype(np.int64)
    v00, v01 = _hash01(iy, ix, salt), _hash01(iy, ix + 1, salt)
    v10, v11 = _hash01(iy + 1, ix, salt), _hash01(iy + 1, ix + 1, salt)
    return (v00 * (1 - tx) + v01 * tx) * (1 - ty) + (v10 * (1 - tx) + v11 * tx) * ty


# --------------------------------------------------------------------------- rendering


class _Painter:
    """Renders any level-0 region of the synthetic slide, pixel-exact and order-independent."""

    _NUCLEUS_CELL = 20

    def __init__(self, height: int, width: int, seed: int) -> None:
        self.seed = int(seed)
        # tissue layout scales with the slide (a few pieces of tissue per slide);
        # texture scales are absolute, as on a real scan at 40×
        self.big = max(min(height, width) / 4.0, 256.0)
        self.threshold = self._calibrate(height, width)

    def _salt(self, k: int) -> int:
        return (self.seed * 0x632BE59BD9B4E019 + k * 0x8CB92BA72F3D8DD7) & 0xFFFFFFFFFFFFFFFF

    def _field(self, y0: int, x0: int, h: int, w: int) -> np.ndarray:
        f = 0.62 * _value_noise(y0, x0, h, w, self.big, self._salt(1))
        f += 0.25 * _value_noise(y0, x0, h, w, self.big / 4.0, self._salt(2))
        f += 0.13 * _value_noise(y0, x0, h, w, 96.0, self._salt(3))
        return f

    def _field_points(self, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
        f = 0.62 * _value_noise_points(ys, xs, self.big, self._salt(1))
        f += 0.25 * _value_noise_points(ys, xs, self.big / 4.0, self._salt(2))
        f += 0.13 * _value_noise_points(ys, xs, 96.0, self._salt(3))
        return f

    def _calibrate(self, height: int, width: int) -> float:
        rng = np.random.default_rng([self.seed, 0x7155])
        ys = rng.uniform(0, height, 65536)
        xs = rng.uniform(0, width, 65536)
        return float(np.quantile(self._field_points(ys, xs), 1.0 - TISSUE_FRACTION))

    def render(self, y0: int, x0: int, h: int, w: int) -> np.ndarray:
        """Return the (h, w, 3) uint8 pixels of the level-0 region at (y0, x0)."""
        field = self._field(y0, x0, h, w)
        alpha = np.clip((field - self.threshold) / 0.015, 0.0, 1.0)[..., None]
        # cellular (hematoxylin-rich) vs stromal regions, and fibrous texture
        cellular = np.clip(_value_noise(y0, x0, h, w, 160.0, self._salt(4)) * 1.6 - 0.45, 0, 1)
        fibre = _value_noise(y0, x0, h, w, 9.0, self._salt(5))
        dense = _value_noise(y0, x0, h, w, 40.0, self._salt(6))
        cellular = cellular[..., None]
        tissue = _EOSIN + (_EOSIN_DENSE - _EOSIN) * (dense * 0.7 + fibre * 0.7 - 0.1)[..., None]
        tissue = tissue + (_HEMATOXYLIN - tissue) * cellular * 0.7
        rng = np.random.default_rng([self.seed, y0, x0, h, w])
        grain = rng.normal(0.0, 3.5, (h, w, 1)).astype(np.float32)
        out = _BACKGROUND + (tissue - _BACKGROUND) * alpha + grain
        self._nuclei(out, y0, x0, h, w)
        return np.clip(out + 0.5, 0, 255).astype(np.uint8)

    def _nuclei(self, out: np.ndarray, y0: int, x0: int, h: int, w: int) -> None:
        c = self._NUCLEUS_CELL
        margin = 8  # largest radius + blur
        cy = np.arange((y0 - margin) // c, (y0 + h + margin) // c + 1)
        cx = np.arange((x0 - margin) // c, (x0 + w + margin) // c + 1)
        gy, gx = np.meshgrid(cy, cx, indexing="ij")
        gy, gx = gy.ravel(), gx.ravel()
        ny = (gy + _hash01(gy, gx, self._salt(10))) * c
        nx = (gx + _hash01(gy, gx, self._salt(11))) * c
        keep_p = _hash01(gy, gx, self._salt(12))
        field = self._field_points(ny, nx)
        cellular = np.clip(_value_noise_points(ny, nx, 160.0, self._salt(4)) * 1.6 - 0.45, 0, 1)
        present = (field > self.threshold + 0.01) & (keep_p < 0.12 + 0.6 * cellular)
        radius = 2.5 + 3.5 * _hash01(gy, gx, self._salt(13))
        shade = 0.55 + 0.4 * _hash01(gy, gx, self._salt(14))
        for yc, xc, r, s in zip(
            ny[present] - y0, nx[present] - x0, radius[present], shade[present], strict=True
        ):
            ya, yb = max(int(yc - r - 2), 0), min(int(yc + r + 3), h)
            xa, xb = max(int(xc - r - 2), 0), min(int(xc + r + 3), w)
            if ya >= yb or xa >= xb:
                continue
            dy = (np.arange(ya, yb, dtype=np.float32) + 0.5 - yc)[:, None]
            dx = (np.arange(xa, xb, dtype=np.float32) + 0.5 - xc)[None, :]
            d = np.sqrt(dy * dy + dx * dx * 0.8)
            a = (np.clip(r + 0.75 - d, 0.0, 1.0) * s)[..., None]
            region = out[ya:yb, xa:xb]
            region += (_NUCLEUS - region) * a


def render(height: int, width: int, *, seed: int = 0) -> np.ndarray:
    """The level-0 pixels of a ``height`` × ``width`` synthetic slide, in memory.

    The same picture :func:`synthesize` writes (before JPEG), for small images
    in tests and examples.
    """
    height, width = check_int("height", height), check_int("width", width)
    return _Painter(height, width, check_int("seed", seed, 0)).render(0, 0, height, width)


# --------------------------------------------------------------------------- writing


def _downsample(block: np.ndarray) -> np.ndarray:
    """4×4 box average of an (h, w, 3) uint8 block whose sides are multiples of 4."""
    h, w, c = block.shape
    f = _DOWNSAMPLE
    acc = block.reshape(h // f, f, w // f, f, c).sum(axis=(1, 3), dtype=np.uint32)
    return ((acc + (f * f) // 2) // (f * f)).astype(np.uint8)


def _bounded_map(fn, items: list, workers: int) -> Iterator:
    """Like ``executor.map`` in order, but with at most ``2 * workers`` results pending."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending: deque = deque()
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def synthesize(
    path: str | os.PathLike,
    size: int | tuple[int, int] = 8192,
    *,
    tile: int = 256,
    seed: int = 0,
    mpp: float = 0.25,
    quality: int = 85,
    workers: int | None = None,
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

    Returns
    -------
    pathlib.Path
        The written file.
    """
    tile = check_int("tile", tile, 16)
    if tile % 16:
        raise InvalidArgumentError(f"tile must be a multiple of 16; got {tile}")
    if isinstance(size, tuple | list):
        height, width = (check_int("size", int(s), tile) for s in size)
    else:
        height = width = check_int("size", size, tile)
    seed = check_int("seed", seed, 0)
    if not mpp > 0:
        raise InvalidArgumentError(f"mpp must be positive; got {mpp!r}")
    workers = workers or os.cpu_count() or 1
    path = Path(path)
    shapes = pyramid_shapes(height, width)
    painter = _Painter(height, width, seed)
    rows, cols = -(-height // tile), -(-width // tile)

    with tempfile.TemporaryDirectory(prefix="gigapatch-synth-") as tmp:
        h1, w1 = height // _DOWNSAMPLE, width // _DOWNSAMPLE
        below = np.lib.format.open_memmap(
            os.path.join(tmp, "level1.npy"), mode="w+", dtype=np.uint8, shape=(h1, w1, 3)
        )

        def level0_tile(index: int) -> np.ndarray:
            ty, tx = divmod(index, cols)
            pixels = painter.render(ty * tile, tx * tile, tile, tile)
            # 4x4 average into the next level (tile is a multiple of 4: no tile overlaps)
            small = _downsample(pixels)
            s = tile // _DOWNSAMPLE
            ya, xa = ty * s, tx * s
            yb, xb = min(ya + s, h1), min(xa + s, w1)
            if ya < yb and xa < xb:
                below[ya:yb, xa:xb] = small[: yb - ya, : xb - xa]
            return pixels

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
        common = dict(
            photometric="rgb",
            compression="jpeg",
            compressionargs={"level": quality},
            metadata=None,
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp_out = path.with_name(path.name + ".part")
        with tifffile.TiffWriter(tmp_out, bigtiff=height * width * 3 > 2**31) as tw:
            tw.write(
                _bounded_map(level0_tile, list(range(rows * cols)), workers),
                shape=(height, width, 3),
                dtype=np.uint8,
                tile=(tile, tile),
                description=desc0,
                resolution=(resolution, resolution),
                resolutionunit="CENTIMETER",
                **common,
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
                tw.write(
                    _tiles_of(level, tile),
                    shape=(h, w, 3),
                    dtype=np.uint8,
                    tile=(tile, tile),
                    description=(
                        f"Aperio Image Library v12.0.15 \r\n{width}x{height} [0,0 {w}x{h}] "
                        f"({tile}x{tile}) JPEG/RGB Q={quality}|MPP = {mpp * ds:g}"
                    ),
                    resolution=(resolution / ds, resolution / ds),
                    resolutionunit="CENTIMETER",
                    **common,
                )
        levels.clear()  # release the memory maps before the folder goes
        os.replace(tmp_out, path)
    return path


def _downsample_into(src: np.ndarray, dst: np.ndarray, rows: int = 1024) -> None:
    """Fill ``dst`` with the 4×4 box average of ``src``, a band of rows at a time."""
    h, w = dst.shape[:2]
    for y in range(0, h, rows):
        yb = min(y + rows, h)
        band = src[y * _DOWNSAMPLE : yb * _DOWNSAMPLE, : w * _DOWNSAMPLE]
        dst[y:yb] = _downsample(np.ascontiguousarray(band))


def _tiles_of(level: np.ndarray, tile: int) -> Iterator[np.ndarray]:
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
