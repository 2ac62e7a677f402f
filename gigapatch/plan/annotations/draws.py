"""Random patches from regions: centres uniform over a union of regions, then judged.

:class:`UnionDraw` draws points uniformly over the union of some regions,
an overlap counting once, without rejection from the whole slide: a region
is picked with probability ∝ its bounding box's area, a point uniformly in
that box, and the point is kept when it lies in that region and in no
region listed before it (so a point of an overlap is kept for one region
only). The density is then ``1 / Σ box areas`` everywhere in the union.

:func:`sample_slide` turns points into patches: the level pixel holding the
point becomes the patch's centre pixel (offset ``⌊h/2⌋, ⌊w/2⌋`` from its
top-left), the window is shifted to fit inside the slide, and the point test
above is made on the **patch's own centre** (its level-0 top-left plus half
its footprint), so every patch kept has its centre inside a region. A patch
is then kept when the coverage rule holds (and the tissue rule, with a mask).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from gigapatch.errors import InvalidArgumentError
from gigapatch.plan.annotations.coverage import Coverage
from gigapatch.plan.annotations.planning import AnnotatedSlides
from gigapatch.plan.annotations.regions import Region
from gigapatch.plan.core import to_level0
from gigapatch.sources import Slide

__all__ = ["BACKGROUND", "UnionDraw", "allocate_targets", "sample_slide"]

Coords = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float32]
#: ``(ly, lx) -> tissue fractions`` of level top-left corners.
Tissue = Callable[[Coords, Coords], Floats]
#: Target of :func:`sample_slide` meaning "patches labelled background, from anywhere".
BACKGROUND = -2
#: Rounds of drawing before giving up, and draws in a row without a new patch that give up.
MAX_ROUNDS = 64
MAX_DRY = 1 << 18


class UnionDraw:
    """Points uniform over the union of ``regions`` (level-0 (y, x))."""

    def __init__(self, regions: Sequence[Region]) -> None:
        self.regions = list(regions)
        box = np.array([r.bbox for r in self.regions], np.float64).reshape(-1, 4)
        self.x0, self.y0, self.x1, self.y1 = box.T
        weight = (self.x1 - self.x0) * (self.y1 - self.y0)
        self.picks = np.flatnonzero(weight > 0)
        self.cdf = np.cumsum(weight[self.picks])
        self.earlier = self._earlier()

    def _earlier(self) -> list[npt.NDArray[np.intp]]:
        """For each region, the regions before it whose boxes meet its box."""
        out = []
        for r in range(len(self.regions)):
            meet = ((self.x0[:r] <= self.x1[r]) & (self.x1[:r] >= self.x0[r])
                    & (self.y0[:r] <= self.y1[r]) & (self.y1[:r] >= self.y0[r]))
            out.append(np.flatnonzero(meet))
        return out

    @property
    def empty(self) -> bool:
        """Whether the regions enclose no area (nothing can be drawn)."""
        return not len(self.picks)

    def points(
        self, rng: np.random.Generator, m: int
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.intp]]:
        """``m`` candidate points (y, x) and the region each was drawn for."""
        pick = np.searchsorted(self.cdf, rng.random(m) * self.cdf[-1], side="right")
        r = self.picks[np.minimum(pick, len(self.picks) - 1)]
        y = self.y0[r] + rng.random(m) * (self.y1 - self.y0)[r]
        x = self.x0[r] + rng.random(m) * (self.x1 - self.x0)[r]
        return y, x, r

    def accept(
        self, y: npt.NDArray[np.floating[Any]], x: npt.NDArray[np.floating[Any]],
        r: npt.NDArray[np.intp],
    ) -> npt.NDArray[np.bool_]:
        """Whether each point lies in its region ``r`` and in no region before it."""
        ok = np.zeros(len(y), bool)
        for k in np.unique(r):
            idx = np.flatnonzero(r == k)
            inside = self.regions[k].contains(y[idx], x[idx])
            idx = idx[inside]
            for j in self.earlier[k]:
                if not len(idx):
                    break
                near = ((y[idx] >= self.y0[j]) & (y[idx] <= self.y1[j])
                        & (x[idx] >= self.x0[j]) & (x[idx] <= self.x1[j]))
                if near.any():
                    hit = np.flatnonzero(near)
                    taken = self.regions[j].contains(y[idx[hit]], x[idx[hit]])
                    idx = np.delete(idx, hit[taken])
            ok[idx] = True
        return ok


def _placer(
    slide: Slide, level: int, rsize: tuple[int, int]
) -> Callable[[npt.NDArray[np.float64], npt.NDArray[np.float64]], tuple[Coords, Coords]]:
    """Level-0 points → level top-left corners of the patches centred on them, fitted."""
    dy, dx = slide.levels[level].downsample
    lh, lw = slide.levels[level].shape

    def place(py: npt.NDArray[np.float64], px: npt.NDArray[np.float64]) -> tuple[Coords, Coords]:
        ty = np.floor(py / dy).astype(np.int64) - rsize[0] // 2
        tx = np.floor(px / dx).astype(np.int64) - rsize[1] // 2
        return np.clip(ty, 0, lh - rsize[0]), np.clip(tx, 0, lw - rsize[1])

    return place


def sample_slide(
    rng: np.random.Generator, wants: Sequence[tuple[int | None, int]], ann: AnnotatedSlides,
    k: int, slide: Slide, level: int, rsize: tuple[int, int], tissue: Tissue | None,
    min_tissue: float, replace: bool,
) -> tuple[Coords, Coords, Floats | None, npt.NDArray[np.int32] | None]:
    """The random patches of slide ``k``: for each ``(target, count)`` of ``wants``,
    ``count`` patches of class ``target`` (``None``: of any class, or as a mask;
    :data:`BACKGROUND`: labelled background, drawn uniformly over the slide).

    Returns level top-left corners (y, x), tissue fractions (``None`` without a
    mask) and labels (``None`` as a mask), targets one after the other.
    """
    dy, dx = slide.levels[level].downsample
    lh, lw = slide.levels[level].shape
    footprint = (rsize[0] * dy, rsize[1] * dx)
    cov = ann.coverage(k, slide, footprint)
    place = _placer(slide, level, rsize)
    parts: list[tuple[Coords, Coords, Floats | None, npt.NDArray[np.int32] | None]] = []
    seen = np.empty(0, np.int64)
    for target, count in wants:
        if count <= 0:
            continue
        if target == BACKGROUND:
            draw = None
        else:
            regions = [r for r, lab in zip(ann.regions[k], ann.region_labels[k], strict=True)
                       if target is None or lab == target]
            draw = UnionDraw(regions)
            if draw.empty:
                what = "" if target is None else f" of class {ann.classes[target]!r}"
                raise InvalidArgumentError(
                    f"n: {slide.name!r} has no region{what} with an area to draw patches from"
                )

        def candidates(
            m: int, draw: UnionDraw | None = draw
        ) -> tuple[Coords, Coords, npt.NDArray[np.bool_]]:
            if draw is None:
                ly = rng.integers(0, lh - rsize[0] + 1, m)
                return ly, rng.integers(0, lw - rsize[1] + 1, m), np.ones(m, bool)
            py, px, r = draw.points(rng, m)
            ly, lx = place(py, px)
            y0, x0 = to_level0(ly, lx, slide, level)
            ok = draw.accept(y0 + footprint[0] / 2, x0 + footprint[1] / 2, r)
            return ly, lx, ok

        part = _collect(count, candidates, _judge(ann, target, cov, slide, level, tissue,
                                                  min_tissue), replace, lw, seen)
        if len(part[0]) < count:
            raise InvalidArgumentError(
                f"n: could draw only {len(part[0])} of {count} patches "
                f"{_what(ann, target, min_tissue if tissue else None)}"
                f"{'' if replace else ', all distinct'} from {slide.name!r}; "
                "lower n, min_annotation or min_tissue"
            )
        if not replace:
            seen = np.concatenate([seen, part[0] * (lw + 1) + part[1]])
        parts.append(part)
    if not parts:
        empty = np.empty(0, np.int64)
        return (empty, empty, None if tissue is None else np.empty(0, np.float32),
                np.empty(0, np.int32) if ann.labels else None)
    ly = np.concatenate([p[0] for p in parts])
    lx = np.concatenate([p[1] for p in parts])
    f = None if tissue is None else np.concatenate([p[2] for p in parts if p[2] is not None])
    lab = None if not ann.labels else np.concatenate([p[3] for p in parts if p[3] is not None])
    return ly, lx, f, lab


def _what(ann: AnnotatedSlides, target: int | None, min_tissue: float | None) -> str:
    t = f"{ann.threshold:g}"
    if target == BACKGROUND:
        what = f"of background (no class covering {t} of the footprint)"
    elif target is None and not ann.labels:
        what = f"whose centre lies in a region and {t} of whose footprint regions cover"
    elif target is None:
        what = f"whose centre lies in a region and {t} of whose footprint one class covers"
    else:
        name = ann.classes[target]
        what = (f"of class {name!r} (centre in a {name!r} region, {t} of the footprint "
                f"{name!r})")
    return what + ("" if min_tissue is None else f" with tissue fraction >= {min_tissue:g}")


Judge = Callable[[Coords, Coords], tuple[npt.NDArray[np.bool_], Floats | None,
                                         npt.NDArray[np.int32] | None]]


def _judge(
    ann: AnnotatedSlides, target: int | None, cov: Coverage, slide: Slide, level: int,
    tissue: Tissue | None, min_tissue: float,
) -> Judge:
    def judge(ly: Coords, lx: Coords) -> tuple[npt.NDArray[np.bool_], Floats | None,
                                               npt.NDArray[np.int32] | None]:
        y0, x0 = to_level0(ly, lx, slide, level)
        keep, label = ann.judge(cov(y0, x0))
        if label is not None and target is not None:
            keep = label == (ann.background if target == BACKGROUND else target)
        frac = None
        if tissue is not None:
            frac = tissue(ly, lx)
            keep &= frac >= min_tissue
        return keep, frac, label

    return judge


def _collect(
    n: int, candidates: Callable[[int], tuple[Coords, Coords, npt.NDArray[np.bool_]]],
    judge: Judge, replace: bool, lw: int, seen: npt.NDArray[np.int64],
) -> tuple[Coords, Coords, Floats | None, npt.NDArray[np.int32] | None]:
    """Draw until ``n`` candidates pass (distinct, without ``replace``), or give up."""
    ys: list[Coords] = []
    xs: list[Coords] = []
    fs: list[Floats] = []
    labs: list[npt.NDArray[np.int32]] = []
    have, rate, dry = 0, 1.0, 0
    for _ in range(MAX_ROUNDS):
        need = n - have
        m = min(int(need / rate * 1.2) + 16, 1 << 20)
        ly, lx, ok = candidates(m)
        idx = np.flatnonzero(ok)
        keep, frac, label = judge(ly[idx], lx[idx])
        if not replace:
            key = ly[idx] * (lw + 1) + lx[idx]
            _, first = np.unique(key, return_index=True)
            fresh = np.zeros(len(idx), bool)
            fresh[first] = True
            keep &= fresh & ~np.isin(key, seen)
        rate = max(np.count_nonzero(keep) / m, 1.0 / m)
        take = np.flatnonzero(keep)[:need]
        ys.append(ly[idx[take]])
        xs.append(lx[idx[take]])
        if frac is not None:
            fs.append(frac[take])
        if label is not None:
            labs.append(label[take])
        if not replace:
            seen = np.concatenate([seen, (ly[idx] * (lw + 1) + lx[idx])[take]])
        have += len(take)
        dry = 0 if len(take) else dry + m
        if have == n or dry >= MAX_DRY:
            break
    return (np.concatenate(ys), np.concatenate(xs), np.concatenate(fs) if fs else None,
            np.concatenate(labs) if labs else None)


def _split(n: int, k: int) -> list[int]:
    return [n // k + (i < n % k) for i in range(k)]


def allocate_targets(
    ann: AnnotatedSlides, n: int, n_slides: int, per_slide: bool, balance: bool
) -> list[list[tuple[int | None, int]]]:
    """What each slide draws with labels from annotations: ``(target, count)`` pairs.

    Without ``balance``: ``n`` per slide (``per_slide``) or ``n`` split evenly
    over the slides, of any class (target ``None``). With ``balance``: ``n``
    (per slide, or in total) split evenly over the classes — the classes of
    the slide's regions, and background (drawn from anywhere) when named —
    and in total each class's share split evenly over the slides that have it.
    """
    if not balance:
        counts = [n] * n_slides if per_slide else _split(n, n_slides)
        return [[(None, c)] for c in counts]
    bg = ann.background
    targets: list[list[int]] = [
        [c for c in ann.slide_classes(k) if c != bg] + ([BACKGROUND] if bg is not None else [])
        for k in range(n_slides)
    ]
    if per_slide:
        return [list(zip(t, _split(n, len(t)), strict=True)) if t else [] for t in targets]
    out: list[list[tuple[int | None, int]]] = [[] for _ in range(n_slides)]
    every = sorted({c for t in targets for c in t}, key=lambda c: (c == BACKGROUND, c))
    for c, share in zip(every, _split(n, len(every)), strict=True):
        members = [k for k in range(n_slides) if c in targets[k]]
        for k, m in zip(members, _split(share, len(members)), strict=True):
            out[k].append((c, m))
    return out
