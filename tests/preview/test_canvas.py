"""Pillow stays optional; the thumbnail level never is level 0 of a pyramid; display colours."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import gigapatch
from gigapatch import preview
from gigapatch.errors import GigapatchError, MissingExtraError
from gigapatch.preview.canvas import heat_colours, label_colour, label_name
from gigapatch.preview.overlay import thumbnail_level, thumbnail_shape, to_rgb8


def test_without_pillow_drawing_names_the_extra(monkeypatch, tmp_path):
    plan = gigapatch.grid(np.zeros((64, 64, 3), np.uint8), 32)
    monkeypatch.setitem(sys.modules, "PIL", None)
    for draw in (lambda: preview.plan(np.zeros((64, 64, 3), np.uint8), plan),
                 lambda: preview.sheet(tmp_path),
                 lambda: preview.store_boxes(tmp_path)):
        with pytest.raises(MissingExtraError,
                           match=r"needs Pillow.*pip install 'gigapatch\[preview\]'"):
            draw()
    assert issubclass(MissingExtraError, GigapatchError) and issubclass(MissingExtraError,
                                                                        ImportError)


def test_importing_gigapatch_and_its_preview_does_not_import_pillow():
    code = ("import sys; import gigapatch, gigapatch.preview, gigapatch.cli; "
            "print('PIL' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


def _fake(sides):
    return SimpleNamespace(levels=[SimpleNamespace(shape=(s, s)) for s in sides])


@given(
    st.lists(st.integers(1, 200_000), min_size=1, max_size=8).map(
        lambda v: sorted(set(v), reverse=True)),
    st.integers(64, 4000),
)
def test_the_thumbnail_level_is_coarse_enough_and_never_a_big_level_0(sides, width):
    k = thumbnail_level(_fake(sides), width)
    if len(sides) > 1 and sides[0] > 2 * width:
        assert k > 0  # a pyramid's big level 0 is never read
    if k > 1 or (k == 1 and sides[1] >= width):
        assert sides[k] >= width and (k + 1 == len(sides) or sides[k + 1] < width)
    if k == 0:
        assert len(sides) == 1 or sides[0] <= 2 * width


def test_thumbnail_shape_keeps_the_aspect_with_the_larger_side_width():
    assert thumbnail_shape((1800, 2600), 1600) == (1108, 1600)
    assert thumbnail_shape((2600, 1800), 1600) == (1600, 1108)
    assert thumbnail_shape((100, 100_000), 1600) == (2, 1600)


def test_display_colours_of_any_dtype_and_channel_count():
    grey = np.arange(16, dtype=np.uint8).reshape(4, 4, 1)
    assert np.array_equal(to_rgb8(grey), np.repeat(grey, 3, axis=2))
    rgba = np.full((2, 2, 4), 7, np.uint8)
    assert to_rgb8(rgba).shape == (2, 2, 3) and (to_rgb8(rgba) == 7).all()
    unit = np.linspace(0, 1, 12, dtype=np.float32).reshape(2, 2, 3)
    assert to_rgb8(unit)[0, 0, 0] == 0 and to_rgb8(unit)[1, 1, 2] == 255
    dim = np.linspace(100, 1100, 300).astype(np.uint16).reshape(10, 10, 3)
    out = to_rgb8(dim)  # stretched between its percentiles
    assert out.min() == 0 and out.max() == 255


def test_labels_have_distinct_colours_and_names():
    assert len({label_colour(k) for k in range(-1, 9)}) == 10
    assert label_name(1, ("normal", "tumour")) == "tumour"
    assert label_name(4, ("normal",)) == "label 4" and label_name(-1, ()) == "unlabelled"
    ramp = heat_colours(np.linspace(0, 1, 11)).astype(int)
    assert (np.diff(ramp[:, 1]) <= 0).all() and ramp[0, 1] > ramp[-1, 1] + 150  # yellow to red
