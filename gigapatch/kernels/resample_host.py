"""The NumPy paths of the area resampler: integer sums, exact rounding, long inner loops.

Integer factors (:func:`block_mean`): an output pixel of an integer factor
(f, g) is the mean of an f × g source block. The sums are exact in the
narrowest unsigned accumulator that holds them (uint16 for a 2 × 2 mean of
uint8), built in two passes with long inner loops: the f rows of each block
are added as whole rows (each row is ``ws · C`` contiguous values), then the
g columns one channel at a time, each as one loop over all the chunk's pixels.
The quotient ``sum / (f·g)`` is rounded to nearest, ties to even, in integer
arithmetic (:func:`round_div`), so the result equals ``numpy.rint`` of the exact
mean. Intermediates live in per-thread buffers reused from call to call (a 2 × 2
mean of a 598² RGB patch takes ~0.5 ms here, a 256² tile ~0.1 ms; half of that
was touching fresh memory before). ``block`` may be a strided window (a part of
a decoded tile) as long as each of its rows is contiguous.

Other factors (:func:`separable`): the same integer arithmetic with the
integer area weights of :func:`~gigapatch.kernels.resample.area_taps`, one
axis after the other: each tap of the row stage is a ``take`` of whole rows
times a per-row weight, each tap of the column stage a ``take`` along the
flattened ``w·C`` axis (element indices, so NumPy's fast 4- and 8-byte
gathers run) times a per-element weight. The source is cast to the
accumulator once, so every ufunc runs on one dtype.

Patches go through in chunks of a few MiB, so the intermediates stay in
cache.
"""

from __future__ import annotations

import math
import threading
from typing import Any

import numpy as np

__all__ = ["CHUNK_BYTES", "accumulator", "block_mean", "round_div", "separable", "tap_weights"]

CHUNK_BYTES = 2**21
#: Largest scratch buffer kept per thread and role.
SCRATCH_BYTES = 16 << 20

_LOCAL = threading.local()


def accumulator(dtype: np.dtype, bound: int) -> np.dtype:
    """The narrowest unsigned dtype holding every value up to ``bound`` (floats: their own)."""
    if dtype.kind == "f":
        return dtype
    for candidate in (np.uint16, np.uint32, np.uint64):
        if bound <= np.iinfo(candidate).max:
            return np.dtype(candidate)
    raise OverflowError(f"no accumulator holds {bound}")


