"""Regions as pathologists draw them, in one small in-memory form.

A :class:`Region` is one polygon of one class: its exterior ring and its
holes, each an (n, 2) float64 array of level-0 **(x, y)** vertices, as
annotation files store them (QuPath GeoJSON, ASAP XML and Aperio XML all
write x first). Rings do not repeat their first vertex at the end. A
region's area is that of its exterior less those of its holes.

An :class:`Annotations` is what one file (or one in-memory list) holds for
one slide: its regions, where they came from and a fingerprint of the
content, which stores record per source.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from gigapatch.errors import AnnotationError, InvalidArgumentError
from gigapatch.plan.annotations.points import RingIndex

__all__ = [
    "UNCLASSIFIED", "Annotations", "Region", "cut_out", "make_ring", "regions_digest", "ring_area",
]

#: Class name of a region whose file gives it none.
UNCLASSIFIED = "unclassified"

Ring = npt.NDArray[np.float64]


def ring_area(ring: Ring) -> float:
    """Area enclosed by ``ring`` (shoelace formula, always >= 0)."""
    x, y = ring[:, 0], ring[:, 1]
    return abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))) / 2


def make_ring(points: Any, file: str, where: str) -> Ring:
    """``points`` as a ring: (n, 2) finite float64 (x, y), the closing vertex dropped.

    Raises
    ------
    AnnotationError
        Not a list of (x, y) numbers, a non-finite coordinate, or fewer than three
        distinct points; the message names ``file`` and ``where`` in it.
    """
    if isinstance(points, list | tuple) and not points:
        raise AnnotationError(
            f"annotations {file!r}: {where} has no points; a polygon needs at least 3"
        )
    try:
        arr = np.asarray(points, np.float64)
    except (TypeError, ValueError):
        arr = np.empty((0, 0))
    if arr.ndim != 2 or arr.shape[1] < 2 or (arr.shape[0] and arr.shape[1] > 3):
        raise AnnotationError(
            f"annotations {file!r}: {where} must list (x, y) points; got {_short(points)}"
        )
    arr = np.ascontiguousarray(arr[:, :2])
    if not np.isfinite(arr).all():
        raise AnnotationError(
            f"annotations {file!r}: {where} has a non-finite coordinate; got {_short(points)}"
        )
    if len(arr) > 1 and (arr[0] == arr[-1]).all():
        arr = arr[:-1]
    if len(np.unique(arr, axis=0)) < 3:
        raise AnnotationError(
            f"annotations {file!r}: {where} has {len(np.unique(arr, axis=0))} distinct "
            "points; a polygon needs at least 3"
        )
    return arr


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True, eq=False)
class Region:
    """One polygon of one class, in level-0 (x, y).

    Attributes
    ----------
    class_name
        The class the region marks.
    exterior
        (n, 2) float64 outer ring.
    holes
        (m, 2) float64 rings cut out of it.
    where
        Where it sits in its file (``"feature 3"``, ``"annotation 2"``…), for messages.
    """

    class_name: str
    exterior: Ring
    holes: tuple[Ring, ...] = ()
    where: str = ""

    @functools.cached_property
    def area(self) -> float:
        """Area of the exterior less the areas of the holes (level-0 pixels²)."""
        return ring_area(self.exterior) - sum(ring_area(h) for h in self.holes)

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1): the exterior's bounding box."""
        lo, hi = self.exterior.min(axis=0), self.exterior.max(axis=0)
        return float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])

    @functools.cached_property
    def index(self) -> tuple[RingIndex, tuple[RingIndex, ...]]:
        """Edge indexes of the exterior and of each hole, for point tests."""
        return RingIndex(self.exterior), tuple(RingIndex(h) for h in self.holes)

    def contains(
        self, y: npt.NDArray[np.floating[Any]], x: npt.NDArray[np.floating[Any]]
    ) -> npt.NDArray[np.bool_]:
        """(N,) whether each level-0 point (y, x) is inside the exterior and in no hole."""
        outer, holes = self.index
        inside = outer.contains(y, x)
        for h in holes:
            if inside.any():
                idx = np.flatnonzero(inside)
                inside[idx[h.contains(np.asarray(y)[idx], np.asarray(x)[idx])]] = False
        return inside


