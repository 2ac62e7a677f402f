"""GeoJSON annotations as QuPath exports them.

QuPath writes a ``FeatureCollection`` (or, with "export as array" unticked
in older versions, a bare JSON array) of ``Feature`` objects::

    {"type": "Feature", "id": "…",
     "geometry": {"type": "Polygon", "coordinates": [[[x, y], …], [[x, y], …]]},
     "properties": {"objectType": "annotation",
                    "classification": {"name": "Tumor", "color": [200, 0, 0]}}}

A ``Polygon`` is one region (its first ring the exterior, the others holes);
each polygon of a ``MultiPolygon`` is a region of its own; a
``GeometryCollection`` contributes its polygons. The class is
``properties.classification.name`` (QuPath ≥ 0.4 may write ``names``, a
list, for derived classes: joined with ``": "`` as QuPath shows them),
else ``properties.name``, else ``properties.label``, else
:data:`~gigapatch.plan.annotations.regions.UNCLASSIFIED`. Points and lines
enclose no area and are skipped (counted).
"""

from __future__ import annotations

import json
from typing import Any

from gigapatch.errors import AnnotationError
from gigapatch.plan.annotations.regions import UNCLASSIFIED, Region, make_ring

__all__ = ["read_geojson"]

_SKIPPED = ("Point", "MultiPoint", "LineString", "MultiLineString")


def _class_name(props: Any, file: str, where: str) -> str:
    if props is None:
        return UNCLASSIFIED
    if not isinstance(props, dict):
        raise AnnotationError(
            f"annotations {file!r}: {where}.properties must be an object; got {props!r:.60}"
        )
    cls = props.get("classification")
    if isinstance(cls, dict):
        name = cls.get("name")
        if name is None and isinstance(cls.get("names"), list):
            name = ": ".join(str(n) for n in cls["names"])
        if name is not None:
            return str(name)
    elif isinstance(cls, str):
        return cls
    for key in ("name", "label"):
        if isinstance(props.get(key), str | int) and not isinstance(props.get(key), bool):
            return str(props[key])
    return UNCLASSIFIED


def _polygon(coords: Any, name: str, file: str, where: str) -> Region:
    if not isinstance(coords, list) or not coords:
        raise AnnotationError(
            f"annotations {file!r}: {where} must be a list of rings (exterior first); "
            f"got {coords!r:.60}"
        )
    exterior = make_ring(coords[0], file, f"{where} exterior")
    holes = tuple(make_ring(h, file, f"{where} hole {k}") for k, h in enumerate(coords[1:]))
    return Region(name, exterior, holes, where)


def _geometry(geom: Any, name: str, file: str, where: str) -> tuple[list[Region], int]:
    if not isinstance(geom, dict) or "type" not in geom:
        raise AnnotationError(
            f"annotations {file!r}: {where} must be a GeoJSON geometry object with a 'type'; "
            f"got {geom!r:.60}"
        )
    kind = geom["type"]
    if kind == "Polygon":
        return [_polygon(geom.get("coordinates"), name, file, where)], 0
    if kind == "MultiPolygon":
        parts = geom.get("coordinates")
        if not isinstance(parts, list):
            raise AnnotationError(
                f"annotations {file!r}: {where}.coordinates must be a list of polygons; "
                f"got {parts!r:.60}"
            )
        return [_polygon(p, name, file, f"{where} polygon {k}") for k, p in enumerate(parts)], 0
    if kind == "GeometryCollection":
        regions: list[Region] = []
        skipped = 0
        for k, g in enumerate(geom.get("geometries") or []):
            more, skip = _geometry(g, name, file, f"{where}.geometries[{k}]")
            regions += more
            skipped += skip
        return regions, skipped
    if kind in _SKIPPED:
        return [], 1
    raise AnnotationError(
        f"annotations {file!r}: {where} has geometry type {kind!r}; expected Polygon, "
        "MultiPolygon, GeometryCollection (or a point or line, skipped)"
    )


def read_geojson(data: bytes, file: str) -> tuple[list[Region], int]:
    """The regions of a GeoJSON file's bytes, and how many shapes without area were skipped.

    Parameters
    ----------
    data
        The file's content.
    file
        Its name, for messages.

    Raises
    ------
    AnnotationError
        Not JSON, not a FeatureCollection / Feature / array of features /
        geometry, or a malformed feature (the message names it: ``features[3]``).
    """
    try:
        doc = json.loads(data)
    except UnicodeDecodeError as exc:
        raise AnnotationError(f"annotations {file!r}: not UTF-8 text ({exc.reason})") from None
    except json.JSONDecodeError as exc:
        raise AnnotationError(
            f"annotations {file!r}: not valid JSON (line {exc.lineno} column {exc.colno}: "
            f"{exc.msg})"
        ) from None
    if isinstance(doc, dict) and doc.get("type") == "FeatureCollection":
        features = doc.get("features")
    elif isinstance(doc, dict) and doc.get("type") == "Feature":
        features = [doc]
    elif isinstance(doc, dict) and doc.get("type") in ("Polygon", "MultiPolygon"):
        features = [{"type": "Feature", "geometry": doc, "properties": None}]
    else:
        features = doc
    if not isinstance(features, list):
        raise AnnotationError(
            f"annotations {file!r}: expected a GeoJSON FeatureCollection, a Feature or a list "
            f"of features; got {type(doc).__name__} {str(doc)[:60]!r}"
        )
    regions: list[Region] = []
    skipped = 0
    for i, feature in enumerate(features):
        where = f"features[{i}]"
        if not isinstance(feature, dict) or "geometry" not in feature:
            raise AnnotationError(
                f"annotations {file!r}: {where} must be a GeoJSON Feature with a 'geometry'; "
                f"got {feature!r:.60}"
            )
        if feature["geometry"] is None:
            skipped += 1
            continue
        name = _class_name(feature.get("properties"), file, where)
        more, skip = _geometry(feature["geometry"], name, file, where)
        regions += more
        skipped += skip
    return regions, skipped
