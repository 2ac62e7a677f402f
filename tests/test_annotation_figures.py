"""docs/make_annotation_figures.py draws the picture of docs/annotations.md."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_annotation_figure_script_draws_regions_and_patches(tmp_path, capsys):
    Image = pytest.importorskip("PIL.Image")
    spec = importlib.util.spec_from_file_location(
        "make_annotation_figures", ROOT / "docs" / "make_annotation_figures.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main(["--out", str(tmp_path / "img"), "--width", "500"]) == 0
    with Image.open(tmp_path / "img" / "annotations-plan.png") as picture:
        rgb = np.asarray(picture.convert("RGB"))
    assert rgb.shape[1] == 500 and rgb.shape[0] > 375  # a 3072x4096 slide: 375 rows + title
    from gigapatch.preview.canvas import LABEL_COLOURS

    for colour in LABEL_COLOURS[:4]:  # necrosis, normal, stroma, tumor: regions and boxes
        assert (rgb == colour).all(axis=2).sum() > 100
    assert "wrote " in capsys.readouterr().out
