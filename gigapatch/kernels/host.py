"""The NumPy normalization of the fused pipeline, one patch at a time in cache-sized steps.

Same float32 operations as the CUDA core and the array-API path
(``x / divisor + offset``, jitter first), arranged for NumPy's loops: each patch
is seen as ``h`` rows of ``w * C`` values with the per-channel constants tiled
along a row, so the inner loops are long, and the float32 intermediate of
one patch stays in cache.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from gigapatch.kernels.normalize import Layout, Normalization

__all__ = ["HostNormalizer"]


class HostNormalizer:
    """Writes ``normalize(jitter(patch))`` into ``out[k]`` for (h, w, C) patch views.

    Parameters
    ----------
    norm
        The normalization.
    shape
        (h, w, C) of one patch.
    dtype
        Source dtype.
    out
        The (N, h, w, C) or (N, C, h, w) float32/float16 output.
    layout
        ``"hwc"`` or ``"chw"``.
    clip
        (lo, hi) range that jittered values are clipped to.
    """

    def __init__(self, norm: Normalization, shape: tuple[int, int, int], dtype: np.dtype[Any],
                 out: npt.NDArray[np.floating[Any]], layout: Layout,
                 clip: tuple[float, float]) -> None:
        h, w, c = shape
        divisor, offset = norm.arrays(c)
        self.shape, self.out, self.layout = shape, out, layout
        self.divisor, self.offset = np.tile(divisor, w), np.tile(offset, w)
        self.lo, self.hi = np.float32(clip[0]), np.float32(clip[1])
        self.staging = np.empty(shape, dtype)  # for views whose rows are not contiguous
        self.tmp = np.empty((h, w * c), np.float32)

    def __call__(
        self, k: int, src: npt.NDArray[Any], jitter: tuple[float, float] | None
    ) -> None:
        h, w, c = self.shape
        if src.strides[2] == src.itemsize and src.strides[1] == c * src.itemsize:
            rows = src.reshape(h, w * c)  # a view: each row is w * C contiguous values
        else:
            np.copyto(self.staging, src)
            rows = self.staging.reshape(h, w * c)
        direct = self.layout == "hwc" and self.out.dtype == np.float32 and jitter is None
        dst = self.out[k].reshape(h, w * c) if direct else self.tmp
        if jitter is None:
            np.divide(rows, self.divisor, out=dst)  # exact cast to float32, one rounding
        else:
            np.multiply(rows, np.float32(jitter[0]), out=dst)
            np.add(dst, np.float32(jitter[1]), out=dst)
            np.clip(dst, self.lo, self.hi, out=dst)
            np.divide(dst, self.divisor, out=dst)
        np.add(dst, self.offset, out=dst)
        if direct:
            return
        if self.layout == "hwc":
            np.copyto(self.out[k].reshape(h, w * c), dst)  # float16: round to nearest even
        else:
            np.copyto(self.out[k], dst.reshape(h, w, c).transpose(2, 0, 1))
