"""Reading QuPath GeoJSON, ASAP (CAMELYON) XML and Aperio XML into one form."""

import hashlib
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gigapatch.errors import AnnotationError
from gigapatch.plan.annotations import UNCLASSIFIED, read_annotations
from tests.plan.annotations.reference import HOLE, REGIONS, STROMA, write_all


def _canonical(regions):
    return sorted(
        ((r.class_name, r.exterior.tolist(), [h.tolist() for h in r.holes]) for r in regions),
        key=lambda t: (t[0], t[1]),
    )


def test_the_three_formats_give_the_same_regions(tmp_path):
    files = write_all(tmp_path)
    found = {fmt: read_annotations(p) for fmt, p in files.items()}
    want = _canonical_reference()
    for fmt, ann in found.items():
        assert ann.format == fmt
        assert _canonical(ann.regions) == want, fmt
        assert ann.classes == ("stroma", "tumor")
        assert ann.sha256 == hashlib.sha256(files[fmt].read_bytes()).hexdigest()
        assert ann.path == str(files[fmt].resolve())


def _canonical_reference():
    return sorted(((c, e.tolist(), [h.tolist() for h in hs]) for c, e, hs in REGIONS),
                  key=lambda t: (t[0], t[1]))


def test_region_area_is_the_exterior_less_its_holes(tmp_path):
    ann = read_annotations(write_all(tmp_path)["geojson"])
    stroma = next(r for r in ann.regions if r.class_name == "stroma")
    x, y = STROMA[:, 0], STROMA[:, 1]
    outer = abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2
    hx, hy = HOLE[:, 0], HOLE[:, 1]
    hole = abs(np.dot(hx, np.roll(hy, -1)) - np.dot(hy, np.roll(hx, -1))) / 2
    assert stroma.area == pytest.approx(outer - hole)


QUPATH = {
    "type": "FeatureCollection",
    "features": [
        {
            "type": "Feature",
            "id": "7b0f6a52-1f3c-4a9c-8f59-0c6d3c1e2a10",
            "geometry": {"type": "Polygon", "coordinates": [
                [[10.5, 20.0], [110.0, 20.0], [110.0, 90.25], [10.5, 90.25], [10.5, 20.0]],
                [[30, 30], [50, 30], [50, 50], [30, 30]],
            ]},
            "properties": {"objectType": "annotation",
                           "classification": {"name": "Tumor", "color": [200, 0, 0]},
                           "isLocked": False},
        },
        {
            "type": "Feature",
            "id": "9f3c",
            "geometry": {"type": "MultiPolygon", "coordinates": [
                [[[200, 200], [260, 200], [260, 260], [200, 200]]],
                [[[300, 300], [360, 300], [330, 380], [300, 300]]],
            ]},
            "properties": {"objectType": "annotation",
                           "classification": {"names": ["Tumor", "Positive"],
                                              "color": [1, 2, 3]}},
        },
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [5, 5]},
         "properties": {"objectType": "annotation", "name": "a cell"}},
        {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [
            [[0, 0], [9, 0], [9, 9], [0, 0]]]}, "properties": {"name": "Stroma"}},
        {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [
            [[0, 0], [9, 0], [9, 9], [0, 0]]]}, "properties": {"label": 3}},
        {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [
            [[0, 0], [9, 0], [9, 9], [0, 0]]]}, "properties": {"objectType": "annotation"}},
    ],
}


