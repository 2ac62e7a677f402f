"""Regions drawn by pathologists: QuPath GeoJSON, ASAP (CAMELYON) XML and Aperio XML.

:func:`read_annotations` reads a file into :class:`Annotations` (a list of
:class:`Region`: class name, exterior ring, holes, level-0 (x, y) as the
files store them). The planners take them through ``annotations=``: as a
mask (patches inside regions), or with ``labels_from_annotations=True`` as
labels (each patch labelled by the class covering most of its footprint);
see :mod:`gigapatch.plan.annotations.planning` and ``docs/annotations.md``.
"""

from gigapatch.plan.annotations.loading import (
    ANNOTATION_SUFFIXES,
    AnnotationSpec,
    annotation_file,
    annotations_for,
    read_annotations,
)
from gigapatch.plan.annotations.planning import MIN_ANNOTATION
from gigapatch.plan.annotations.regions import UNCLASSIFIED, Annotations, Region

__all__ = [
    "ANNOTATION_SUFFIXES",
    "MIN_ANNOTATION",
    "UNCLASSIFIED",
    "AnnotationSpec",
    "Annotations",
    "Region",
    "annotation_file",
    "annotations_for",
    "read_annotations",
]
