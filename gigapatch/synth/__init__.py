"""Synthetic whole-slide images: realistic enough to benchmark and test on.

:func:`synthesize` writes an Aperio-SVS-style pyramidal TIFF
(:mod:`gigapatch.synth.tiff`); :func:`render` gives the same picture in memory
(:mod:`gigapatch.synth.texture`). The picture is a pure function of position
and seed: the same seed always gives the same pixels and the same file bytes.
:mod:`gigapatch.synth.annotations` writes regions as QuPath, ASAP and Aperio
ImageScope save them. :func:`damage_tile` breaks one tile of such a file the
ways real files break (:mod:`gigapatch.synth.damage`), for tests.
"""

from gigapatch.synth.annotations import write_aperio_xml, write_asap_xml, write_qupath_geojson
from gigapatch.synth.damage import DAMAGES, damage_tile
from gigapatch.synth.texture import TISSUE_FRACTION, render
from gigapatch.synth.tiff import pyramid_shapes, synthesize

__all__ = [
    "DAMAGES", "TISSUE_FRACTION", "damage_tile", "pyramid_shapes", "render", "synthesize",
    "write_aperio_xml", "write_asap_xml", "write_qupath_geojson",
]
