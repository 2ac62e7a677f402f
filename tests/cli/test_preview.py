"""`gigapatch preview`: a plan drawn on a slide, a contact sheet and the boxes of a store."""

import numpy as np
from PIL import Image

from gigapatch.cli import main
from gigapatch.store import PatchStore


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_plan_sheet_and_store_boxes(square_path, tmp_path, capsys):
    png = tmp_path / "plan.png"
    code, out, err = run(capsys, "preview", square_path, "-o", png, "--size", 128, "--mpp", 0.5,
                         "--min-tissue", 0.3, "--width", 400)
    assert code == 0, err
    assert out.startswith(f"wrote {png} (400x") and "planned patches" in out
    with Image.open(png) as image:
        picture = np.asarray(image)
    assert picture.shape[1] == 400 and picture.shape[0] > 400  # title line above the thumbnail
    store_path = tmp_path / "s.zarr"
    assert run(capsys, "extract", square_path, "-o", store_path, "--size", 128, "--random", 12,
               "--seed", 0, "--quiet")[0] == 0
    code, out, err = run(capsys, "preview", store_path, "-o", tmp_path / "sheet.png", "--n", 6)
    assert code == 0, err
    assert "6 patches" in out
    with Image.open(tmp_path / "sheet.png") as sheet:
        assert sheet.width > 0 and sheet.height > 0
    name = PatchStore(store_path).sources[0]["name"]
    code, out, err = run(capsys, "preview", store_path, "-o", tmp_path / "boxes.png",
                         "--slide", name, "--width", 300)
    assert code == 0, err
    assert f"the patches of {name}" in out
    with Image.open(tmp_path / "boxes.png") as boxes:
        assert boxes.width == 300


def test_bad_preview_input_is_one_line(square_path, tmp_path, capsys):
    for argv, match in (
        ([square_path, "-o", tmp_path / "a.png"], "--size is required to preview a plan"),
        ([square_path, "-o", tmp_path / "a.jpg", "--size", 64], "must name a .png file"),
        ([square_path, "-o", tmp_path / "a.png", "--size", 64, "--mpp", 0.1],
         "is finer than level 0"),
    ):
        code, _, err = run(capsys, "preview", *argv)
        assert code == 2 and err.count("\n") == 1 and match in err and "Traceback" not in err
    assert not list(tmp_path.iterdir())
