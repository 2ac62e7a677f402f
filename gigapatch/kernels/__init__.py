"""Kernels: pixel math on one block, on NumPy or CuPy (the only place CuPy is imported)."""

from gigapatch.kernels.affine import affine_gather, affine_matrices
from gigapatch.kernels.backend import DEVICES, array_module, resolve_device, to_host
from gigapatch.kernels.fused import augment, fused_gather
from gigapatch.kernels.gather import gather
from gigapatch.kernels.normalize import PRESETS, Normalization
from gigapatch.kernels.params import AugmentParams, draw_params
from gigapatch.kernels.resample import area_resample, source_size

__all__ = [
    "DEVICES",
    "PRESETS",
    "AugmentParams",
    "Normalization",
    "affine_gather",
    "affine_matrices",
    "area_resample",
    "array_module",
    "augment",
    "draw_params",
    "fused_gather",
    "gather",
    "resolve_device",
    "source_size",
    "to_host",
]
