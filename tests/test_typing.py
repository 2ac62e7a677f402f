"""The package's annotations: mypy --strict clean, shipped (PEP 561), and Literal aliases that
name exactly the values the runtime checks accept."""

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import get_args

import pytest

from gigapatch.kernels import backend, normalize
from gigapatch.plan import core, masks

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_mypy_strict_is_clean():
    mypy = shutil.which("mypy", path=str(Path(sys.executable).parent)) or shutil.which("mypy")
    if mypy is None:
        pytest.skip("mypy is not installed (pip install -e '.[test]')")
    proc = subprocess.run(
        [mypy, "--strict", "--no-error-summary"],  # pyproject's [tool.mypy] names the package
        cwd=ROOT, capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_py_typed_ships_in_the_wheel():
    assert (ROOT / "gigapatch" / "py.typed").is_file()
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "py.typed" in config["tool"]["setuptools"]["package-data"]["gigapatch"]


@pytest.mark.parametrize(
    ("alias", "runtime"),
    [
        (backend.Device, backend.DEVICES),
        (normalize.Layout, normalize.LAYOUTS),
        (normalize.OutputDtype, normalize.OUTPUT_DTYPES),
        (normalize.Preset, tuple(normalize.PRESETS)),
        (core.Padding, core.PADDINGS),
        (masks.TissueMethod, tuple(masks._FLOOR)),
    ],
    ids=["Device", "Layout", "OutputDtype", "Preset", "Padding", "TissueMethod"],
)
def test_literal_aliases_name_what_the_runtime_accepts(alias, runtime):
    assert get_args(alias) == tuple(runtime)
