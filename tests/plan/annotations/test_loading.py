"""Which annotations belong to which slide, and the arguments that go with them."""

import numpy as np
import pytest

import gigapatch
from gigapatch.errors import AnnotationError, InvalidArgumentError
from gigapatch.plan.annotations import Annotations, Region, annotation_file, annotations_for
from gigapatch.sources.array import open_array
from gigapatch.synth import write_asap_xml, write_qupath_geojson
from tests.plan.annotations.reference import SHAPE0, SHAPES, write_all


def _slide(name="slide"):
    return open_array(np.zeros((*SHAPE0, 3), np.uint8), name=name)


def _square(x0, y0, x1, y1):
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float64)


def test_a_folder_holds_one_file_per_slide_name(tmp_path):
    write_qupath_geojson(tmp_path / "a.geojson", SHAPES)
    write_asap_xml(tmp_path / "b.ome.xml", SHAPES)  # for b.ome.tiff: tries b.ome first
    slides = [_slide("a.svs"), _slide("b.ome.tiff"), _slide("normal.svs")]
    found = annotations_for(tmp_path, slides)
    assert [f.format if f else None for f in found] == ["geojson", "asap", None]
    assert annotation_file(tmp_path, "a.svs") == tmp_path / "a.geojson"
    plan = gigapatch.grid(slides, 64, annotations=str(tmp_path), labels_from_annotations=True,
                          background="normal")
    assert set(np.unique(plan.slide)) == {0, 1, 2}
    assert (plan.label[plan.slide == 2] == plan.classes.index("normal")).all()
    assert plan.params()["annotations"][2] is None


def test_two_files_for_one_slide_are_refused(tmp_path):
    write_qupath_geojson(tmp_path / "a.geojson", SHAPES)
    write_asap_xml(tmp_path / "a.xml", SHAPES)
    with pytest.raises(AnnotationError, match=r"a\.geojson, a\.xml all fit slide 'a\.svs'"):
        annotations_for(tmp_path, [_slide("a.svs")])


def test_a_folder_without_a_file_for_any_slide_is_an_error(tmp_path):
    with pytest.raises(AnnotationError, match=r"no NAME\.geojson, NAME\.json or NAME\.xml for "
                                              r"any slide \('x\.svs'\)"):
        gigapatch.grid(_slide("x.svs"), 64, annotations=tmp_path)


def test_one_file_for_several_slides_is_ambiguous(tmp_path):
    path = write_all(tmp_path)["geojson"]
    with pytest.raises(InvalidArgumentError, match=r"annotations: one file for 2 slides"):
        gigapatch.grid([_slide(), _slide()], 64, annotations=path)
    plan = gigapatch.grid([_slide(), _slide()], 64, annotations=[path, None])
    assert set(np.unique(plan.slide)) == {0}
    with pytest.raises(InvalidArgumentError, match=r"one entry per slide \(2\) when a list; got 3"):
        gigapatch.grid([_slide(), _slide()], 64, annotations=[path, None, None])


def test_regions_in_memory_are_fingerprinted_by_content():
    regions = [Region("t", _square(100, 100, 400, 400))]
    a = gigapatch.grid(_slide(), 64, annotations=regions, labels_from_annotations=True)
    b = gigapatch.grid(_slide(), 64, annotations=Annotations.of(regions),
                       labels_from_annotations=True)
    assert a.params()["annotations"] == b.params()["annotations"]
    moved = [Region("t", _square(100, 100, 400, 401))]
    c = gigapatch.grid(_slide(), 64, annotations=moved, labels_from_annotations=True)
    assert c.params()["annotations"][0]["sha256"] != a.params()["annotations"][0]["sha256"]
    assert a.params()["annotations"][0]["format"] == "memory"


def test_a_vertex_outside_the_slide_names_the_file_and_the_feature(tmp_path):
    shapes = [("tumor", [(_square(10, 10, 2500, 30), [])])]
    path = write_qupath_geojson(tmp_path / "far.geojson", shapes)
    with pytest.raises(AnnotationError, match=r"far\.geojson': features\[0\] \('tumor'\) has a "
                                              r"point outside slide 'slide': x=2500, y=10 is "
                                              r"not within its 2400x1600"):
        gigapatch.grid(_slide(), 64, annotations=path)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"labels_from_annotations": True}, r"labels_from_annotations needs annotations"),
    ({"min_annotation": 0.3}, r"min_annotation needs annotations"),
    ({"background": "bg"}, r"background needs annotations"),
    ({"include_classes": ["a"]}, r"include_classes needs annotations"),
    ({"annotations": "A", "labels_from_annotations": 1},
     r"labels_from_annotations must be True or False; got 1"),
    ({"annotations": "A", "min_annotation": 0}, r"min_annotation must be a number in \(0, 1\]"),
    ({"annotations": "A", "min_annotation": 1.5}, r"min_annotation must be a number in \(0, 1\]"),
    ({"annotations": "A", "min_annotation": True}, r"min_annotation must be a number"),
    ({"annotations": "A", "background": "bg"}, r"background .* needs labels_from_annotations"),
    ({"annotations": "A", "labels_from_annotations": True, "background": ""},
     r"background must be a non-empty class name"),
    ({"annotations": "A", "include_classes": [3]},
     r"include_classes must be a class name or a list of class names; got \[3\]"),
    ({"annotations": "A", "include_classes": "tumor", "exclude_classes": ["tumor"]},
     r"include_classes and exclude_classes both name \['tumor'\]"),
    ({"annotations": "A", "include_classes": ["tumour"]},
     r"include_classes names \['tumour'\], which no annotation has; classes found: "
     r"\['stroma', 'tumor'\]"),
    ({"annotations": "A", "exclude_classes": ["stroma", "tumor"]},
     r"annotations: no region is left"),
    ({"annotations": "A", "labels_from_annotations": True, "labels": [0]},
     r"labels_from_annotations labels patches by regions; it excludes per-slide labels"),
    ({"annotations": 3}, r"annotations must be a file or folder path, an Annotations"),
])
def test_bad_arguments_name_themselves(tmp_path, kwargs, match):
    if kwargs.get("annotations") == "A":
        kwargs["annotations"] = write_all(tmp_path)["geojson"]
    with pytest.raises(InvalidArgumentError, match=match):
        gigapatch.grid(_slide(), 64, **kwargs)


def test_random_refuses_weights_with_annotations_and_says_when_regions_cannot_give_n(tmp_path):
    path = write_all(tmp_path)["geojson"]
    with pytest.raises(InvalidArgumentError, match=r"weights and annotations exclude each other"):
        gigapatch.random(_slide(), 64, 10, seed=0, annotations=path, weights="tissue")
    tiny = [Region("t", _square(100, 100, 110, 110))]
    with pytest.raises(InvalidArgumentError, match=r"n: could draw only 0 of 10 patches of class "
                                                   r"'t' .* from 'slide'; lower n"):
        gigapatch.random(_slide(), 64, 10, seed=0, annotations=tiny,
                         labels_from_annotations=True, balance=True)
    # one position only is wholly inside this region: 5 distinct patches cannot be drawn
    with pytest.raises(InvalidArgumentError, match=r"could draw only 1 of 5 patches whose centre "
                                                   r"lies in a region and 1 of whose footprint"):
        gigapatch.random(_slide(), 64, 5, seed=0, replace=False, min_annotation=1,
                         annotations=[Region("t", _square(0, 0, 64, 64))])
