"""Random plans: uniform over every position where a whole patch fits, or weighted by a map."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt

from gigapatch.errors import (
    InvalidArgumentError,
    OnError,
    Pair,
    SlideError,
    check_int,
    check_on_error,
    check_seed,
    parse_pair,
)
from gigapatch.plan.annotations.draws import allocate_targets, sample_slide
from gigapatch.plan.annotations.loading import AnnotationSpec
from gigapatch.plan.annotations.planning import annotated_slides
from gigapatch.plan.core import (
    PatchPlan,
    PlanRows,
    as_slides,
    check_fraction,
    locality_order,
    resolution_params,
    resolve_labels,
    resolve_resolutions,
    slide_rng,
    to_level0,
)
from gigapatch.plan.grid import describe
from gigapatch.plan.labels import skipped_slide
from gigapatch.plan.masks import (
    MaskSpec,
    cell_edges,
    check_map,
    footprint_fraction,
    map_data,
    resolve_mask,
    spread,
    tissue_mask,
)
from gigapatch.sources import Slide
from gigapatch.sources.resolution import MPP_TOLERANCE, Resolution

__all__ = ["allocate", "random"]

#: Rejection rounds before giving up on ``min_tissue`` / ``replace=False``.
MAX_ROUNDS = 64
#: Give up after this many draws in a row yield nothing new (the constraint is unreachable).
MAX_DRY = 1 << 18
Coords: TypeAlias = npt.NDArray[np.int64]
#: ``(rng, m) -> (ly, lx)``: ``m`` top-left corners in level pixels.
Draw: TypeAlias = Callable[[np.random.Generator, int], tuple[Coords, Coords]]
#: ``(ly, lx) -> fractions``: the tissue fraction of each patch's footprint.
Fraction: TypeAlias = Callable[[Coords, Coords], npt.NDArray[np.float32]]


def _split(n: int, k: int) -> list[int]:
    """``n`` split into ``k`` near-equal parts, the first ones one larger."""
    return [n // k + (i < n % k) for i in range(k)]


def allocate(
    n: int, n_slides: int, labels: Sequence[int], per_slide: bool, balance: bool
) -> list[int]:
    """How many patches each slide gets.

    ``per_slide``: ``n`` each. Otherwise ``n`` in total, split evenly over the
    slides, or with ``balance`` evenly over the classes first and then evenly
    over each class's slides (remainders go to the lowest indices).
    """
    if per_slide:
        return [n] * n_slides
    if not balance:
        return _split(n, n_slides)
    if not labels or min(labels) < 0:
        raise InvalidArgumentError(
            f"balance=True needs a class label >= 0 for every slide; got {list(labels)!r}"
        )
    classes = sorted(set(labels))
    counts = [0] * n_slides
    for c, share in zip(classes, _split(n, len(classes)), strict=True):
        members = [i for i, lab in enumerate(labels) if lab == c]
        for i, m in zip(members, _split(share, len(members)), strict=True):
            counts[i] = m
    return counts


def _uniform(lh: int, lw: int, span: tuple[int, int]) -> Draw:
    def draw(rng: np.random.Generator, m: int) -> tuple[Coords, Coords]:
        return rng.integers(0, lh - span[0] + 1, m), rng.integers(0, lw - span[1] + 1, m)

    return draw


def _weighted(w: np.ndarray, slide: Slide, level: int, span: tuple[int, int]) -> Draw:
    """Weighted draws at ``level``: cells ∝ weight, the patch centre uniform in the cell.

    The map is stretched over level 0 (:func:`~gigapatch.plan.masks.cell_edges`). A
    level-0 pixel is drawn uniformly inside the drawn cell; the level pixel holding its
    centre becomes the patch's centre pixel (offset ``⌊h/2⌋, ⌊w/2⌋`` from the top-left),
    then the window is shifted to fit inside the level. Zero-weight cells are left out
    of the cumulative sum, so never drawn.
    """
    (h0, w0), (lh, lw) = slide.shape, slide.levels[level].shape
    dy, dx = slide.levels[level].downsample
    mw = w.shape[1]
    ey, ex = cell_edges(w.shape[0], h0), cell_edges(mw, w0)
    flat = w.ravel() / w.max()  # huge finite weights must not sum to inf
    cells = np.flatnonzero(flat > 0)
    cdf = np.cumsum(flat[cells])

    def draw(rng: np.random.Generator, m: int) -> tuple[Coords, Coords]:
        pick = np.searchsorted(cdf, rng.random(m) * cdf[-1], side="right")
        ci, cj = np.divmod(cells[np.minimum(pick, len(cells) - 1)], mw)
        ry = rng.integers(ey[ci], ey[ci + 1])  # level-0 centre pixel, uniform in the cell
        rx = rng.integers(ex[cj], ex[cj + 1])
        ty = np.floor((ry + 0.5) / dy).astype(np.int64) - span[0] // 2
        tx = np.floor((rx + 0.5) / dx).astype(np.int64) - span[1] // 2
        return np.clip(ty, 0, lh - span[0]), np.clip(tx, 0, lw - span[1])

    return draw


def _too_small(slide: Slide, res: Resolution,
               size: tuple[int, int]) -> InvalidArgumentError | None:
    """The error for a slide a whole patch does not fit in at ``res``, else None."""
    lh, lw = slide.levels[res.level].shape
    rsize = res.read_size(size)  # level pixels one patch covers
    if rsize[0] <= lh and rsize[1] <= lw:
        return None
    at = f"level {res.level}" if res.factor == 1.0 else f"mpp {res.mpp:.4g} (µm/px)"
    return InvalidArgumentError(
        f"size {size[0]}x{size[1]} does not fit in {slide.name!r} at {at} "
        f"({int(lh // res.factor)}x{int(lw // res.factor)} pixels)"
    )


def _is_tissue(spec: Any) -> bool:
    return isinstance(spec, str) and spec == "tissue"


def _weights_map(spec: Any, slide: Slide, tissue: np.ndarray | None) -> np.ndarray | None:
    if spec is None:
        return None
    if _is_tissue(spec):
        from gigapatch.plan.saliency import tissue_density

        data = tissue_density(slide, mask=tissue)
    elif isinstance(spec, str) and not os.path.exists(spec):
        if spec.lower().endswith(".npy") or os.sep in spec:  # meant as a map file
            raise InvalidArgumentError(
                f"weights: no map file {spec!r} (expected an existing .npy file of weights)")
        raise InvalidArgumentError(
            f"weights must be None, 'tissue', an array, a map file or a callable; got {spec!r}"
        )
    else:
        data = map_data(spec, slide)
    w = check_map("weights", data, slide)
    if not w.max() > 0:
        raise InvalidArgumentError(
            f"weights for {slide.name!r} must not be all zero (no cell could be drawn); got a "
            f"{w.shape[0]}x{w.shape[1]} map of zeros"
        )
    return w


def _sample(
    rng: np.random.Generator, n: int, draw: Draw, fraction: Fraction | None, min_tissue: float,
    replace: bool, lw: int, name: str,
) -> tuple[Coords, Coords, npt.NDArray[np.float32] | None]:
    """Draw until ``n`` patches pass ``min_tissue`` (and are distinct without ``replace``)."""
    ys: list[Coords] = []
    xs: list[Coords] = []
    fs: list[npt.NDArray[np.float32]] = []
    seen = np.empty(0, np.int64)
    have, rate, best, dry = 0, 1.0, 0.0, 0
    exact = replace and (fraction is None or min_tissue == 0)  # every draw is kept
    for _ in range(MAX_ROUNDS):
        need = n - have
        m = need if exact else min(int(need / rate * 1.2) + 16, 1 << 20)
        ly, lx = draw(rng, m)
        f = fraction(ly, lx) if fraction is not None else None
        keep = np.ones(m, bool) if f is None else f >= min_tissue
        if f is not None:
            best = max(best, float(f.max(initial=0)))
            rate = max(keep.mean(), 1.0 / m)
        if not replace:
            key = ly * (lw + 1) + lx
            _, first = np.unique(key, return_index=True)
            fresh = np.zeros(m, bool)
            fresh[first] = True
            keep &= fresh & ~np.isin(key, seen)
            rate = max(min(rate, keep.mean()), 1.0 / m)
        idx = np.flatnonzero(keep)[:need]
        ys.append(ly[idx])
        xs.append(lx[idx])
        if f is not None:
            fs.append(f[idx])
        if not replace:
            seen = np.concatenate([seen, (ly * (lw + 1) + lx)[idx]])
        have += len(idx)
        dry = 0 if len(idx) else dry + m
        if have == n or dry >= MAX_DRY:
            break
    if have < n:
        why = f"tissue fraction >= {min_tissue:g} (highest seen: {best:.3g})" if fraction else ""
        why += (" and " if why else "") + ("distinct positions" if not replace else "")
        raise InvalidArgumentError(
            f"n: could draw only {have} of {n} patches from {name!r} with {why}; "
            "lower n or min_tissue"
        )
    cat = np.concatenate
    return cat(ys), cat(xs), (None if fraction is None else cat(fs))


def random(
    sources: Any,
    size: Pair,
    n: int,
    seed: int | None = None,
    *,
    level: int | None = None,
    mpp: float | None = None,
    magnification: float | None = None,
    mpp_tolerance: float = MPP_TOLERANCE,
    weights: Any = None,
    replace: bool = True,
    mask: MaskSpec | Sequence[MaskSpec] = None,
    min_tissue: float = 0.0,
    labels: Sequence[int] | None = None,
    per_slide: bool = False,
    balance: bool = False,
    annotations: AnnotationSpec = None,
    labels_from_annotations: bool = False,
    min_annotation: float | None = None,
    background: str | None = None,
    include_classes: str | Sequence[str] | None = None,
    exclude_classes: str | Sequence[str] | None = None,
    on_error: OnError = "stop",
) -> PatchPlan:
    """Plan ``n`` random patches, always whole and inside the slide.

    Without ``weights``, top-left corners are uniform over every position
    where the whole patch fits at the level. With ``weights``, a map of shape
    (m, n) is stretched over the slide whatever its aspect ratio: cell (i, j)
    covers level-0 rows ``⌊i·H/m⌋ … ⌊(i+1)·H/m⌋`` and columns
    ``⌊j·W/n⌋ … ⌊(j+1)·W/n⌋`` (ends excluded; H, W the level-0 height and
    width). A cell is drawn with probability ∝ its weight, then the patch
    *centre* uniformly inside it: a level-0 pixel of the cell is drawn
    uniformly and becomes the patch's centre pixel (the one at offset
    ``⌊h/2⌋, ⌊w/2⌋`` from its top-left; at a coarser level, the level pixel
    holding that pixel's centre). The window is then shifted to fit inside the
    slide: always a full-size patch, never clipped. So the cell holding a
    patch's centre pixel is the drawn cell at level 0 unless the shift moved
    it (only for patches larger than the edge cells).

    Parameters
    ----------
    sources
        A path, array, `Slide` or `SlideSet`, or a sequence of them.
    size
        Patch (height, width) in target pixels (pixels of the level when no
        ``mpp``/``magnification`` is given), or one int. A resampled patch
        covers ``round(size · f)`` pixels of its level (``f`` the factor), and
        fits wholly inside the slide at that size.
    n
        Patches in total (split evenly over slides, or over classes first with
        ``balance``), or per slide with ``per_slide=True``.
    seed
        Seed of ``numpy.random.SeedSequence``; slide ``k`` draws from the
        stream spawned with key ``k``. ``None``: fresh entropy, recorded.
    level, mpp, magnification, mpp_tolerance
        Level to cut from (default 0), or a target pixel size (µm) or
        objective power, as in :func:`gigapatch.grid`.
    weights
        ``None`` (uniform), ``"tissue"`` (tissue density), a 2-d map of any
        shape covering the slide, a map file (``.npy``, TIFF, PNG), a
        ``(slide) -> map`` callable (see :mod:`gigapatch.plan.saliency`), or a list
        with one per slide. NaN, infinite, negative or all-zero weights, maps
        that are not 2-d, and maps with more cells than the slide has level-0
        pixels along an axis are errors; zero-weight cells are never drawn.
    replace
        ``False``: no two patches of a slide share a top-left corner.
    mask, min_tissue
        As in :func:`gigapatch.grid`: draws whose footprint is less than
        ``min_tissue`` tissue are rejected and drawn again.
    labels
        One class label per slide (default: a `SlideSet`'s, else none).
    per_slide, balance
        How ``n`` is allocated (see above). With ``labels_from_annotations``,
        ``balance`` splits ``n`` evenly over the annotations' classes (and
        ``background``) instead of the slides' labels.
    annotations, labels_from_annotations, min_annotation, background, include_classes, \
