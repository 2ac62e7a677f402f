"""On-the-fly preprocessing and augmentation of uint8 batches, through gigapatch's kernels.

A batch read on the host goes, on the GPU, through one host→device copy of
its uint8 bytes and then the kernels: an optional affine resample (rotation,
shear, zoom, shift; bilinear, per patch), then one fused pass of flip/quarter
turn, brightness/contrast jitter, cast and normalization
(:func:`gigapatch.kernels.fused_gather` on the stack, as ``augment`` does; one CUDA
launch). On the CPU the same
kernels run on NumPy with the same results. Parameters are drawn on the host
from a seeded generator (:func:`gigapatch.kernels.draw_params`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, get_args

import numpy as np
import numpy.typing as npt

from gigapatch.errors import InvalidArgumentError, check_choice, check_flag, check_number
from gigapatch.kernels import (
    affine_gather,
    array_module,
    draw_params,
    fused_gather,
    resolve_device,
)
from gigapatch.kernels.backend import Device, astype, namespace_of
from gigapatch.kernels.fused import host_dtype
from gigapatch.kernels.normalize import Layout, Normalize, parse_normalize
from gigapatch.kernels.normalize import OutputDtype as OutputDType

__all__ = ["Device", "Layout", "OutputDType", "Preprocess", "check_preprocess"]


def _to_device(batch: npt.NDArray[Any], device: str) -> Any:
    """``batch`` on ``device``: the host array itself, or one host→device copy (CuPy)."""
    if device == "cpu":
        return batch
    return array_module("gpu").asarray(batch)


@dataclass(frozen=True)
class Preprocess:
    """What to do to each uint8 batch before training; picklable, so workers can run it.

    Parameters
    ----------
    normalize
        None (keep uint8), a preset (``"xception"``: x/127.5 − 1, ``"imagenet"``,
        ``"unit"``: x/255) or a :class:`~gigapatch.kernels.Normalization`.
    dtype
        ``"float32"`` or ``"float16"`` when normalizing.
    layout
        ``"hwc"`` (Keras) or ``"chw"`` (PyTorch).
    dihedral
        A random one of the 8 flips/quarter turns per patch; on patches that
        are not square, one of the 4 flips/half turns.
    brightness, contrast
        Jitter ranges (see :func:`~gigapatch.kernels.draw_params`); need ``normalize``.
    rotation, shear, zoom, shift
        Affine augmentation ranges (degrees, degrees, (low, high), pixels);
        resampled bilinearly inside each patch, ``fill`` outside it.
    fill
        Value of pixels an affine transform brings in from outside the patch.
    device
        ``"cpu"``, ``"gpu"`` or ``"auto"``: where the kernels run; resolved at
        the first call in each process.
    """

    normalize: Normalize = None
    dtype: OutputDType = "float32"
    layout: Layout = "hwc"
    dihedral: bool = False
    brightness: float = 0.0
    contrast: float = 0.0
    rotation: float = 0.0
    shear: float = 0.0
    zoom: tuple[float, float] = (1.0, 1.0)
    shift: float = 0.0
    fill: float = 0
    device: Device = "cpu"

    def __post_init__(self) -> None:
        if (self.brightness or self.contrast) and self.normalize is None:
            raise InvalidArgumentError(
                "brightness/contrast jitter needs normalize (a preset such as 'xception'); got None"
            )
        if self.device not in ("auto", "cpu", "gpu"):
            raise InvalidArgumentError(
                f"device must be one of auto, cpu, gpu; got {self.device!r}"
            )
        check_choice("layout", self.layout, get_args(Layout))
        check_choice("dtype", self.dtype, get_args(OutputDType))
        check_flag("dihedral", self.dihedral)
        parse_normalize(self.normalize)
        check_number("fill", self.fill)
        # draws nothing; checks the ranges once, here, rather than in a worker
        draw_params(0, 0, **self._ranges())

    def _ranges(self) -> dict[str, Any]:
        return {
            "dihedral": self.dihedral, "rotation": self.rotation, "shear": self.shear,
            "zoom": self.zoom, "shift": self.shift, "brightness": self.brightness,
            "contrast": self.contrast,
        }

    def output_spec(
        self, shape: tuple[int, ...], dtype: npt.DTypeLike
    ) -> tuple[tuple[int, ...], np.dtype[Any]]:
        """Shape and dtype of the output for a batch of ``shape`` and ``dtype``."""
        n, h, w, c = shape
        out_dtype = np.dtype(dtype) if self.normalize is None else np.dtype(self.dtype)
        return ((n, h, w, c) if self.layout == "hwc" else (n, c, h, w)), out_dtype

    def __call__(
        self, batch: npt.NDArray[Any], seed: int | np.random.Generator | None = None, *,
        out: npt.NDArray[Any] | None = None,
    ) -> Any:
        """Preprocess a (n, h, w, C) host batch; returns a NumPy or (on the GPU) CuPy array.

        ``seed`` draws this batch's augmentation parameters (same seed, same result).
        ``out``: an optional host array of :meth:`output_spec` to write into
        (used on the CPU only; a batch that needs no change is returned as is).
        """
        if batch.ndim != 4:
            raise InvalidArgumentError(f"batch must be (n, h, w, C); got shape {batch.shape}")
        device = resolve_device(self.device)
        n, h, w, _ = batch.shape
        params = draw_params(n, seed, **self._ranges())
        ops = params.dihedral
        if ops is not None and h != w:  # quarter turns need squares: flips only (0, 2, 4, 6)
            ops = ops & ~np.int32(1)
        x = _to_device(np.ascontiguousarray(batch), device)
        if params.affine is not None:
            x = self._affine(x, params.affine, (h, w))
        if self.normalize is None and self.layout == "hwc" and ops is None:
            return x
        # what kernels.augment does, with xp.reshape so any array namespace works
        block = namespace_of(x).reshape(x, (n * h, w, x.shape[3]))
        return fused_gather(
            block, np.arange(n, dtype=np.int64) * h, np.zeros(n, np.int64), (h, w), dihedral=ops,
            jitter=params.jitter, normalize=self.normalize,
            dtype=self.dtype if self.normalize is not None else None, layout=self.layout,
            out=out if isinstance(x, np.ndarray) else None,
        )

    def _affine(self, x: Any, matrices: npt.NDArray[np.float64], size: tuple[int, int]) -> Any:
        """Resample each patch through its matrix, back to the batch's dtype (rounded)."""
        xp = namespace_of(x)
        dtype = host_dtype(x.dtype)
        out = xp.empty_like(x)
        for k in range(len(matrices)):
            moved = affine_gather(x[k, ...], [0], [0], size, matrices[k : k + 1], fill=self.fill)
            if np.issubdtype(dtype, np.integer):
                info = np.iinfo(dtype)
                moved = xp.clip(xp.round(moved), float(info.min), float(info.max))
            out[k, ...] = astype(xp, moved[0, ...], x.dtype)
        return out


def check_preprocess(preprocess: object) -> Preprocess | None:
    """``preprocess`` after checking it is a :class:`Preprocess` or None."""
    if preprocess is not None and not isinstance(preprocess, Preprocess):
        raise InvalidArgumentError(
            f"preprocess must be a gigapatch.feed.Preprocess or None; got {preprocess!r}")
    return preprocess
