"""The one backend seam: which array library (NumPy or CuPy) pixel math runs on.

CuPy is imported here only, lazily, the first time a GPU is asked for.
"""

from __future__ import annotations

import functools
from types import ModuleType
from typing import Any, Literal, TypeAlias, get_args

import numpy as np
import numpy.typing as npt

from gigapatch.errors import DeviceError, InvalidArgumentError

__all__ = [
    "DEVICES", "Array", "Device", "ResolvedDevice", "array_module", "astype", "namespace_of",
    "resolve_device", "to_host",
]

#: Where pixel math runs: ``"auto"`` picks the GPU when one is usable.
Device: TypeAlias = Literal["auto", "cpu", "gpu"]
#: A device after :func:`resolve_device`.
ResolvedDevice: TypeAlias = Literal["cpu", "gpu"]
DEVICES: tuple[Device, ...] = get_args(Device)
#: An image block or patch stack of any namespace the kernels take: NumPy, CuPy or an
#: array-API array. CuPy ships no annotations and the array API standard no static type, so
#: this is ``Any`` under a name that says what is meant.
Array: TypeAlias = Any


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


def resolve_device(device: Device = "auto") -> ResolvedDevice:
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
        raise _no_gpu()
    return "gpu" if available else "cpu"


def _no_gpu() -> DeviceError:
    return DeviceError(
        "device 'gpu' needs CuPy and a CUDA device: install the extra with "
        "`pip install 'gigapatch[gpu]'` on a machine with an NVIDIA GPU, or use device='cpu' "
        "(--device cpu)"
    )


def array_module(device: str) -> ModuleType:
    """The array namespace (``numpy`` or ``cupy``) of a resolved device."""
    if device == "gpu":
        cupy = _cupy()
        if cupy is None:
            raise _no_gpu()
        return cupy
    return np


def namespace_of(array: Array) -> ModuleType:
    """The namespace of ``array``: NumPy, CuPy's main namespace, or ``__array_namespace__()``."""
    if isinstance(array, np.ndarray):
        return np
    if type(array).__module__.split(".")[0] == "cupy":
        return array_module("gpu")
    namespace: ModuleType = array.__array_namespace__()
    return namespace


def astype(xp: ModuleType, array: Array, dtype: Any) -> Array:
    """``array`` cast to ``dtype``: the array's own method where it has one (NumPy, CuPy)."""
    method = getattr(array, "astype", None)
    return method(dtype) if method is not None else xp.astype(array, dtype)


def to_host(array: Array) -> npt.NDArray[Any]:
    """Return ``array`` as a NumPy array (one device→host copy for CuPy arrays)."""
    if isinstance(array, np.ndarray):
        return array
    get = getattr(array, "get", None)
    return np.asarray(get() if get is not None else array)