exclude_classes
        Regions drawn on the slides, as in :func:`gigapatch.grid`. Each
        patch's *centre* is then drawn uniformly over the union of the wanted
        regions (an overlap counting once; with ``balance``, the regions of the
        class being drawn; background patches uniformly over the slide), the
        patch shifted to fit inside the slide, and kept when its own centre
        lies in a region and the coverage rule (and ``min_tissue``) holds.
        Excludes ``weights``.
    on_error
        ``"stop"`` (default): a slide that cannot be planned raises: its
        pixels cannot be read while planning (tissue mask, weights), it cannot be read
        at the level or pixel size asked (no recorded mpp, a target finer than
        its level 0, a level it lacks), or a patch does not fit in it.
        ``"skip"``: it gets no patches and is recorded in
        ``plan.extra["skipped"]`` (``{path, name, reason}``).

    Returns
    -------
    PatchPlan
        Sorted per slide by tile band, then x, for read locality.
    """
    slides = as_slides(sources)
    on_error = check_on_error(on_error)
    size = parse_pair("size", size)
    n = check_int("n", n)
    seed = check_seed(seed, allow_none=True)
    min_tissue = check_fraction("min_tissue", min_tissue)
    resolutions, failed = resolve_resolutions(slides, level, mpp, magnification, mpp_tolerance,
                                              on_error)
    for k, (slide, res) in enumerate(zip(slides, resolutions, strict=True)):
        small = None if k in failed else _too_small(slide, res, size)
        if small is not None:
            if on_error == "stop":
                raise small
            failed[k] = skipped_slide(slide, small)
    slide_labels, classes = resolve_labels(sources, slides, labels)
    regions = annotated_slides(
        annotations, slides, slide_labels, labels_from_annotations=labels_from_annotations,
        min_annotation=min_annotation, background=background, include_classes=include_classes,
        exclude_classes=exclude_classes)
    if regions is not None and weights is not None:
        raise InvalidArgumentError(
            "weights and annotations exclude each other: patch centres are drawn over the "
            f"regions; got weights={describe(weights)!r}"
        )
    if regions is not None and regions.labels:
        classes = regions.classes
        wants = allocate_targets(regions, n, len(slides), per_slide, balance)
    else:  # n over the slides that can be planned: a slide left out passes its share on
        kept = [k for k in range(len(slides)) if k not in failed]
        kept_labels = [slide_labels[k] for k in kept] if slide_labels else []
        shares = allocate(n, len(kept), kept_labels, per_slide, balance) if kept else []
        counts = dict(zip(kept, shares, strict=True))
        wants = [[(None, counts.get(k, 0))] for k in range(len(slides))]
    if mask is None and min_tissue > 0:
        mask = "tissue"
    shared = mask is None or isinstance(mask, str) or callable(mask)
    specs = _specs(mask, weights, len(slides), shared)
    rows = PlanRows()
    skipped: list[dict[str, str]] = []
    for k, (slide, res) in enumerate(zip(slides, resolutions, strict=True)):
        if k in failed:  # on_error="skip": not readable at what was asked, or too small
            skipped.append(failed[k])
            continue
        lvl = res.level
        lh, lw = slide.levels[lvl].shape
        rsize = res.read_size(size)  # level pixels one patch covers
        mask_spec, weight_spec = specs[k]
        wants_tissue = _is_tissue(mask_spec) or _is_tissue(weight_spec)
        try:  # what reads pixels while planning: the tissue mask, a weights map
            tissue = tissue_mask(slide) if wants_tissue else None
            m = (tissue.astype(np.float64) if tissue is not None and _is_tissue(mask_spec)
                 else resolve_mask(mask_spec, slide))
            w = _weights_map(weight_spec, slide, tissue)
        except SlideError as exc:
            if on_error == "stop":
                raise
            skipped.append(skipped_slide(slide, exc))
            continue
        draw = _uniform(lh, lw, rsize) if w is None else _weighted(w, slide, lvl, rsize)
        dy, dx = slide.levels[lvl].downsample
        fraction: Fraction | None = None
        if m is not None:

            def fraction(
                ly: Coords, lx: Coords, m: npt.NDArray[np.float64] = m, slide: Slide = slide,
                lvl: int = lvl, dy: float = dy, dx: float = dx,
                rsize: tuple[int, int] = rsize,
            ) -> npt.NDArray[np.float32]:
                y0, x0 = to_level0(ly, lx, slide, lvl)
                return footprint_fraction(m, slide.shape, y0, x0, (rsize[0] * dy, rsize[1] * dx))

        count = sum(c for _, c in wants[k])
        if not replace and m is None and w is None and count > (lh - rsize[0] + 1) * (
            lw - rsize[1] + 1
        ):
            raise InvalidArgumentError(
                f"n: {count} distinct patches of {size[0]}x{size[1]} do not fit in "
                f"{slide.name!r} at level {lvl}; lower n or pass replace=True"
            )
        lab = None
        if regions is not None:
            ly, lx, f, lab = sample_slide(slide_rng(seed, k), wants[k], regions, k, slide, lvl,
                                          rsize, fraction, min_tissue, replace)
        else:
            ly, lx, f = _sample(
                slide_rng(seed, k), count, draw, fraction, min_tissue, replace, lw, slide.name
            )
        order = locality_order(ly, lx, slide.levels[lvl].tile[0])
        y, x = to_level0(ly[order], lx[order], slide, lvl)
        rows.add(k, y, x, None if f is None else f[order], None if lab is None else lab[order])
    extra = {
        **resolution_params(mpp, magnification, mpp_tolerance,
                            [r for k, r in enumerate(resolutions) if k not in failed]),
        "min_tissue": min_tissue,
        "mask": describe(mask),
        "weights": describe(weights),
        "replace": bool(replace),
        "n": n,
        "per_slide": bool(per_slide),
        "balance": bool(balance),
        **(regions.params if regions is not None else {}),
        **({"skipped": skipped} if skipped else {}),
    }
    return PatchPlan(
        **rows.arrays(resolutions), size=size, stride=size,
        kind="random" if weights is None else "weighted", seed=seed, extra=extra,
        slide_labels=slide_labels, classes=classes,
    )


def _specs(mask: Any, weights: Any, n: int, shared_mask: bool) -> list[tuple[Any, Any]]:
    """(mask, weights) spec of each slide; a single array or file only for a single slide."""
    masks = spread("mask", mask, n, shared_mask)
    shared_w = weights is None or callable(weights) or _is_tissue(weights)
    return list(zip(masks, spread("weights", weights, n, shared_w), strict=True))
