"""Aperio ImageScope XML annotations::

    <Annotations MicronsPerPixel="0.2520">
      <Annotation Id="1" Name="Tumor" LineColor="255" …>
        <Regions>
          <Region Id="1" Type="0" Text="" NegativeROA="0" …>
            <Vertices>
              <Vertex X="1204" Y="2311" Z="0" />
              …

Each ``Region`` is one region. Its class is the ``Name`` of its
``Annotation`` (an ImageScope layer), else the region's own ``Text`` (its
label), else :data:`~gigapatch.plan.annotations.regions.UNCLASSIFIED`. A
region with ``NegativeROA="1"`` is a negative region: cut out, as a hole,
of every positive region of its annotation that it overlaps, and no region
itself. Region ``Type`` as ImageScope writes it: ``1`` rectangle (its four
corners), ``2`` ellipse (two opposite corners of its bounding box: a
64-gon is inscribed), ``3`` arrow and ``4`` ruler (no area: skipped,
counted); anything else is a polygon through its vertices.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np

from gigapatch.plan.annotations.regions import UNCLASSIFIED, Region, cut_out, make_ring
from gigapatch.plan.annotations.xmltext import coordinate, parse_xml

__all__ = ["ELLIPSE_VERTICES", "read_aperio"]

#: Vertices of the polygon that stands for an ellipse region.
ELLIPSE_VERTICES = 64
_SKIPPED = ("3", "4")


def _points(region: ET.Element, file: str, where: str) -> list[tuple[float, float]]:
    points = [(coordinate(v, "X", file, where), coordinate(v, "Y", file, where))
              for v in region.findall("Vertices/Vertex")]
    if region.get("Type", "0").strip() == "2" and len(points) == 2:
        (xa, ya), (xb, yb) = points
        t = 2 * np.pi * np.arange(ELLIPSE_VERTICES) / ELLIPSE_VERTICES
        cx, cy, rx, ry = (xa + xb) / 2, (ya + yb) / 2, abs(xb - xa) / 2, abs(yb - ya) / 2
        return list(zip((cx + rx * np.cos(t)).tolist(), (cy + ry * np.sin(t)).tolist(),
                        strict=True))
    return points


def read_aperio(data: bytes, file: str) -> tuple[list[Region], int]:
    """The regions of an Aperio XML file's bytes, and how many shapes without area were
    skipped.

    Raises
    ------
    AnnotationError
        Not XML, no ``Annotations`` root, a missing or non-numeric vertex, or
        fewer than three points (the message names them: ``annotation 1
        ('Tumor') region 2``).
    """
    root = parse_xml(data, file, "Annotations", "Aperio ImageScope XML")
    regions: list[Region] = []
    skipped = 0
    for i, ann in enumerate(root.findall("Annotation")):
        layer = (ann.get("Name") or "").strip()
        positive: list[Region] = []
        negative = []
        for j, reg in enumerate(ann.findall("Regions/Region")):
            where = f"annotation {i} ({layer!r}) region {j}"
            if reg.get("Type", "0").strip() in _SKIPPED:
                skipped += 1
                continue
            points = _points(reg, file, where)
            ring = make_ring(points, file, where)
            if (reg.get("NegativeROA") or "0").strip() == "1":
                negative.append(ring)
                continue
            text = (reg.get("Text") or reg.get("Name") or "").strip()
            positive.append(Region(layer or text or UNCLASSIFIED, ring, (), where))
        regions += cut_out(positive, negative)
    return regions, skipped
