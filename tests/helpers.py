"""Reference readers the tests compare gigapatch with."""

from __future__ import annotations

import numpy as np
import pytest


def openslide_region(path, y, x, h, w, level=0) -> np.ndarray:
    """OpenSlide's read_region at level-0 (y, x), as an (h, w, 3) RGB array."""
    openslide = pytest.importorskip("openslide")
    with openslide.OpenSlide(str(path)) as osr:
        return np.asarray(osr.read_region((int(x), int(y)), level, (int(w), int(h))).convert("RGB"))


def gpu_cupy():
    """CuPy if it imports *and* a CUDA device is present, else None (CuPy imports without one)."""
    try:
        import cupy
    except ImportError:
        return None
    try:
        return cupy if cupy.cuda.is_available() else None
    except Exception:  # a broken driver install counts as no device
        return None