def test_a_qupath_export_loads_with_its_classes_holes_and_parts(tmp_path):
    path = tmp_path / "qupath.geojson"
    path.write_text(json.dumps(QUPATH))
    ann = read_annotations(path)
    assert [r.class_name for r in ann.regions] == [
        "Tumor", "Tumor: Positive", "Tumor: Positive", "Stroma", "3", UNCLASSIFIED]
    first = ann.regions[0]
    assert first.exterior.tolist() == [[10.5, 20.0], [110.0, 20.0], [110.0, 90.25],
                                       [10.5, 90.25]]
    assert [h.tolist() for h in first.holes] == [[[30, 30], [50, 30], [50, 50]]]
    assert ann.regions[1].where == "features[1] polygon 0"
    assert ann.skipped == 1  # the point
    # a bare array of features (QuPath's older export) reads the same
    array = tmp_path / "array.json"
    array.write_text(json.dumps(QUPATH["features"]))
    assert _canonical(read_annotations(array).regions) == _canonical(ann.regions)


CAMELYON = """<?xml version="1.0"?>
<ASAP_Annotations>
\t<Annotations>
\t\t<Annotation Name="Annotation 0" Type="Polygon" PartOfGroup="_0" Color="#F4FA58">
\t\t\t<Coordinates>
\t\t\t\t<Coordinate Order="2" X="300" Y="400" />
\t\t\t\t<Coordinate Order="0" X="100.5" Y="100" />
\t\t\t\t<Coordinate Order="1" X="300" Y="100" />
\t\t\t\t<Coordinate Order="3" X="100,5" Y="400" />
\t\t\t</Coordinates>
\t\t</Annotation>
\t\t<Annotation Name="Annotation 1" Type="Spline" PartOfGroup="_2" Color="#64FE2E">
\t\t\t<Coordinates>
\t\t\t\t<Coordinate Order="0" X="150" Y="150" />
\t\t\t\t<Coordinate Order="1" X="200" Y="150" />
\t\t\t\t<Coordinate Order="2" X="200" Y="200" />
\t\t\t</Coordinates>
\t\t</Annotation>
\t\t<Annotation Name="Annotation 2" Type="Dot" PartOfGroup="None" Color="#F4FA58">
\t\t\t<Coordinates><Coordinate Order="0" X="5" Y="5" /></Coordinates>
\t\t</Annotation>
\t\t<Annotation Name="Annotation 3" Type="Rectangle" PartOfGroup="None" Color="#F4FA58">
\t\t\t<Coordinates>
\t\t\t\t<Coordinate Order="0" X="500" Y="500" />
\t\t\t\t<Coordinate Order="1" X="600" Y="500" />
\t\t\t\t<Coordinate Order="2" X="600" Y="600" />
\t\t\t\t<Coordinate Order="3" X="500" Y="600" />
\t\t\t</Coordinates>
\t\t</Annotation>
\t</Annotations>
\t<AnnotationGroups>
\t\t<Group Name="_0" PartOfGroup="None" Color="#ff0000"><Attributes /></Group>
\t\t<Group Name="_2" PartOfGroup="None" Color="#00ff00"><Attributes /></Group>
\t</AnnotationGroups>
</ASAP_Annotations>
"""


def test_a_camelyon_asap_file_loads_with_its_exclusions_cut_out(tmp_path):
    path = tmp_path / "tumor_001.xml"
    path.write_text(CAMELYON)
    ann = read_annotations(path)
    assert ann.format == "asap" and ann.skipped == 1
    tumour, rect = ann.regions
    assert tumour.class_name == "_0" and rect.class_name == UNCLASSIFIED
    # vertices in Order; the decimal comma of some ASAP locales read as a point
    assert tumour.exterior.tolist() == [[100.5, 100], [300, 100], [300, 400], [100.5, 400]]
    assert [h.tolist() for h in tumour.holes] == [[[150, 150], [200, 150], [200, 200]]]
    assert rect.holes == ()  # the exclusion lies in the tumour region only
    assert tumour.area == pytest.approx(199.5 * 300 - 50 * 50 / 2)


