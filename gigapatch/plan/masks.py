"""Tissue masks: where on a slide there is tissue, from low-resolution levels only.

:func:`tissue_mask` thresholds a small level (Otsu on HSV saturation, or on
optical density) and removes small objects and holes. A mask is a 2-d boolean
(or [0, 1] float) map that covers the whole slide at any resolution and any
aspect ratio: a map of shape (m, n) is stretched over the slide's level-0
extent (H, W), cell (i, j) covering rows ``⌊i·H/m⌋ … ⌊(i+1)·H/m⌋`` (end
excluded) and columns ``⌊j·W/n⌋ … ⌊(j+1)·W/n⌋`` (:func:`cell_edges`,
:func:`cell_of`). Weight maps follow the same rule. :func:`footprint_fraction`
gives the tissue fraction of many patch footprints at once (an integral image).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, TypeAlias

import numpy as np
import numpy.typing as npt

from gigapatch.errors import InvalidArgumentError, SlideError
from gigapatch.sources import Slide

__all__ = [
    "cell_edges",
    "cell_of",
    "MaskSpec",
    "TissueMethod",
    "check_map",
    "footprint_fraction",
    "load_mask",
    "mask_level",
    "spread",
    "resolve_mask",
    "thumbnail",
    "tissue_mask",
]

#: Long side (pixels) a tissue mask aims for: enough for 256-px patches on a 100k slide.
TARGET_SIDE = 1024
#: Thresholds below these never count as tissue (near-white glass, scanner noise).
_FLOOR = {"saturation": 0.05, "od": 0.05}
#: How :func:`tissue_mask` finds tissue: HSV saturation or mean optical density.
TissueMethod: TypeAlias = Literal["saturation", "od"]
#: A mask for one slide: none, ``"tissue"`` (computed), a mask file, a 2-d map, or a
#: ``(slide) -> map`` callable.
MaskSpec: TypeAlias = (
    Literal["tissue"] | str | os.PathLike[str] | npt.NDArray[Any]
    | Callable[[Slide], npt.ArrayLike] | None
)


def mask_level(slide: Slide, target: int = TARGET_SIDE) -> int:
    """The coarsest level whose long side is at least ``target``, never level 0 if avoidable."""
    big = [k for k, lvl in enumerate(slide.levels) if max(lvl.shape) >= target]
    k = big[-1] if big else len(slide.levels) - 1
    return 1 if k == 0 and len(slide.levels) > 1 else k


def thumbnail(slide: Slide, level: int, max_side: int = 2 * TARGET_SIDE) -> npt.NDArray[np.float32]:
    """Level ``level`` as float32, block-averaged by an integer factor to ≤ ``max_side``.

    Reads the level in strips of at most 16 M pixels, so a huge single-level
    image stays in bounded memory. The last partial block row/column is
    dropped (less than one output pixel).
    """
    lh, lw = slide.levels[level].shape
    f = max(1, math.ceil(max(lh, lw) / max_side))
    oh, ow = max(lh // f, 1), max(lw // f, 1)
    if f == 1:
        return slide.read(0, 0, lh, lw, level).astype(np.float32)
    out = np.empty((oh, ow, slide.channels), np.float32)
    rows = max(1, (1 << 24) // (lw * f))
    for r in range(0, oh, rows):
        nr = min(rows, oh - r)
        y0, x0 = slide.to_level0(r * f, 0, level)
        strip = slide.read(y0, x0, nr * f, ow * f, level).astype(np.float32)
        out[r : r + nr] = strip.reshape(nr, f, ow, f, -1).mean(axis=(1, 3))
    return out


def _feature(
    rgb: npt.NDArray[np.float32], method: TissueMethod, top: float
) -> npt.NDArray[np.floating[Any]]:
    if method == "saturation":
        hi, lo = rgb.max(axis=2), rgb.min(axis=2)
        return np.where(hi > 0, (hi - lo) / np.maximum(hi, 1e-9), 0.0)
    od = -np.log10(np.clip(rgb, 1.0, None) / top)
    mean: npt.NDArray[np.floating[Any]] = od.mean(axis=2)
    return mean


def tissue_mask(
    slide: Slide,
    *,
    level: int | None = None,
    method: TissueMethod | None = None,
    min_size: float = 5e-4,
) -> npt.NDArray[np.bool_]:
    """A boolean tissue mask of ``slide`` computed from a low-resolution level.

    Parameters
    ----------
    slide
        An open slide.
    level
        Level to threshold; default :func:`mask_level` (level 0 only for
        single-level images, read block-averaged in strips).
    method
        ``"saturation"`` (HSV saturation; default for RGB) or ``"od"``
        (mean optical density; default otherwise).
    min_size
        Objects and holes smaller than this fraction of the mask's area are
        removed / filled.

    Returns
    -------
    numpy.ndarray
        (h, w) bool map covering the whole slide.
    """
    from skimage.filters import threshold_otsu
    from skimage.morphology import remove_small_holes, remove_small_objects

    level = mask_level(slide) if level is None else slide.check_level(level)
    if method is None:
        method = "saturation" if slide.channels >= 3 else "od"
    if method not in _FLOOR or (method == "saturation" and slide.channels < 3):
        allowed = "'saturation' or 'od'" if slide.channels >= 3 else "'od'"
        raise InvalidArgumentError(
            f"method must be {allowed} for {slide.name!r} ({slide.channels} channels); "
            f"got {method!r}"
        )
    img = thumbnail(slide, level)[..., :3]
    top = float(np.iinfo(slide.dtype).max) + 1 if slide.dtype.kind in "ui" else 1.0
    feature = _feature(img, method, top)
    threshold = threshold_otsu(feature) if np.ptp(feature) > 0 else np.inf
    mask = feature > max(threshold, _FLOOR[method])
    small = max(1, round(min_size * mask.size))
    mask = remove_small_objects(mask, max_size=small)
    filled: npt.NDArray[np.bool_] = remove_small_holes(mask, max_size=small)
    return filled


def load_mask(path: str | os.PathLike[str]) -> npt.NDArray[Any]:
    """Read a mask from ``.npy``, TIFF or PNG; a colour image counts where any channel > 0."""
    import imagecodecs
    import tifffile

    path = Path(path)
    if not path.is_file():
        raise SlideError(f"mask file {str(path)!r} does not exist")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            data = np.load(path, allow_pickle=False)
        elif suffix in (".tif", ".tiff"):
            data = tifffile.imread(path)
        else:
            data = imagecodecs.imread(path)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SlideError(
            f"cannot read mask {str(path)!r} (expected a .npy, TIFF or PNG image): {first}"
        ) from None
    data = np.asarray(data)
    return data.max(axis=2) if data.ndim == 3 else data


def cell_edges(cells: int, pixels: int) -> np.ndarray:
    """Level-0 edges of ``cells`` map cells stretched over ``pixels`` pixels along one axis.

    Cell ``i`` covers pixels ``edges[i]`` to ``edges[i + 1]`` (end excluded), with
    ``edges[i] = ⌊i·pixels/cells⌋``: the cells tile ``[0, pixels)`` without gaps or
    overlaps, and none is empty when ``cells <= pixels``.

    Returns
    -------
    numpy.ndarray
        (cells + 1,) int64, from 0 to ``pixels``.
    """
    return (np.arange(cells + 1, dtype=np.int64) * pixels) // cells


def cell_of(pixel: np.ndarray | int, cells: int, pixels: int) -> np.ndarray:
    """The cell (see :func:`cell_edges`) that holds each level-0 pixel index along one axis.

    Pixel ``r`` is in cell ``i`` iff ``⌊i·pixels/cells⌋ <= r < ⌊(i+1)·pixels/cells⌋``, that
    is ``i = ⌊((r + 1)·cells − 1) / pixels⌋``. Pixels outside ``[0, pixels)`` are clipped
    to the first or last cell.
    """
    r = np.clip(np.asarray(pixel, np.int64), 0, pixels - 1)
    out: np.ndarray = ((r + 1) * cells - 1) // pixels
    return out


def check_map(name: str, data: Any, slide: Slide) -> npt.NDArray[np.float64]:
    """``data`` as a float64 2-d map over ``slide``: finite, ≥ 0, any aspect ratio.

    The map is stretched over the slide as :func:`cell_edges` says. More cells than
    level-0 pixels along an axis is an error (some cells would cover no pixel).
    """
    arr = np.asarray(data)
    if arr.ndim != 2 or 0 in arr.shape or arr.dtype.kind not in "biuf":
        raise InvalidArgumentError(
            f"{name} for {slide.name!r} must be a non-empty 2-d numeric map; got shape "
            f"{arr.shape} of {arr.dtype}"
        )
    h0, w0 = slide.shape
    mh, mw = arr.shape
    if mh > h0 or mw > w0:
        raise InvalidArgumentError(
            f"{name} for {slide.name!r} must have no more cells than the slide has level-0 "
            f"pixels along each axis ({h0}x{w0}); got shape {mh}x{mw}"
        )
    arr = arr.astype(np.float64)
    bad = ~np.isfinite(arr)
    if bad.any():
        i, j = (int(v) for v in np.argwhere(bad)[0])
        what = "NaN" if np.isnan(arr[i, j]) else f"{arr[i, j]:g}"
        raise InvalidArgumentError(
            f"{name} for {slide.name!r} must be finite; got {what} at cell ({i}, {j}) "
            f"({int(bad.sum())} non-finite cells)"
        )
    if (arr < 0).any():
        i, j = (int(v) for v in np.unravel_index(int(np.argmin(arr)), arr.shape))
        raise InvalidArgumentError(
            f"{name} for {slide.name!r} must be non-negative; got minimum {arr.min():g} "
            f"at cell ({i}, {j})"
        )
    return arr


def map_data(spec: Any, slide: Slide) -> Any:
    """The raw map a user gave for one slide: a file path (loaded), a callable (called on
    the slide) or an array (as is)."""
    if isinstance(spec, str | os.PathLike):
        return load_mask(spec)
    if callable(spec):
        return spec(slide)
    return spec


def resolve_mask(spec: MaskSpec, slide: Slide) -> npt.NDArray[np.float64] | None:
    """One slide's mask from ``None``, ``"tissue"``, an array, a file path or a callable."""
    if spec is None:
        return None
    data = tissue_mask(slide) if isinstance(spec, str) and spec == "tissue" else map_data(
        spec, slide)
    arr = check_map("mask", data, slide)
    if np.asarray(data).dtype.kind in "biu":
        return np.not_equal(arr, 0).astype(np.float64)
    if arr.max() > 1:
        raise InvalidArgumentError(
            f"mask for {slide.name!r} must be boolean, integer (non-zero = tissue) or float in "
            f"[0, 1]; got maximum {arr.max():g}"
        )
    return arr


