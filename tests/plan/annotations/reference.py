"""The shapes the annotation tests draw, written in all three formats, and an independent
reference: a plain even-odd point-in-polygon test and footprint coverage by dense sampling
(no code shared with gigapatch.plan.annotations)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gigapatch.synth import write_aperio_xml, write_asap_xml, write_qupath_geojson

#: Level-0 size (h, w) of the slides the shapes are drawn on.
SHAPE0 = (1600, 2400)


def _ring(*xy):
    return np.array(xy, np.float64)


STROMA = _ring((200, 150), (1500, 180), (1700, 700), (1560, 1350), (600, 1300), (240, 900))
HOLE = _ring((400, 300), (720, 330), (690, 620), (420, 580))
TUMOR_A = _ring((1100, 800), (1450, 830), (1500, 1100), (1250, 1220), (1080, 1050))
TUMOR_B = _ring((1900, 300), (2300, 420), (2200, 1000), (1950, 950))
#: Two classes, overlapping (tumour A lies inside stroma), a hole, a multipolygon.
SHAPES = [
    ("stroma", [(STROMA, [HOLE])]),
    ("tumor", [(TUMOR_A, []), (TUMOR_B, [])]),
]
#: The regions of SHAPES, one per polygon: (class, exterior, holes).
REGIONS = [("stroma", STROMA, [HOLE]), ("tumor", TUMOR_A, []), ("tumor", TUMOR_B, [])]

WRITERS = {"geojson": write_qupath_geojson, "asap": write_asap_xml, "aperio": write_aperio_xml}
SUFFIX = {"geojson": ".geojson", "asap": ".xml", "aperio": ".xml"}


def write_all(folder: Path, shapes=SHAPES, stem: str = "slide") -> dict[str, Path]:
    """The shapes in each format, in ``folder/<format>/<stem><suffix>``."""
    out = {}
    for fmt, write in WRITERS.items():
        (folder / fmt).mkdir(parents=True, exist_ok=True)
        out[fmt] = write(folder / fmt / f"{stem}{SUFFIX[fmt]}", shapes)
    return out


def inside(ring, y, x):
    """Even-odd test of points (y, x) against a ring of (x, y) vertices: a plain loop over
    edges, each counted when the horizontal ray to +x crosses it."""
    y = np.asarray(y, np.float64)
    x = np.asarray(x, np.float64)
    odd = np.zeros(y.shape, bool)
    n = len(ring)
    for i in range(n):
        (xa, ya), (xb, yb) = ring[i], ring[(i + 1) % n]
        if ya == yb:
            continue
        spans = (ya > y) != (yb > y)
        with np.errstate(all="ignore"):  # only where the edge spans y does xc count
            xc = xa + (xb - xa) * ((y - ya) / (yb - ya))
        odd ^= spans & (x < xc)
    return odd


def area(ring):
    x, y = ring[:, 0], ring[:, 1]
    return abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2


def region_area(region):
    _, ext, holes = region
    return area(ext) - sum(area(h) for h in holes)


def in_region(region, y, x):
    _, ext, holes = region
    out = inside(ext, y, x)
    for h in holes:
        out &= ~inside(h, y, x)
    return out


def class_at(regions, classes, y, x):
    """Class index at each point: the smallest region holding it wins; -1 where none."""
    out = np.full(np.shape(y), -1, np.int64)
    best = np.full(np.shape(y), np.inf)
    for r in regions:
        a = region_area(r)
        hit = in_region(r, y, x) & (a < best)
        out[hit] = classes.index(r[0])
        best[hit] = a
    return out


def coverage(regions, classes, y0, x0, footprint, grid=32):
    """(N, classes) fractions of each footprint per class, sampled on grid² points."""
    fh, fw = footprint
    t = (np.arange(grid) + 0.5) / grid
    py = np.asarray(y0, np.float64)[:, None, None] + t[None, :, None] * fh
    px = np.asarray(x0, np.float64)[:, None, None] + t[None, None, :] * fw
    py, px = np.broadcast_arrays(py, px)
    lab = class_at(regions, classes, py.reshape(len(py), -1), px.reshape(len(px), -1))
    return np.stack([(lab == k).mean(axis=1) for k in range(len(classes))], axis=1)
