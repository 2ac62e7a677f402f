"""Kernels: pixel math on one block, on NumPy or CuPy (the only place CuPy is imported)."""

from gigapatch.kernels.backend import DEVICES, array_module, resolve_device, to_host
from gigapatch.kernels.fused import augment, fused_gather
from gigapatch.kernels.gather import gather
from gigapatch.kernels.normalize import PRESETS, Normalization

__all__ = [
    "DEVICES",
    "PRESETS",
    "Normalization",
    "array_module",
    "augment",
    "fused_gather",
    "gather",
    "resolve_device",
    "to_host",
]
