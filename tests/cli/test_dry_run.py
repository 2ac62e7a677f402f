"""`gigapatch extract --dry-run`: the table of the plan, the estimates, and nothing written."""

import numpy as np
import pytest

import gigapatch
from gigapatch.cli import main
from gigapatch.cli.tables import format_table, human_seconds
from gigapatch.plan.labels import find_slides
from gigapatch.synth import synthesize


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _files(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.fixture(scope="module")
def classes(tmp_path_factory):
    root = tmp_path_factory.mktemp("classes")
    for name, seed in (("tumour", 4), ("normal", 5)):
        (root / name).mkdir()
        synthesize(root / name / f"{name}-slide.svs", 1024, seed=seed)
    return root


def _table(out):
    """Rows of the per-slide table: {first cell: the other cells}."""
    lines = out.splitlines()
    start = next(k for k, line in enumerate(lines) if line.startswith("slide "))
    rows = {}
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        cells = line.split()
        rows[cells[0]] = cells[1:]
    return lines[start].split(), rows


def test_a_dry_run_prints_the_plan_and_writes_nothing(classes, tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("keep")
    before = _files(tmp_path)
    out_path = tmp_path / "patches.zarr"
    code, out, err = run(capsys, "extract", classes, "--labels-from-dirs", "-o", out_path,
                         "--size", 128, "--mpp", 0.5, "--min-tissue", 0.3, "--workers", 1,
                         "--dry-run")
    assert code == 0, err
    assert _files(tmp_path) == before and not out_path.exists()
    found = find_slides(classes, labels_from_dirs=True)
    plan = gigapatch.grid(found, 128, mpp=0.5, min_tissue=0.3)
    counts = np.bincount(plan.slide, minlength=2)
    header, rows = _table(out)
    assert header == ["slide", "class", "level", "level", "mpp", "patch", "mpp", "factor",
                      "tissue", "patches"]
    assert rows["normal-slide.svs"][:5] == ["normal", "0", "0.25", "0.5", "2"]
    assert rows["tumour-slide.svs"][:5] == ["tumour", "0", "0.25", "0.5", "2"]
    assert rows["normal-slide.svs"][-1] == f"{counts[0]:,}"
    assert rows["tumour-slide.svs"][-1] == f"{counts[1]:,}"
    assert rows["total"] == [f"{len(plan):,}"]
    assert rows["normal-slide.svs"][5].endswith("%")
    assert f"classes normal {counts[0]:,}, tumour {counts[1]:,}" in out
    assert f"patches {len(plan):,} of 128x128x3 uint8 from 2 slide(s)" in out
    assert "dry run: nothing written (would write" in out
    assert "store   ~" in out and "(estimate: lz4" in out
    assert "time    ~" in out and "incl. writing" in out
    assert "sampled patches, measured on this machine in" in out and "with warm-up runs" in out


def test_a_dry_run_needs_no_output_and_warns_of_an_existing_one(square_path, tmp_path, capsys):
    code, out, _ = run(capsys, "extract", square_path, "--size", 512, "--dry-run")
    assert code == 0
    _, rows = _table(out)
    assert rows["square.svs"] == ["0", "0.25", "0.25", "1", "-", "16"]
    assert "no output given" in out and "writing not timed" in out
    (tmp_path / "old.zarr").mkdir()
    code, out, _ = run(capsys, "extract", square_path, "-o", tmp_path / "old.zarr", "--size",
                       512, "--dry-run")
    assert code == 0 and "old.zarr exists: the run needs --overwrite or --resume" in out
    assert _files(tmp_path) == ["old.zarr"]


def test_without_dry_run_the_output_is_required(square_path, capsys):
    code, out, err = run(capsys, "extract", square_path, "--size", 512)
    assert code == 2 and out == ""
    assert err == ("gigapatch extract: error: the following arguments are required: "
                   "-o/--output (unless --dry-run)\n")


def test_an_empty_plan_has_nothing_to_write(tmp_path, capsys):
    blank = tmp_path / "blank.tif"
    import tifffile

    tifffile.imwrite(blank, np.full((256, 256, 3), 255, np.uint8))
    code, out, _ = run(capsys, "extract", blank, "--size", 64, "--min-tissue", 0.5, "--dry-run")
    assert code == 0 and "nothing to write: the plan holds no patches" in out
    assert _table(out)[1]["total"] == ["0"]


def test_tables_and_durations():
    assert format_table(["a", "bb"], [["xyz", "1"], ["q", "22"]]) == [
        "a    bb", "xyz   1", "q    22"]
    assert [human_seconds(s) for s in (0.04, 9.5, 61, 89.6 * 60, 5400, 86399)] == [
        "0.0 s", "9.5 s", "61 s", "90 min", "1 h 30 min", "24 h 00 min"]
