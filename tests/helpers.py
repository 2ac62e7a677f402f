"""Shared test helpers: the references the tests compare gigapatch with, and small fixtures."""

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


# ---------------------------------------------------------------- kernel references
# Plain NumPy, written from the documented definitions: no gigapatch code, so a test that
# compares a kernel with them compares it with something it does not share.

_IMAGENET_MEAN = np.array([0.485, 0.456, 0.406]) * 255
_IMAGENET_STD = np.array([0.229, 0.224, 0.225]) * 255
PRESET_FORMULAS = {  # name: (divisor, offset) of y = x / divisor + offset
    "xception": ([127.5], [-1.0]),  # Keras' x / 127.5 - 1
    "unit": ([255.0], [0.0]),  # torchvision's x / 255
    "imagenet": (list(_IMAGENET_STD), list(-_IMAGENET_MEAN / _IMAGENET_STD)),  # (x - mean) / std
}


def padded_patches(block, ys, xs, size, dilation=(1, 1), fill=0) -> np.ndarray:
    """Gather by definition: pad the block with ``fill`` far enough, then one strided slice each."""
    (h, w), (ry, rx) = size, dilation
    span = ((h - 1) * ry + 1, (w - 1) * rx + 1)
    pad = max([abs(int(v)) for v in [*ys, *xs]], default=0) + max(span)
    big = np.full((block.shape[0] + 2 * pad, block.shape[1] + 2 * pad, block.shape[2]), fill,
                  block.dtype)
    big[pad:-pad, pad:-pad] = block
    return np.stack([
        big[y + pad : y + pad + span[0] : ry, x + pad : x + pad + span[1] : rx]
        for y, x in zip(ys, xs, strict=True)
    ])


def plain_augment(patches, dihedral=None, jitter=None, normalize=None, dtype="float32",
                  layout="hwc") -> np.ndarray:
    """Per patch: ``np.rot90`` by ``op % 4``, a left-right flip when ``op >= 4``; with a
    normalization, ``clip(x * c + b)`` to an integer source's range, then
    ``x / divisor + offset``, each in float32; then the layout."""
    out = []
    for k, p in enumerate(patches):
        if dihedral is not None:
            p = np.rot90(p, dihedral[k] % 4)
            p = p[:, ::-1] if dihedral[k] >= 4 else p
        if normalize is not None:
            divisor, offset = (np.asarray(v, np.float32) for v in (
                PRESET_FORMULAS[normalize] if isinstance(normalize, str) else normalize))
            x = p.astype(np.float32)
            if jitter is not None:
                x = x * np.float32(jitter[k][0]) + np.float32(jitter[k][1])
                if patches.dtype.kind in "ui":
                    info = np.iinfo(patches.dtype)
                    x = np.clip(x, np.float32(info.min), np.float32(info.max))
            p = (x / divisor + offset).astype(dtype)
        out.append(p.transpose(2, 0, 1) if layout == "chw" else p)
    return np.stack(out)
