"""docs/make_first_hour_figures.py draws the pictures of docs/first-hour.md."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_first_hour_figures_script_writes_its_pictures(tmp_path, capsys):
    Image = pytest.importorskip("PIL.Image")
    spec = importlib.util.spec_from_file_location(
        "make_first_hour_figures", ROOT / "docs" / "make_first_hour_figures.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main(["--out", str(tmp_path / "img"), "--width", "600"]) == 0
    names = sorted(p.name for p in (tmp_path / "img").iterdir())
    assert names == ["first-hour-plan.png", "first-hour-sheet.png", "first-hour-stored.png"]
    with Image.open(tmp_path / "img" / "first-hour-plan.png") as plan:
        assert plan.width == 600 and plan.height > 450  # a 3072x4096 slide: 450 rows + title
    with Image.open(tmp_path / "img" / "first-hour-sheet.png") as sheet:
        assert sheet.width == 6 + 8 * (128 + 6)  # 8 columns of 128-pixel cells
    assert capsys.readouterr().out.count("wrote ") == 3
