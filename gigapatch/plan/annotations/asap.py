"""ASAP XML annotations, as CAMELYON16/17 ship them::

    <ASAP_Annotations>
      <Annotations>
        <Annotation Name="Annotation 0" Type="Polygon" PartOfGroup="Tumor" Color="#F4FA58">
          <Coordinates>
            <Coordinate Order="0" X="55040.6" Y="103136.2" />
            …
      <AnnotationGroups>
        <Group Name="Tumor" PartOfGroup="None" Color="#ff0000"><Attributes /></Group>

Each ``Polygon``, ``Spline`` (its control points) or ``Rectangle``
annotation is one region, of class ``PartOfGroup`` (``"None"`` or empty:
:data:`~gigapatch.plan.annotations.regions.UNCLASSIFIED`). ``Dot``,
``PointSet`` and ``Measurement`` enclose no area and are skipped (counted).
Vertices are taken in ``Order``. ASAP has no holes; CAMELYON16's convention
is supported instead: an annotation in group ``_2`` marks an exclusion, cut
out of every region it overlaps (as a hole) and no region itself.
"""

from __future__ import annotations

from gigapatch.errors import AnnotationError
from gigapatch.plan.annotations.regions import UNCLASSIFIED, Region, cut_out, make_ring
from gigapatch.plan.annotations.xmltext import coordinate, parse_xml

__all__ = ["EXCLUSION_GROUP", "read_asap"]

#: CAMELYON16's group of exclusions ("non-tumour inside tumour").
EXCLUSION_GROUP = "_2"
_AREA = ("Polygon", "Spline", "Rectangle")
_SKIPPED = ("Dot", "PointSet", "Measurement")


def read_asap(data: bytes, file: str) -> tuple[list[Region], int]:
    """The regions of an ASAP XML file's bytes, and how many shapes without area were skipped.

    Raises
    ------
    AnnotationError
        Not XML, no ``ASAP_Annotations`` root, an unknown annotation type, a
        missing or non-numeric coordinate, or fewer than three points (the
        message names the annotation: ``annotation 3 ('Annotation 2')``).
    """
    root = parse_xml(data, file, "ASAP_Annotations", "ASAP XML")
    regions: list[Region] = []
    exclusions = []
    skipped = 0
    for i, ann in enumerate(root.iter("Annotation")):
        where = f"annotation {i} ({ann.get('Name', '')!r})"
        kind = ann.get("Type", "Polygon")
        if kind in _SKIPPED:
            skipped += 1
            continue
        if kind not in _AREA:
            raise AnnotationError(
                f"annotations {file!r}: {where} has Type={kind!r}; expected one of "
                f"{', '.join(_AREA + _SKIPPED)}"
            )
        coords = ann.findall("Coordinates/Coordinate")
        if all(c.get("Order") is not None for c in coords):
            try:
                coords.sort(key=lambda c: int(c.get("Order", "")))
            except ValueError:
                raise AnnotationError(
                    f"annotations {file!r}: {where} has a Coordinate whose Order is not an "
                    "integer"
                ) from None
        points = [(coordinate(c, "X", file, where), coordinate(c, "Y", file, where))
                  for c in coords]
        ring = make_ring(points, file, where)
        group = (ann.get("PartOfGroup") or "").strip()
        if group == EXCLUSION_GROUP:
            exclusions.append(ring)
            continue
        name = group if group and group != "None" else UNCLASSIFIED
        regions.append(Region(name, ring, (), where))
    return cut_out(regions, exclusions), skipped