def spread(name: str, spec: Any, n: int, shared: bool) -> Sequence[Any]:
    """Spread a spec over ``n`` slides: a list gives one each; ``shared`` specs repeat."""
    if isinstance(spec, list | tuple):
        if len(spec) != n:
            raise InvalidArgumentError(
                f"{name} must give one entry per slide ({n}) when a list; got {len(spec)}"
            )
        return list(spec)
    if n > 1 and not shared:
        raise InvalidArgumentError(
            f"{name}: one map for {n} slides is ambiguous; pass a list with one per slide"
        )
    return [spec] * n


#: A position along one axis of an integral image: (cell index, fraction into the cell).
Position = tuple[np.ndarray, np.ndarray]


def box_sums(
    sat: npt.NDArray[Any], rows: list[Position], cols: list[Position]
) -> npt.NDArray[np.float64]:
    """Sums over boxes from an integral image ``sat`` ((m+1, n+1), zero first row and
    column), bilinear between cell edges (exact for cells of uniform value).

    ``rows`` and ``cols`` hold the (start, stop) positions of every box per axis.
    """

    def below(r: Position, c: Position) -> np.ndarray:
        (i, fi), (j, fj) = r, c
        top = sat[i, j] + fj * (sat[i, j + 1] - sat[i, j])
        bottom = sat[i + 1, j] + fj * (sat[i + 1, j + 1] - sat[i + 1, j])
        out: np.ndarray = top + fi * (bottom - top)
        return out

    total: npt.NDArray[np.float64] = (below(rows[1], cols[1]) - below(rows[0], cols[1])
                                      - below(rows[1], cols[0]) + below(rows[0], cols[0]))
    return total