APERIO = """<?xml version="1.0" encoding="UTF-8"?>
<Annotations MicronsPerPixel="0.252000">
<Annotation Id="1" Name="" ReadOnly="0" LineColor="65280" Visible="1">
<Attributes><Attribute Name="Description" Id="0" Value=""/></Attributes>
<Regions>
<RegionAttributeHeaders><AttributeHeader Id="9999" Name="Region" ColumnWidth="-1"/>
</RegionAttributeHeaders>
<Region Id="1" Type="0" Zoom="0.5" Text="necrosis" NegativeROA="0" Analyze="1">
<Attributes/>
<Vertices><Vertex X="0" Y="0" Z="0"/><Vertex X="100" Y="0" Z="0"/>
<Vertex X="100" Y="100" Z="0"/><Vertex X="0" Y="100" Z="0"/></Vertices>
</Region>
<Region Id="2" Type="2" Zoom="0.5" Text="" NegativeROA="0">
<Vertices><Vertex X="200" Y="200" Z="0"/><Vertex X="300" Y="250" Z="0"/></Vertices>
</Region>
<Region Id="3" Type="4" Zoom="0.5" Text="" NegativeROA="0">
<Vertices><Vertex X="0" Y="0" Z="0"/><Vertex X="50" Y="50" Z="0"/></Vertices>
</Region>
<Region Id="4" Type="0" Zoom="0.5" Text="" NegativeROA="1">
<Vertices><Vertex X="10" Y="10" Z="0"/><Vertex X="20" Y="10" Z="0"/>
<Vertex X="20" Y="20" Z="0"/></Vertices>
</Region>
</Regions>
<Plots/>
</Annotation>
</Annotations>
"""


def test_an_aperio_file_loads_with_negative_regions_as_holes(tmp_path):
    path = tmp_path / "case.xml"
    path.write_text(APERIO)
    ann = read_annotations(path)
    assert ann.format == "aperio" and ann.skipped == 1  # the ruler
    square, ellipse = ann.regions
    assert square.class_name == "necrosis"  # no layer name: the region's text
    assert ellipse.class_name == UNCLASSIFIED
    assert [h.tolist() for h in square.holes] == [[[10, 10], [20, 10], [20, 20]]]
    assert ellipse.holes == ()
    assert len(ellipse.exterior) == 64
    assert ellipse.bbox == pytest.approx((200, 200, 300, 250))
    assert ellipse.area == pytest.approx(np.pi * 50 * 25, rel=0.01)


def test_an_aperio_layer_name_is_the_class_of_its_regions(tmp_path):
    path = tmp_path / "named.xml"
    path.write_text(APERIO.replace('Name="" ReadOnly', 'Name="Tumor" ReadOnly'))
    assert {r.class_name for r in read_annotations(path).regions} == {"Tumor"}


