"""The synthetic slide's picture: procedural H&E-like tissue, a pure function of position and seed.

Every pixel is a function of its level-0 coordinates and the seed only
(hashed value noise), so any region renders independently, in any order, in
bounded memory, and the same seed always gives the same pixels. Near-white
background; irregular tissue (about 40 % of the area) in eosin pinks and
hematoxylin purples with fibrous texture and nuclei-like dark dots, so JPEG
compresses it about as much as a real scan.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt

from gigapatch.errors import check_int

__all__ = ["TISSUE_FRACTION", "Painter", "render"]

F32: TypeAlias = npt.NDArray[np.float32]
#: float32 at run time (NumPy keeps float32 under Python-scalar arithmetic); the stubs
#: widen some of those expressions, so the noise at points is typed as any float.
Floats: TypeAlias = npt.NDArray[np.floating[Any]]
Ints: TypeAlias = npt.NDArray[np.integer[Any]]

#: Fraction of the slide area covered by tissue (by construction of the threshold).
TISSUE_FRACTION = 0.40
_MIX = np.uint64(0x9E3779B97F4A7C15)
_MIX_X = np.uint64(0xC2B2AE3D27D4EB4F)
_M1 = np.uint64(0xFF51AFD7ED558CCD)
_M2 = np.uint64(0xC4CEB9FE1A85EC53)

_BACKGROUND = np.array([241.0, 239.0, 243.0], np.float32)
_EOSIN = np.array([234.0, 164.0, 204.0], np.float32)
_EOSIN_DENSE = np.array([212.0, 118.0, 168.0], np.float32)
_HEMATOXYLIN = np.array([168.0, 118.0, 190.0], np.float32)
_NUCLEUS = np.array([78.0, 42.0, 122.0], np.float32)


# --------------------------------------------------------------------------- noise


def _hash01(iy: Ints, ix: Ints, salt: int) -> F32:
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
    unit: F32 = (h >> np.uint64(40)).astype(np.float32) * np.float32(2.0**-24)
    return unit


def _smooth(t: F32) -> F32:
    return t * t * (3.0 - 2.0 * t)


def _value_noise(y0: int, x0: int, h: int, w: int, cell: float, salt: int) -> F32:
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
    noise: F32 = rows[ry] * (1.0 - ty) + rows[ry + 1] * ty
    return noise


def _value_noise_points(
    ys: Floats, xs: Floats, cell: float, salt: int
) -> Floats:
    """The same value noise as :func:`_value_noise`, at scattered points."""
    py, px = ys / cell, xs / cell
    fy, fx = np.floor(py), np.floor(px)
    ty, tx = _smooth((py - fy).astype(np.float32)), _smooth((px - fx).astype(np.float32))
    iy, ix = fy.astype(np.int64), fx.astype(np.int64)
    v00, v01 = _hash01(iy, ix, salt), _hash01(iy, ix + 1, salt)
    v10, v11 = _hash01(iy + 1, ix, salt), _hash01(iy + 1, ix + 1, salt)
    return (v00 * (1 - tx) + v01 * tx) * (1 - ty) + (v10 * (1 - tx) + v11 * tx) * ty


# --------------------------------------------------------------------------- rendering


class Painter:
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

    def _field(self, y0: int, x0: int, h: int, w: int) -> F32:
        f = 0.62 * _value_noise(y0, x0, h, w, self.big, self._salt(1))
        f += 0.25 * _value_noise(y0, x0, h, w, self.big / 4.0, self._salt(2))
        f += 0.13 * _value_noise(y0, x0, h, w, 96.0, self._salt(3))
        return f

    def _field_points(self, ys: Floats, xs: Floats) -> Floats:
        f = 0.62 * _value_noise_points(ys, xs, self.big, self._salt(1))
        f += 0.25 * _value_noise_points(ys, xs, self.big / 4.0, self._salt(2))
        f += 0.13 * _value_noise_points(ys, xs, 96.0, self._salt(3))
        return f

    def _calibrate(self, height: int, width: int) -> float:
        rng = np.random.default_rng([self.seed, 0x7155])
        ys = rng.uniform(0, height, 65536)
        xs = rng.uniform(0, width, 65536)
        return float(np.quantile(self._field_points(ys, xs), 1.0 - TISSUE_FRACTION))

    def render(self, y0: int, x0: int, h: int, w: int) -> npt.NDArray[np.uint8]:
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
        pixels: npt.NDArray[np.uint8] = np.clip(out + 0.5, 0, 255).astype(np.uint8)
        return pixels

    def _nuclei(self, out: F32, y0: int, x0: int, h: int, w: int) -> None:
        c = self._NUCLEUS_CELL
        margin = 8  # largest radius + blur
        cy = np.arange((y0 - margin) // c, (y0 + h + margin) // c + 1)
        cx = np.arange((x0 - margin) // c, (x0 + w + margin) // c + 1)
        gy, gx = (g.ravel() for g in np.meshgrid(cy, cx, indexing="ij"))
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


def render(height: int, width: int, *, seed: int = 0) -> npt.NDArray[np.uint8]:
    """The level-0 pixels of a ``height`` × ``width`` synthetic slide, in memory.

    The same picture :func:`synthesize` writes (before JPEG), for small images
    in tests and examples.
    """
    height, width = check_int("height", height), check_int("width", width)
    seed = check_int("seed", seed, 0, 2**63 - 1)
    return Painter(height, width, seed).render(0, 0, height, width)