def _axis_position(edges: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Level-0 positions ``p`` (clipped to the slide) as (cell, fraction of that cell before p)."""
    last = len(edges) - 2
    p = np.clip(p, 0, edges[-1])
    i = np.minimum(np.searchsorted(edges, p, side="right") - 1, last)
    width = np.maximum(edges[i + 1] - edges[i], 1)  # an empty last cell holds no mass anyway
    return i, (p - edges[i]) / width


def footprint_fraction(
    mask: npt.NDArray[Any],
    shape0: tuple[int, int],
    y: npt.NDArray[np.integer[Any]],
    x: npt.NDArray[np.integer[Any]],
    extent: tuple[float, float],
) -> npt.NDArray[np.float32]:
    """Mean of ``mask`` over many level-0 rectangles, outside the slide counting as 0.

    The map is stretched over the slide as :func:`cell_edges` says (any aspect
    ratio), and each rectangle gets the exact area-weighted mean of the cells it
    overlaps, partial cells counting by their overlap.

    Parameters
    ----------
    mask
        (mh, mw) map covering the ``shape0`` level-0 extent.
    shape0
        (H0, W0) of level 0.
    y, x
        (N,) level-0 top-left corners.
    extent
        (h0, w0): rectangle size in level-0 pixels.

    Returns
    -------
    numpy.ndarray
        (N,) float32 fractions.
    """
    mh, mw = mask.shape
    ey, ex = cell_edges(mh, shape0[0]), cell_edges(mw, shape0[1])
    # integral image of mass (value × pixel count of the cell): exact at cell edges and,
    # the mass of a cell being spread evenly over it, bilinear in between
    mass = np.asarray(mask, np.float64) * np.diff(ey)[:, None] * np.diff(ex)[None, :]
    sat = np.zeros((mh + 1, mw + 1), np.float64)
    sat[1:, 1:] = mass.cumsum(0).cumsum(1)
    y, x = np.asarray(y, np.float64), np.asarray(x, np.float64)
    rows = [_axis_position(ey, y), _axis_position(ey, y + extent[0])]
    cols = [_axis_position(ex, x), _axis_position(ex, x + extent[1])]
    total = box_sums(sat, rows, cols)
    area = float(extent[0]) * float(extent[1])
    fraction: np.ndarray = np.clip(total / area, 0.0, None).astype(np.float32)
    return fraction
