"""Area resampling: patches read at a finer pyramid level, brought to the target pixel size.

Output pixel ``i`` of an axis of ``h`` pixels covers source pixels
``[i·Hs/h, (i+1)·Hs/h)``; its value is the mean of the source area it
covers, border pixels weighted by the fraction inside (OpenCV's
``INTER_AREA`` for downscaling). Measured in units of ``1/h`` source pixel
every interval end is an integer, so each weight is an integer overlap and
the mean of an integer image is an exact fraction ``num / (Hs·Ws)``:
integer dtypes get it rounded to nearest, ties to even (``numpy.rint`` of
the exact mean), identical on every backend. For an integer factor
(``Hs = f·h``, ``Ws = g·w``) that is ``rint(sum of the f × g block / (f·g))``.
Float dtypes get the same weights, normalized, in their own precision.

Backends: NumPy with integer factors takes the fast path of
:mod:`~gigapatch.kernels.resample_host`; a CuPy block is one launch of
``src/resample.cu``; anything else (NumPy with other factors, any array-API
namespace) runs separable weighted sums of ``take`` s, in chunks of patches.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from gigapatch.errors import InvalidArgumentError, parse_pair
from gigapatch.kernels import resample_launch
from gigapatch.kernels.backend import astype, namespace_of
from gigapatch.kernels.fused import host_dtype
from gigapatch.kernels.gather import _empty_like_block
from gigapatch.kernels.resample_host import (
    CHUNK_BYTES,
    accumulator,
    block_mean,
    round_div,
    separable,
    tap_weights,
)

__all__ = ["DTYPES", "area_resample", "area_taps"]

DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.float32))


def area_taps(src: int, dst: int) -> tuple[np.ndarray, np.ndarray, int]:
    """The area weights of one axis of ``src`` source pixels resampled to ``dst`` (≤ src).

    Returns ``(index, weight, den)``: (dst, K) source indices and integer
    weights, output ``i`` being ``sum_k weight[i, k] · x[index[i, k]] / den``.
    Weights are the overlaps in units of ``1/dst`` source pixel divided by
    their common factor; unused taps have weight 0 and a valid index.
    """
    i = np.arange(dst, dtype=np.int64)[:, None]
    lo = i * src // dst
    hi = -(-(i + 1) * src // dst)
    j = lo + np.arange(int((hi - lo).max()), dtype=np.int64)
    weight = np.minimum((i + 1) * src, (j + 1) * dst) - np.maximum(i * src, j * dst)
    weight = np.maximum(weight, 0)
    common = math.gcd(src, dst)
    return np.minimum(j, src - 1), weight // common, src // common


def area_resample(block: Any, out_hw: tuple[int, int] | int, *, out: Any = None) -> Any:
    """Area-average the (N, Hs, Ws, C) ``block`` down to (N, h, w, C).

    Parameters
    ----------
    block
        uint8, uint16 or float32 patches: NumPy, CuPy (one kernel launch) or
        any array-API array.
    out_hw
        (h, w) of the result, or one int; ``h ≤ Hs`` and ``w ≤ Ws``.
    out
        Optional (N, h, w, C) array of ``block``'s namespace and dtype to fill
        (C-contiguous on the GPU).

    Returns
    -------
    array
        ``out``, or a new array of ``block``'s namespace, device and dtype.
        Integer dtypes: the exact area mean rounded to nearest, ties to
        even; float32: the area mean in float32.
    """
    h, w = parse_pair("out_hw", out_hw)
    if block.ndim != 4:
        raise InvalidArgumentError(f"block must be (N, Hs, Ws, C); got shape {tuple(block.shape)}")
    n, hs, ws, c = (int(v) for v in block.shape)
    if h > hs or w > ws:
        raise InvalidArgumentError(
            f"out_hw must be at most the block's (Hs, Ws) = ({hs}, {ws}): area resampling only "
            f"downsamples; got {out_hw!r}"
        )
    dtype = host_dtype(block.dtype)
    if dtype not in DTYPES:
        raise InvalidArgumentError(f"block must be uint8, uint16 or float32; got {dtype}")
    cp = _cuda_namespace(block)
    if out is None and cp is not None:
        out = cp.empty((n, h, w, c), dtype=dtype)
    elif out is None:
        out = _empty_like_block(block, (n, h, w, c))
    elif tuple(out.shape) != (n, h, w, c) or host_dtype(out.dtype) != dtype:
        raise InvalidArgumentError(
            f"out must have shape {(n, h, w, c)} and dtype {dtype}; got {tuple(out.shape)} "
            f"and {out.dtype}"
        )
    if n == 0 or c == 0:
        return out
    if cp is not None:
        if not out.flags.c_contiguous:
            raise InvalidArgumentError("out must be C-contiguous on the GPU; got a strided array")
        resample_launch.run(cp, resample_launch.plan_resample(cp.ascontiguousarray(block), out))
        return out
    if isinstance(block, np.ndarray):
        if hs % h == 0 and ws % w == 0:
            return block_mean(block, (hs // h, ws // w), out)
        return separable(block, area_taps(hs, h), area_taps(ws, w), out)
    _separable(namespace_of(block), block, out, area_taps(hs, h), area_taps(ws, w))
    return out


def _separable(xp: Any, block: Any, out: Any, taps_y: tuple[np.ndarray, np.ndarray, int],
               taps_x: tuple[np.ndarray, np.ndarray, int]) -> None:
    """``out = Wy · block · Wxᵀ`` as weighted sums of ``take`` s, chunk by chunk of patches."""
    (iy, wy, dy), (ix, wx, dx) = taps_y, taps_x
    n, _, ws, c = (int(v) for v in block.shape)
    h, w = iy.shape[0], ix.shape[0]
    dtype = host_dtype(block.dtype)
    integer = dtype.kind != "f"
    acc = accumulator(dtype, (int(np.iinfo(dtype).max) + 1) * dy * dx if integer else 0)
    # per tap: indices (1-d) and weights shaped to broadcast along axis 1 (rows) or 2 (columns)
    rows = [(_device(xp, iy[:, t], block),
             _device(xp, tap_weights(wy[:, t], dy, acc, integer).reshape(1, h, 1, 1), block))
            for t in range(iy.shape[1])]
    cols = [(_device(xp, ix[:, t], block),
             _device(xp, tap_weights(wx[:, t], dx, acc, integer).reshape(1, 1, w, 1), block))
            for t in range(ix.shape[1])]
    step = max(1, CHUNK_BYTES // max(1, h * ws * c * acc.itemsize))
    for k0 in range(0, n, step):
        k1 = min(n, k0 + step)  # the standard leaves out-of-range slice ends unspecified
        mid = _weighted_sum(xp, block[k0:k1, ...], rows, axis=1)
        num = _weighted_sum(xp, mid, cols, axis=2)
        if integer:
            num = round_div(num, dy * dx, xp)
        out[k0:k1, ...] = astype(xp, num, out.dtype)


def _weighted_sum(xp: Any, x: Any, taps: list[tuple[Any, Any]], axis: int) -> Any:
    """``sum_t take(x, index_t, axis) · weight_t``, in the weights' dtype."""
    total = None
    for index, weight in taps:
        term = xp.take(x, index, axis=axis) * weight
        total = term if total is None else total + term
    return total


def _device(xp: Any, host: np.ndarray, block: Any) -> Any:
    """``host`` as an array of ``xp`` on ``block``'s device."""
    if xp is np:
        return host
    return xp.asarray(host, device=block.device)


def _cuda_namespace(block: Any) -> Any:
    """CuPy when ``block`` is a CuPy array (the kernel runs), else None.

    The launcher tests replace this to drive the CUDA path with NumPy arrays
    and the host-compiled kernel.
    """
    if type(block).__module__.split(".")[0] != "cupy":
        return None
    from gigapatch.kernels.backend import array_module

    return array_module("gpu")
