"""Kernels: pixel math on one block, on NumPy or CuPy (the only place CuPy is imported)."""

from gigapatch.kernels.affine import affine_gather, affine_matrices
from gigapatch.kernels.backend import (
    DEVICES,
    Array,
    Device,
    ResolvedDevice,
    array_module,
    resolve_device,
    to_host,
)
from gigapatch.kernels.fused import augment, fused_gather
from gigapatch.kernels.gather import gather
from gigapatch.kernels.normalize import (
    PRESETS,
    Layout,
    Normalization,
    Normalize,
    OutputDtype,
    Preset,
)
from gigapatch.kernels.params import AugmentParams, draw_params
from gigapatch.kernels.resample import area_resample

__all__ = [
    "DEVICES",
    "PRESETS",
    "Array",
    "AugmentParams",
    "Device",
    "Layout",
    "Normalization",
    "Normalize",
    "OutputDtype",
    "Preset",
    "ResolvedDevice",
    "affine_gather",
    "area_resample",
    "affine_matrices",
    "array_module",
    "augment",
    "draw_params",
    "fused_gather",
    "gather",
    "resolve_device",
    "to_host",
]