def round_div(num: Any, den: int, xp: Any = np) -> Any:
    """``num / den`` rounded to nearest, ties to even, for non-negative integer arrays.

    Exact: ``q + 1`` when the remainder is above half of ``den``, or exactly
    half with ``q`` odd. Written as one floor division of a biased sum
    (``num + den // 2`` for odd ``den``, ``num + den / 2 - 1 + (q & 1)`` for
    even), so the array must hold ``num + den`` without overflow.
    """
    if den == 1:
        return num
    if den % 2:
        return (num + den // 2) // den
    return (num + (den // 2 - 1) + ((num // den) & 1)) // den


def _scratch(role: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """A per-thread scratch array of ``shape`` and ``dtype``, reused from call to call.

    Fresh memory costs about as much to touch as the arithmetic done in it
    (0.2–2.7 s/GiB here), so the intermediates of :func:`block_mean` live in
    buffers kept per thread (up to :data:`SCRATCH_BYTES` each; larger ones are
    not kept).
    """
    size = math.prod(shape)
    dtype = np.dtype(dtype)
    if size * dtype.itemsize > SCRATCH_BYTES:
        return np.empty(shape, dtype)
    buffers: dict[tuple[str, np.dtype], np.ndarray] | None = getattr(_LOCAL, "buffers", None)
    if buffers is None:
        buffers = _LOCAL.buffers = {}
    key = (role, dtype)
    buf = buffers.get(key)
    if buf is None or buf.size < size:
        buf = buffers[key] = np.empty(size, dtype)
    return buf[:size].reshape(shape)


def _round_div_into(num: np.ndarray, den: int, out: np.ndarray) -> None:
    """``out[...] = round_div(num, den)``, in place in ``num``, then cast into ``out``."""
    shift = den.bit_length() - 1
    if den & (den - 1) == 0:  # a power of two (2 × 2, 4 × 4 means): shifts
        if shift:
            odd = _scratch("odd", num.shape, num.dtype)
            np.right_shift(num, shift, out=odd)
            np.bitwise_and(odd, 1, out=odd)
            num += odd
            num += den // 2 - 1
            np.right_shift(num, shift, out=num)
    elif den % 2:
        num += den // 2
        np.floor_divide(num, den, out=num)
    else:
        odd = _scratch("odd", num.shape, num.dtype)
        np.floor_divide(num, den, out=odd)
        np.bitwise_and(odd, 1, out=odd)
        num += odd
        num += den // 2 - 1
        np.floor_divide(num, den, out=num)
    np.copyto(out, num.reshape(out.shape), casting="unsafe")


def block_mean(block: np.ndarray, factors: tuple[int, int], out: np.ndarray) -> np.ndarray:
    """Write the f × g block means of the (N, f·h, g·w, C) ``block`` into the (N, h, w, C) ``out``.

    Integer dtypes are rounded to nearest, ties to even; float dtypes keep
    their dtype (``sum / (f·g)``). ``block`` may be a strided view (a window of
    a decoded tile) as long as each of its rows is contiguous.
    """
    n, hs, ws, c = block.shape
    f, g = factors
    h, w = hs // f, ws // g
    if f == g == 1:
        np.copyto(out, block)
        return out
    integer = block.dtype.kind != "f"
    bound = (int(np.iinfo(block.dtype).max) + 1) * f * g if integer else 0
    acc = accumulator(block.dtype, bound)
    step = max(1, min(n, CHUNK_BYTES // max(1, hs * ws * c * block.itemsize)))
    for k0 in range(0, n, step):
        m = min(n, k0 + step) - k0
        src = block[k0 : k0 + m].reshape(m, h, f, ws * c)
        rows = _scratch("rows", (m, h, ws * c), acc)
        if f == 1:
            np.copyto(rows, src[:, :, 0])
        else:
            np.add(src[:, :, 0], src[:, :, 1], out=rows, dtype=acc)
            for a in range(2, f):
                np.add(rows, src[:, :, a], out=rows)
        if g == 1:
            total = rows.reshape(m * h * w, c)
        else:
            total = _scratch("total", (m * h * w, c), acc)
            _add_columns(rows.reshape(m * h * w, g, c), total)
        if integer:
            _round_div_into(total, f * g, out[k0 : k0 + m])
        else:
            np.divide(total.reshape(m, h, w, c), block.dtype.type(f * g), out=out[k0 : k0 + m])
    return out


def _add_columns(grouped: np.ndarray, total: np.ndarray) -> None:
    """``total = grouped.sum(axis=1)`` for (P, g, C) groups of P pixels, with long inner loops.

    For few channels one channel at a time (one inner loop over all P pixels);
    for many, whole (P, C) slabs.
    """
    g, c = grouped.shape[1], grouped.shape[2]
    if c >= 8:
        np.add(grouped[:, 0], grouped[:, 1], out=total)
        for b in range(2, g):
            np.add(total, grouped[:, b], out=total)
        return
    for ch in range(c):
        dst = total[:, ch]
        np.add(grouped[:, 0, ch], grouped[:, 1, ch], out=dst)
        for b in range(2, g):
            np.add(dst, grouped[:, b, ch], out=dst)


Taps = tuple[np.ndarray, np.ndarray, int]


def separable(block: np.ndarray, taps_y: Taps, taps_x: Taps, out: np.ndarray) -> np.ndarray:
    """Write the area resampling of ``block`` by the (index, weight, den) taps into ``out``.

    Integer dtypes: ``round_div(sum of weighted sums, den_y · den_x)``, exact;
    float dtypes: the weights divided by their denominators, in the block's dtype.
    """
    (iy, wy, dy), (ix, wx, dx) = taps_y, taps_x
    n, hs, ws, c = block.shape
    h, w = iy.shape[0], ix.shape[0]
    integer = block.dtype.kind != "f"
    acc = accumulator(block.dtype, (int(np.iinfo(block.dtype).max) + 1) * dy * dx
                      if integer else 0)
    row_w = [tap_weights(wy[:, t], dy, acc, integer)[:, None] for t in range(iy.shape[1])]
    col_w = [np.repeat(tap_weights(wx[:, t], dx, acc, integer), c)
             for t in range(ix.shape[1])]
    col_i = [(ix[:, t, None] * c + np.arange(c)).ravel() for t in range(ix.shape[1])]
    per_patch = (hs * ws + 2 * h * ws + 2 * h * w) * c * acc.itemsize
    step = min(n, max(1, CHUNK_BYTES // per_patch))
    src = np.empty((step, hs, ws * c), acc)
    mid, mid_tap = np.empty((2, step, h, ws * c), acc)
    num, num_tap = np.empty((2, step, h, w * c), acc)
    for k0 in range(0, n, step):
        m = min(n, k0 + step) - k0
        np.copyto(src[:m], block[k0 : k0 + m].reshape(m, hs, ws * c))
        _weighted_sum(src[:m], 1, list(iy.T), row_w, mid[:m], mid_tap[:m])
        _weighted_sum(mid[:m], 2, col_i, col_w, num[:m], num_tap[:m])
        result = num[:m].reshape(m, h, w, c)
        if integer:
            _round_div_into(result, dy * dx, out[k0 : k0 + m])
        else:
            np.copyto(out[k0 : k0 + m], result)
    return out


def tap_weights(weight: np.ndarray, den: int, acc: np.dtype, integer: bool) -> np.ndarray:
    """Integer weights as the accumulator dtype, or normalized (``weight / den``) for floats."""
    return weight.astype(acc) if integer else (weight / den).astype(acc)


def _weighted_sum(x: np.ndarray, axis: int, indices: list[np.ndarray],
                  weights: list[np.ndarray], total: np.ndarray, term: np.ndarray) -> None:
    """``total = sum_t take(x, indices[t], axis) · weights[t]``, with ``term`` as scratch."""
    for t, (index, weight) in enumerate(zip(indices, weights, strict=True)):
        dst = total if t == 0 else term
        np.take(x, index, axis=axis, out=dst, mode="clip")
        np.multiply(dst, weight, out=dst)
        if t:
            np.add(total, term, out=total)
