"""The one backend seam: which array library (NumPy or CuPy) pixel math runs on.

CuPy is imported here only, lazily, the first time a GPU is asked for.
"""

from __future__ import annotations

import functools
from types import ModuleType
from typing import Any

import numpy as np

from gigapatch.errors import DeviceError, InvalidArgumentError

__all__ = ["DEVICES", "array_module", "astype", "namespace_of", "resolve_device", "to_host"]

DEVICES = ("auto", "cpu", "gpu")


@functools.cache
def _cupy() -> ModuleType | None:
    """CuPy if it imports and a CUDA device is present, else None."""
    try:
        import cupy
    except ImportError:
        return None
    try:
        return cupy if cupy.cuda.is_available() else None
    except Exception:  # a broken driver install is "no device" for auto
        return None


def resolve_device(device: str = "auto") -> str:
    """Resolve ``"auto" | "cpu" | "gpu"`` to ``"cpu"`` or ``"gpu"``.

    ``auto`` picks the GPU only when CuPy imports *and* a CUDA device is
    present. Asking for ``gpu`` without one is an error naming the extra.
    """
    if device not in DEVICES:
        raise InvalidArgumentError(f"device must be one of {', '.join(DEVICES)}; got {device!r}")
    if device == "cpu":
        return "cpu"
    available = _cupy() is not None
    if device == "gpu" and not available:
        raise DeviceError(
            "device 'gpu' needs CuPy and a CUDA device: install the extra with "
            "`pip install 'gigapatch[gpu]'` on a machine with an NVIDIA GPU, or use device='cpu'"
        )
    return "gpu" if available else "cpu"


def array_module(device: str) -> ModuleType:
    """The array namespace (``numpy`` or ``cupy``) of a resolved device."""
    if device == "gpu":
        cupy = _cupy()
        if cupy is None:
            resolve_device("gpu")  # raises the explanatory error
        return cupy
    return np


def namespace_of(array: Any) -> ModuleType:
    """The namespace of ``array``: NumPy, CuPy's main namespace, or ``__array_namespace__()``."""
    if isinstance(array, np.ndarray):
        return np
    if type(array).__module__.split(".")[0] == "cupy":
        return array_module("gpu")
    return array.__array_namespace__()


def astype(xp: ModuleType, array: Any, dtype: Any) -> Any:
    """``array`` cast to ``dtype``: the array's own method where it has one (NumPy, CuPy)."""
    method = getattr(array, "astype", None)
    return method(dtype) if method is not None else xp.astype(array, dtype)


def to_host(array: Any) -> np.ndarray:
    """Return ``array`` as a NumPy array (one device→host copy for CuPy arrays)."""
    if isinstance(array, np.ndarray):
        return array
    get = getattr(array, "get", None)
    return get() if get is not None else np.asarray(array)
