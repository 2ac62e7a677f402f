"""Kernels: pixel math on one block, on NumPy or CuPy (the only place CuPy is imported)."""

from gigapatch.kernels.backend import DEVICES, array_module, resolve_device, to_host
from gigapatch.kernels.gather import gather

__all__ = ["DEVICES", "array_module", "gather", "resolve_device", "to_host"]