def _overlaps(region: Region, ring: Ring) -> bool:
    """Whether ``ring`` shares area with ``region``'s exterior: one holds a vertex of the
    other (enough for the exclusions drawn inside regions that the formats describe)."""
    x0, y0, x1, y1 = region.bbox
    rx, ry = ring[:, 0], ring[:, 1]
    if rx.max() < x0 or rx.min() > x1 or ry.max() < y0 or ry.min() > y1:
        return False
    outer = region.index[0]
    if outer.contains(ry, rx).any():
        return True
    return bool(RingIndex(ring).contains(region.exterior[:, 1], region.exterior[:, 0]).any())


def cut_out(regions: Sequence[Region], exclusions: Iterable[Ring]) -> list[Region]:
    """``regions`` with each exclusion ring added as a hole of every region it overlaps."""
    out = list(regions)
    for ring in exclusions:
        for i, r in enumerate(out):
            if _overlaps(r, ring):
                out[i] = Region(r.class_name, r.exterior, (*r.holes, ring), r.where)
    return out


def regions_digest(regions: Sequence[Region]) -> str:
    """sha256 of the regions' classes and coordinates (the fingerprint of in-memory ones)."""
    h = hashlib.sha256()
    for r in regions:
        h.update(r.class_name.encode() + b"\0")
        for ring in (r.exterior, *r.holes):
            h.update(len(ring).to_bytes(8, "little"))
            h.update(np.ascontiguousarray(ring, "<f8").tobytes())
    return h.hexdigest()


@dataclass(frozen=True, eq=False)
class Annotations:
    """The regions of one slide and where they came from.

    Attributes
    ----------
    regions
        The regions, in file order.
    path
        The file read (absolute), ``None`` for regions given in memory.
    sha256
        Fingerprint: sha256 of the file's bytes, or of the regions' classes and
        coordinates for regions given in memory.
    format
        ``"geojson"``, ``"asap"``, ``"aperio"`` or ``"memory"``.
    skipped
        Shapes of the file that enclose no area (points, lines, rulers), left out.
    """

    regions: tuple[Region, ...]
    path: str | None = None
    sha256: str = ""
    format: str = "memory"
    skipped: int = 0

    @classmethod
    def of(cls, regions: Iterable[Region]) -> Annotations:
        """In-memory regions (fingerprinted by :func:`regions_digest`)."""
        items = tuple(regions)
        bad = [r for r in items if not isinstance(r, Region)]
        if bad:
            raise InvalidArgumentError(
                f"annotations must be Region objects; got {type(bad[0]).__name__}"
            )
        return cls(items, None, regions_digest(items), "memory")

    @property
    def name(self) -> str:
        """The file, or ``"<memory>"``, for messages."""
        return self.path or "<memory>"

    @property
    def classes(self) -> tuple[str, ...]:
        """The class names of the regions, sorted."""
        return tuple(sorted({r.class_name for r in self.regions}))

    def record(self) -> dict[str, Any]:
        """What a store records of this source's annotations (JSON-ready)."""
        return {"path": self.path, "sha256": self.sha256, "format": self.format,
                "regions": len(self.regions), "classes": list(self.classes),
                "skipped": self.skipped}

    def check_inside(self, shape0: tuple[int, int], slide_name: str) -> None:
        """Raise :class:`AnnotationError` for the first vertex outside the level-0 extent
        ``shape0`` (h, w) of ``slide_name`` (the edges themselves count as inside)."""
        h0, w0 = shape0
        for r in self.regions:
            for ring in (r.exterior, *r.holes):
                out = (ring[:, 0] < 0) | (ring[:, 0] > w0) | (ring[:, 1] < 0) | (ring[:, 1] > h0)
                if out.any():
                    x, y = ring[int(np.argmax(out))]
                    raise AnnotationError(
                        f"annotations {self.name!r}: {r.where or 'a region'} "
                        f"({r.class_name!r}) has a point outside slide {slide_name!r}: "
                        f"x={x:g}, y={y:g} is not within its {w0}x{h0} (width x height) "
                        "level-0 pixels"
                    )