@pytest.mark.parametrize(("name", "text", "match"), [
    ("bad.geojson", '{"type": "FeatureCollection", "features": [', r"bad\.geojson'.*not valid "
     r"JSON \(line 1 column 44: Expecting value"),
    ("f.geojson", '{"type": "FeatureCollection", "features": {}}',
     r"expected a GeoJSON FeatureCollection"),
    ("f.geojson", '{"type": "FeatureCollection", "features": [{"type": "Feature"}]}',
     r"features\[0\] must be a GeoJSON Feature with a 'geometry'"),
    ("f.geojson", json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [
            [[0, 0], [5, 5], [0, 0]]]}}]}),
     r"f\.geojson'.*features\[0\] exterior has 2 distinct points; a polygon needs at least 3"),
    ("f.geojson", json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [
            [[0, 0], [5, 0], [5, 5]], [[1, 1], [2, 1]]]}}]}),
     r"features\[0\] hole 0 has 2 distinct points"),
    ("f.geojson", json.dumps({"type": "Feature", "properties": {},
                              "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [5, "x"],
                                                                                [5, 5]]]}}),
     r"features\[0\] exterior must list \(x, y\) points"),
    ("f.geojson", json.dumps({"type": "Feature", "properties": {},
                              "geometry": {"type": "Circle", "coordinates": [0, 0]}}),
     r"features\[0\] has geometry type 'Circle'; expected Polygon, MultiPolygon"),
    ("f.xml", "<ASAP_Annotations><Annotations><Annotation", r"f\.xml'.*not well-formed XML "
     r"\(line 1, column"),
    ("f.xml", '<ASAP_Annotations><Annotations><Annotation Name="A" Type="Polygon" '
     'PartOfGroup="t"><Coordinates><Coordinate Order="0" X="1" Y="2"/>'
     '<Coordinate Order="1" X="5" Y="2"/></Coordinates></Annotation></Annotations>'
     "</ASAP_Annotations>",
     r"annotation 0 \('A'\) has 2 distinct points; a polygon needs at least 3"),
    ("f.xml", '<ASAP_Annotations><Annotations><Annotation Name="A" Type="Polygon" '
     'PartOfGroup="t"><Coordinates><Coordinate Order="0" X="1"/></Coordinates></Annotation>'
     "</Annotations></ASAP_Annotations>",
     r"annotation 0 \('A'\) has a <Coordinate> without Y="),
    ("f.xml", '<ASAP_Annotations><Annotations><Annotation Name="A" Type="Blob" '
     'PartOfGroup="t"/></Annotations></ASAP_Annotations>',
     r"annotation 0 \('A'\) has Type='Blob'; expected one of Polygon, Spline, Rectangle"),
    ("f.xml", '<Annotations><Annotation Name="T"><Regions><Region Id="1"><Vertices>'
     '<Vertex X="a" Y="1"/></Vertices></Region></Regions></Annotation></Annotations>',
     r"annotation 0 \('T'\) region 0 has <Vertex X='a'>; expected a number"),
    ("f.xml", '<Annotations><Annotation Name="T"><Regions><Region Id="1"><Vertices/>'
     "</Region></Regions></Annotation></Annotations>",
     r"annotation 0 \('T'\) region 0 has no points; a polygon needs at least 3"),
    ("f.xml", "<Slide><Regions/></Slide>", r"expected an Aperio ImageScope XML file \(root "
     r"<Annotations>\); got <Slide>"),
    ("f.txt", "", r"f\.txt'.*expected GeoJSON \(QuPath\), ASAP XML or Aperio XML; got an empty"),
    ("f.geojson", json.dumps({"type": "Feature", "properties": {}, "geometry": {
        "type": "Polygon", "coordinates": [[[0, 0], [5, 0], [float("nan"), 5]]]}}),
     r"features\[0\] exterior has a non-finite coordinate"),
])
def test_malformed_files_are_one_line_naming_the_file_and_the_feature(tmp_path, name, text,
                                                                        match):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(AnnotationError, match=match):
        read_annotations(path)


def test_a_missing_file_or_a_folder_is_named(tmp_path):
    with pytest.raises(AnnotationError, match=r"annotations '.*nope\.xml' does not exist"):
        read_annotations(tmp_path / "nope.xml")
    with pytest.raises(AnnotationError, match=r"is a folder, not a file"):
        read_annotations(tmp_path)


points = st.floats(0, 1e5, allow_nan=False, allow_infinity=False)
polygons = st.lists(st.tuples(points, points), min_size=3, max_size=12, unique=True)
shapes = st.lists(st.tuples(st.sampled_from(["a", "b", "c d"]), st.lists(polygons, min_size=1,
                                                                         max_size=3)),
                  min_size=1, max_size=4)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(shapes)
def test_any_polygons_read_back_the_same_from_every_format(tmp_path, drawn):
    shapes = [(name, [(np.array(p), []) for p in polys]) for name, polys in drawn]
    folder = tmp_path / str(abs(hash(str(drawn))))
    found = {fmt: read_annotations(p) for fmt, p in write_all(folder, shapes).items()}
    want = sorted((name, np.array(p).tolist(), []) for name, polys in drawn for p in polys)
    for fmt, ann in found.items():
        assert _canonical(ann.regions) == sorted(want, key=lambda t: (t[0], t[1])), fmt
