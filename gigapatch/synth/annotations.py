"""Annotation files for tests, docs and bug reports, in the shapes the tools write them.

The same shapes in three files: each shape is ``(class_name, polygons)``,
each polygon ``(exterior, holes)``, rings as (n, 2) level-0 (x, y)
vertices without the closing one.

=========================  =================================================================
writer                     what it writes
=========================  =================================================================
``write_qupath_geojson``   QuPath's "Export as GeoJSON": a FeatureCollection, one Feature per
                           shape (a Polygon, or a MultiPolygon for several polygons) with
                           ``properties.objectType = "annotation"`` and
                           ``properties.classification = {"name", "color"}``; rings closed
``write_asap_xml``         CAMELYON's ASAP XML: one ``Polygon`` Annotation per polygon in group
                           ``PartOfGroup=class``, each hole an Annotation in group ``_2``
                           (CAMELYON16's exclusions), and the ``AnnotationGroups``
``write_aperio_xml``       Aperio ImageScope XML: one Annotation (layer) per class named by it,
                           one Region per polygon, each hole a ``NegativeROA="1"`` Region of
                           the same layer
=========================  =================================================================
"""

from __future__ import annotations

import json
import os
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np

__all__ = ["Shape", "write_aperio_xml", "write_asap_xml", "write_qupath_geojson"]

#: ``(class_name, [(exterior, [hole, ...]), ...])``, rings (n, 2) level-0 (x, y).
Shape: TypeAlias = tuple[str, Sequence[tuple[Any, Sequence[Any]]]]
_COLOURS = ((200, 0, 0), (0, 150, 200), (250, 160, 0), (120, 40, 170), (40, 170, 60))


def _colour(k: int) -> tuple[int, int, int]:
    return _COLOURS[k % len(_COLOURS)]


def _pairs(ring: Any) -> list[tuple[float, float]]:
    return [(float(x), float(y)) for x, y in np.asarray(ring, np.float64)[:, :2]]


def write_qupath_geojson(path: str | os.PathLike[str], shapes: Sequence[Shape]) -> Path:
    """``shapes`` as QuPath exports annotations (a ``FeatureCollection``)."""
    classes = sorted({name for name, _ in shapes})
    features = []
    for k, (name, polygons) in enumerate(shapes):
        rings = [[[*p] for p in [*_pairs(ext), _pairs(ext)[0]]] for ext, _ in polygons]
        coords = [
            [outer] + [[[*p] for p in [*_pairs(h), _pairs(h)[0]]] for h in holes]
            for outer, (_, holes) in zip(rings, polygons, strict=True)
        ]
        geometry = ({"type": "Polygon", "coordinates": coords[0]} if len(coords) == 1
                    else {"type": "MultiPolygon", "coordinates": coords})
        features.append({
            "type": "Feature",
            "id": str(uuid.UUID(int=k + 1)),
            "geometry": geometry,
            "properties": {
                "objectType": "annotation",
                "classification": {"name": name, "color": list(_colour(classes.index(name)))},
                "isLocked": False,
            },
        })
    Path(path).write_text(json.dumps({"type": "FeatureCollection", "features": features},
                                     indent=2))
    return Path(path)


def _write_xml(path: str | os.PathLike[str], root: ET.Element) -> Path:
    ET.indent(root)
    Path(path).write_bytes(b'<?xml version="1.0"?>\n' + ET.tostring(root, encoding="utf-8"))
    return Path(path)


def write_asap_xml(path: str | os.PathLike[str], shapes: Sequence[Shape]) -> Path:
    """``shapes`` as CAMELYON's ASAP XML (holes as annotations of group ``_2``)."""
    root = ET.Element("ASAP_Annotations")
    anns = ET.SubElement(root, "Annotations")
    classes = sorted({name for name, _ in shapes})
    count = 0

    def add(ring: Any, group: str, colour: str) -> None:
        nonlocal count
        ann = ET.SubElement(anns, "Annotation", Name=f"Annotation {count}", Type="Polygon",
                            PartOfGroup=group, Color=colour)
        coords = ET.SubElement(ann, "Coordinates")
        for order, (x, y) in enumerate(_pairs(ring)):
            ET.SubElement(coords, "Coordinate", Order=str(order), X=repr(x), Y=repr(y))
        count += 1

    for name, polygons in shapes:
        for ext, holes in polygons:
            add(ext, name, "#F4FA58")
            for hole in holes:
                add(hole, "_2", "#64FE2E")
    groups = ET.SubElement(root, "AnnotationGroups")
    for k, name in enumerate([*classes, "_2"]):
        r, g, b = _colour(k)
        group = ET.SubElement(groups, "Group", Name=name, PartOfGroup="None",
                              Color=f"#{r:02x}{g:02x}{b:02x}")
        ET.SubElement(group, "Attributes")
    return _write_xml(path, root)


def write_aperio_xml(
    path: str | os.PathLike[str], shapes: Sequence[Shape], *, mpp: float = 0.25
) -> Path:
    """``shapes`` as Aperio ImageScope XML: a layer per class (holes as negative regions)."""
    root = ET.Element("Annotations", MicronsPerPixel=f"{mpp:.6f}")
    classes = sorted({name for name, _ in shapes})
    for k, name in enumerate(classes):
        r, g, b = _colour(k)
        ann = ET.SubElement(root, "Annotation", Id=str(k + 1), Name=name, ReadOnly="0",
                            NameReadOnly="0", LineColorReadOnly="0", Incremental="0", Type="4",
                            LineColor=str(r + 256 * g + 65536 * b), Visible="1", Selected="0",
                            MarkupImagePath="", MacroName="")
        attrs = ET.SubElement(ann, "Attributes")
        ET.SubElement(attrs, "Attribute", Name="Description", Id="0", Value="")
        regions = ET.SubElement(ann, "Regions")
        headers = ET.SubElement(regions, "RegionAttributeHeaders")
        ET.SubElement(headers, "AttributeHeader", Id="9999", Name="Region", ColumnWidth="-1")
        rid = 0
        for cls, polygons in shapes:
            if cls != name:
                continue
            for ext, holes in polygons:
                for ring, negative in [(ext, "0"), *((h, "1") for h in holes)]:
                    rid += 1
                    reg = ET.SubElement(regions, "Region", Id=str(rid), Type="0", Zoom="0.5",
                                        Selected="0", ImageLocation="", ImageFocus="-1",
                                        Text="", NegativeROA=negative, InputRegionId="0",
                                        Analyze="1", DisplayId=str(rid))
                    ET.SubElement(reg, "Attributes")
                    verts = ET.SubElement(reg, "Vertices")
                    for x, y in _pairs(ring):
                        ET.SubElement(verts, "Vertex", X=repr(x), Y=repr(y), Z="0")
        ET.SubElement(ann, "Plots")
    return _write_xml(path, root)
