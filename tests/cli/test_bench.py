"""`gigapatch bench` and :func:`gigapatch.engine.benchmark.benchmark` on a small synthetic slide."""

import json
import subprocess
import sys

import pytest

from gigapatch.cli import main
from gigapatch.engine.benchmark import benchmark

METHODS = ["decode limit", "gigapatch -> memory", "gigapatch -> store",
           "tiffslide read_region", "openslide read_region"]


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_library_times_every_method(square_path, tmp_path):
    result = benchmark(square_path, size=128, random=60, workers=2, loop_patches=12,
                       tmp=str(tmp_path))
    assert list(tmp_path.iterdir()) == []  # the temporary store is gone
    assert [r.method for r in result.rows] == METHODS
    assert (result.patches, result.patch_shape, result.level, result.factor) == (
        60, (128, 128, 3), 0, 1.0)
    assert result.plan == "random of 128x128, at level 0, seed 0" and result.tiles > 0
    limit, tiffslide = result.rows[0], result.rows[3]
    assert [r.patches for r in result.rows] == [60, 60, 60, 12, 12]
    for r in result.rows:
        assert r.seconds is not None and r.seconds > 0 and r.note == ""
        assert r.patches_per_second == pytest.approx(r.patches / r.seconds)
        assert r.megabytes_per_second == pytest.approx(r.patches_per_second * 128 * 128 * 3 / 1e6)
        assert r.limit_fraction == pytest.approx(r.patches_per_second / limit.patches_per_second)
        assert r.vs_tiffslide == pytest.approx(
            r.patches_per_second / tiffslide.patches_per_second)
    assert limit.limit_fraction == 1.0 and tiffslide.vs_tiffslide == 1.0


def test_resampled_patches_compare_with_read_region_and_inter_area(square_path, monkeypatch):
    pytest.importorskip("cv2")
    monkeypatch.setitem(sys.modules, "openslide", None)
    result = benchmark(square_path, size=64, random=None, mpp=1.0, workers=1, loop_patches=5)
    assert (result.level, result.level_mpp, result.patch_mpp) == (1, 1.0, 1.0)
    result = benchmark(square_path, size=64, random=20, mpp=0.5, workers=1, loop_patches=5)
    assert (result.level, result.factor, result.patch_mpp) == (0, 2.0, 0.5)
    names = [r.method for r in result.rows]
    assert names[3:] == ["tiffslide read_region + INTER_AREA",
                         "openslide read_region + INTER_AREA"]
    assert result.rows[3].seconds is not None
    assert result.rows[4].seconds is None and result.rows[4].note.startswith("not installed")


def test_the_command_prints_a_table(square_path, capsys):
    code, out, err = run(capsys, "bench", square_path, "--random", 40, "--size", 128,
                         "--workers", 2, "--loop-patches", 8)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith(f"{square_path}: 40 patches of 128x128x3 (random of 128x128")
    header = next(k for k, line in enumerate(lines) if line.startswith("method"))
    assert lines[header].split() == ["method", "patches", "patches/s", "MB/s", "of", "limit",
                                     "x", "tiffslide"]
    rows = lines[header + 1 :]
    assert rows[0].startswith("decode limit (") and " tiles)" in rows[0]
    assert [r.split("  ")[0] for r in rows[1:]] == METHODS[1:]
    assert rows[0].split()[-3:-1] == ["100", "%"] and rows[0].endswith("x")
    assert rows[3].split()[-1] == "1.0x"
    assert "not installed" not in out


def test_without_tiffslide_the_table_says_so(square_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tiffslide", None)
    code, out, err = run(capsys, "bench", square_path, "--random", 20, "--size", 128,
                         "--workers", 1, "--loop-patches", 4)
    assert code == 0, err
    line = next(line for line in out.splitlines() if line.startswith("tiffslide"))
    assert line.split("  ")[-1] == "not installed (pip install tiffslide)"
    assert "no tiffslide loop to compare with" in out
    openslide = next(line for line in out.splitlines() if line.startswith("openslide"))
    assert openslide.split()[-2:] == ["%", "-"]  # measured, nothing to compare with


def test_json_for_scripts(square_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tiffslide", None)
    code, out, _ = run(capsys, "bench", square_path, "--random", 20, "--size", 128,
                       "--workers", 1, "--loop-patches", 4, "--json")
    assert code == 0
    data = json.loads(out)
    assert data["patches"] == 20 and data["patch_shape"] == [128, 128, 3]
    assert [r["method"] for r in data["rows"]] == METHODS
    assert data["rows"][3]["seconds"] is None
    assert data["rows"][3]["note"] == "not installed (pip install tiffslide)"
    assert all(r["vs_tiffslide"] is None for r in data["rows"])
    assert data["rows"][1]["patches_per_second"] > 0


@pytest.mark.parametrize(
    ("args", "code", "match"),
    [
        (["{missing}"], 1, "missing.svs' does not exist"),
        (["{slide}", "--size", "0"], 2, "argument --size: expected a positive integer, got '0'"),
        (["{slide}", "--random", "0"], 2, "argument --random: expected a positive integer"),
        (["{slide}", "--size", "4096"], 2, "size 4096x4096 does not fit in 'square.svs'"),
        (["{slide}", "--random", "5", "--grid"], 2, "not allowed with argument"),
        (["{text}"], 1, "notes.svs' is not a TIFF image"),
    ],
)
def test_bad_input_is_one_line(square_path, tmp_path, capsys, args, code, match):
    (tmp_path / "notes.svs").write_text("hello")
    names = {"missing": tmp_path / "missing.svs", "slide": square_path,
             "text": tmp_path / "notes.svs"}
    result, out, err = run(capsys, "bench", *[a.format(**names) for a in args])
    assert result == code and out == ""
    assert err.count("\n") == 1 and match in err and err.startswith("gigapatch bench: error:")


def test_the_console_script_has_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "gigapatch.cli", "bench",
                           str(tmp_path / "nope.svs")], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    missing = tmp_path / "nope.svs"
    assert proc.stderr.strip() == f"gigapatch bench: error: '{missing}' does not exist"


def test_the_library_refuses_a_bad_codec_before_reading(tmp_path):
    from gigapatch.errors import InvalidArgumentError

    with pytest.raises(InvalidArgumentError, match=r"codec must be one of .*; got 'jpeg:abc'"):
        benchmark(tmp_path / "missing.svs", codec="jpeg:abc")  # refused before the file
