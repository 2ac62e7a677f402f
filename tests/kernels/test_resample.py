"""Tiers 1 and 2 of the area resampler: NumPy (both paths) and array-api-strict vs a slow reference.

The reference is written from the definition with exact fractions: output
pixel (i, j) covers ``[i·Hs/h, (i+1)·Hs/h) × [j·Ws/w, (j+1)·Ws/w)``; its
value is the overlap-weighted mean of the source pixels, rounded half to
even for integer dtypes (Python's ``round`` of a ``Fraction``).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gigapatch.errors import InvalidArgumentError
from gigapatch.kernels import area_resample, resample_host
from gigapatch.kernels.resample import _separable, area_taps
from gigapatch.kernels.resample_host import block_mean
from tests.kernels.resample_harness import random_block

DTYPES = [np.uint8, np.uint16, np.float32]


def _axis_weights(src: int, dst: int) -> list[list[tuple[int, Fraction]]]:
    """Per output pixel: (source pixel, overlap length) pairs, from the interval definition."""
    rows = []
    for i in range(dst):
        a, b = Fraction(i * src, dst), Fraction((i + 1) * src, dst)
        pairs = [(j, min(b, j + 1) - max(a, Fraction(j))) for j in range(int(a), src)
                 if j < b]
        rows.append([(j, o) for j, o in pairs if o > 0])
    return rows


def reference(block: np.ndarray, h: int, w: int) -> np.ndarray:
    """The slow definition: exact area means, pixel by pixel, channel by channel."""
    n, hs, ws, c = block.shape
    wy, wx = _axis_weights(hs, h), _axis_weights(ws, w)
    area = Fraction(hs, h) * Fraction(ws, w)
    integer = block.dtype.kind != "f"
    out = np.zeros((n, h, w, c), block.dtype)
    for k in range(n):
        for i in range(h):
            for j in range(w):
                for ch in range(c):
                    total = sum(oy * ox * Fraction(block[k, y, x, ch].item())
                                for y, oy in wy[i] for x, ox in wx[j])
                    mean = total / area
                    out[k, i, j, ch] = round(mean) if integer else float(mean)
    return out


def _check(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == want.dtype and got.shape == want.shape
    if want.dtype.kind == "f":
        np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-4)
    else:
        assert np.array_equal(got, want)


@st.composite
def cases(draw, integer_factor: bool | None = None):
    """(block, (h, w)): random sizes, factors, dtype, N and C, from a drawn seed."""
    dtype = draw(st.sampled_from(DTYPES))
    n, c = draw(st.integers(0, 3)), draw(st.sampled_from([1, 2, 3, 4]))
    integer = draw(st.booleans()) if integer_factor is None else integer_factor
    if integer:
        h, w = draw(st.integers(1, 6)), draw(st.integers(1, 6))
        hs, ws = h * draw(st.integers(1, 4)), w * draw(st.integers(1, 4))
    else:
        hs, ws = draw(st.integers(1, 16)), draw(st.integers(1, 16))
        h, w = draw(st.integers(1, hs)), draw(st.integers(1, ws))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return random_block(rng, n, hs, ws, c, dtype), (h, w)


@settings(max_examples=150, deadline=None)
@given(case=cases())
def test_numpy_equals_the_exact_reference(case):
    block, (h, w) = case
    _check(area_resample(block, (h, w)), reference(block, h, w))


@settings(max_examples=100, deadline=None)
@given(case=cases(integer_factor=True))
def test_integer_factors_are_rint_of_the_exact_block_mean(case):
    block, (h, w) = case
    n, hs, ws, c = block.shape
    f, g = hs // h, ws // w
    sums = block.reshape(n, h, f, w, g, c).astype(np.float64).sum(axis=(2, 4))
    got = area_resample(block, (h, w))
    if block.dtype.kind == "f":
        np.testing.assert_allclose(got, sums / (f * g), rtol=2e-6)
    else:
        assert np.array_equal(got, np.rint(sums / (f * g)).astype(block.dtype))


@settings(max_examples=60, deadline=None)
@given(case=cases())
def test_the_generic_path_equals_the_numpy_paths(case):
    block, (h, w) = case
    _, hs, ws, _ = block.shape
    generic = np.zeros((block.shape[0], h, w, block.shape[3]), block.dtype)
    _separable(np, block, generic, area_taps(hs, h), area_taps(ws, w))
    _check(generic, area_resample(block, (h, w)))


def test_two_by_two_ties_round_to_even():
    # 2 x 2 blocks summing to 2 mod 4: means x.5 go to the even neighbour
    sums = np.array([2, 6, 10, 14, 1018, 1, 3, 1020])
    block = np.zeros((1, 2, 2 * len(sums), 1), np.uint8)
    for j, s in enumerate(sums):
        block[0, :, 2 * j : 2 * j + 2, 0] = np.array([[s // 4 + (s % 4 > 0), s // 4 + (s % 4 > 1)],
                                                      [s // 4 + (s % 4 > 2), s // 4]])
    assert (block.reshape(2, -1, 2).sum(axis=(0, 2)) == sums).all()
    got = area_resample(block, (1, len(sums)))[0, 0, :, 0]
    assert got.tolist() == [0, 2, 2, 4, 254, 0, 1, 255]  # 0.5, 1.5, 2.5, 3.5, 254.5, .25, .75


def test_non_integer_ties_round_to_even():
    # 4 -> 3 pixels: output 0 is (3·x0 + x1) / 4; x1 = 2 and 6 give 0.5 and 1.5
    block = np.array([0, 2, 0, 0, 0, 6, 0, 0], np.uint16).reshape(1, 1, 8, 1)
    got = area_resample(block.reshape(1, 2, 4, 1), (2, 3))
    assert got[0, :, 0, 0].tolist() == [0, 2]


@pytest.mark.parametrize("dtype", DTYPES)
def test_the_fast_path_handles_the_benchmark_shape(dtype):
    rng = np.random.default_rng(5)
    block = random_block(rng, 2, 598, 598, 3, dtype)
    got = area_resample(block, 299)
    assert got.shape == (2, 299, 299, 3) and got.dtype == dtype
    corner = reference(block[:, :8, :8], 4, 4)
    _check(got[:, :4, :4], corner)


@pytest.mark.parametrize("out_hw", [(3, 2), (5, 4)], ids=["integer", "non-integer"])
def test_out_is_filled_even_when_strided(out_hw):
    block = random_block(np.random.default_rng(1), 5, 12, 6, 3, np.uint8)
    big = np.zeros((5, out_hw[0], out_hw[1] + 2, 3), np.uint8)
    out = big[:, :, 1:-1]
    assert area_resample(block, out_hw, out=out) is out
    assert np.array_equal(out, reference(block, *out_hw))
    assert (big[:, :, 0] == 0).all() and (big[:, :, -1] == 0).all()


def test_many_small_patches_span_several_chunks():
    block = random_block(np.random.default_rng(2), 3000, 5, 7, 3, np.uint8)
    got = area_resample(block, (2, 3))
    assert np.array_equal(got[[0, 1499, 2999]], reference(block[[0, 1499, 2999]], 2, 3))


@pytest.mark.parametrize("dtype", DTYPES)
def test_block_mean_reads_windows_of_tiles_and_writes_reversed_views(dtype):
    # the tile-means path averages a decoded batch last tile first, through views
    rng = np.random.default_rng(11)
    tiles = random_block(rng, 5, 20, 26, 3, dtype)
    window = tiles[::-1, 2:18, 1:25]  # rows contiguous, tiles and corners strided
    out = np.zeros((5, 8, 12, 3), dtype)
    block_mean(window, (2, 2), out[::-1])
    _check(out[::-1], reference(np.ascontiguousarray(window), 8, 12))


def test_block_mean_scratch_larger_than_kept_gives_the_same(monkeypatch):
    rng = np.random.default_rng(12)
    block = random_block(rng, 3, 24, 36, 3, np.uint8)
    kept = block_mean(block, (3, 2), np.empty((3, 8, 18, 3), np.uint8))
    monkeypatch.setattr(resample_host, "SCRATCH_BYTES", 16)  # every buffer fresh
    monkeypatch.setattr(resample_host, "CHUNK_BYTES", 1)  # one patch per chunk
    assert np.array_equal(block_mean(block, (3, 2), np.empty((3, 8, 18, 3), np.uint8)), kept)
    _check(kept, reference(block, 8, 18))


def test_same_size_is_a_copy():
    block = random_block(np.random.default_rng(3), 2, 5, 7, 3, np.uint16)
    got = area_resample(block, (5, 7))
    assert np.array_equal(got, block) and not np.shares_memory(got, block)


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"out_hw": (5, 4)}, InvalidArgumentError,
     r"out_hw must be at most the block's \(Hs, Ws\) = \(4, 6\): area resampling only "
     r"downsamples; got \(5, 4\)"),
    ({"out_hw": 7}, InvalidArgumentError, r"out_hw must be at most .* got 7"),
    ({"out_hw": (0, 2)}, InvalidArgumentError, r"out_hw must be at least 1; got \(0, 2\)"),
    ({"out_hw": 2.5}, InvalidArgumentError, "out_hw must be an integer or a pair of integers"),
    ({"out_hw": 2, "out": np.zeros((2, 2, 2, 3), np.uint8)}, InvalidArgumentError,
     r"out must have shape \(2, 2, 2, 1\) and dtype uint8; got \(2, 2, 2, 3\) and uint8"),
    ({"out_hw": 2, "out": np.zeros((2, 2, 2, 1), np.float32)}, InvalidArgumentError,
     "out must have shape .* and dtype uint8; got .* and float32"),
])
def test_arguments_are_checked(kwargs, error, match):
    with pytest.raises(error, match=match):
        area_resample(np.zeros((2, 4, 6, 1), np.uint8), **kwargs)


@pytest.mark.parametrize(("block", "match"), [
    (np.zeros((4, 6, 1), np.uint8), r"block must be \(N, Hs, Ws, C\); got shape \(4, 6, 1\)"),
    (np.zeros((1, 4, 6, 1), np.int16), "block must be uint8, uint16 or float32; got int16"),
    (np.zeros((1, 4, 6, 1), np.float64), "block must be uint8, uint16 or float32; got float64"),
])
def test_blocks_are_checked(block, match):
    with pytest.raises(InvalidArgumentError, match=match):
        area_resample(block, 2)


def test_area_taps_sum_to_the_denominator():
    for src, dst in [(598, 256), (592, 299), (598, 299), (7, 7), (5, 1), (1000, 999)]:
        index, weight, den = area_taps(src, dst)
        assert (weight.sum(axis=1) == den).all()
        assert index.min() >= 0 and index.max() < src
        assert (weight >= 0).all() and weight.shape == index.shape


# --- tier 2: the xp-generic path on a strict non-host device ---------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("out_hw", [(7, 4), (4, 5), (7, 8)], ids=["integer", "non-integer",
                                                                   "same"])
def test_runs_on_a_strict_non_host_device(dtype, out_hw):
    xps = pytest.importorskip("array_api_strict")
    device = xps.Device("device1")
    host = random_block(np.random.default_rng(4), 3, 7, 8, 3, dtype)
    block = xps.asarray(host, device=device)
    got = area_resample(block, out_hw)
    assert got.device == device and got.dtype == getattr(xps, np.dtype(dtype).name)
    back = np.asarray(xps.asarray(got, device=xps.Device("CPU_DEVICE")))
    _check(back, reference(host, *out_hw))


def test_fills_a_strict_out_array():
    xps = pytest.importorskip("array_api_strict")
    device = xps.Device("device1")
    host = random_block(np.random.default_rng(6), 2, 10, 10, 1, np.uint8)
    out = xps.zeros((2, 4, 3, 1), dtype=xps.uint8, device=device)
    assert area_resample(xps.asarray(host, device=device), (4, 3), out=out) is out
    back = np.asarray(xps.asarray(out, device=xps.Device("CPU_DEVICE")))
    assert np.array_equal(back, reference(host, 4, 3))


# --- OpenCV INTER_AREA: within one grey level (integers), close (float32) ---------------------

def _opencv(block: np.ndarray, h: int, w: int) -> np.ndarray:
    cv2 = pytest.importorskip("cv2", reason="OpenCV is not installed (pip install -e '.[test]'):"
                                            " no INTER_AREA comparison")
    return np.stack([cv2.resize(patch, (w, h), interpolation=cv2.INTER_AREA)
                     .reshape(h, w, patch.shape[2]) for patch in block])


@settings(max_examples=120, deadline=None)
@given(case=cases(integer_factor=False))
def test_within_one_grey_level_of_opencv_inter_area(case):
    block, (h, w) = case
    if block.shape[0] == 0 or block.shape[3] > 4:
        return
    want = _opencv(block, h, w)
    got = area_resample(block, (h, w))
    if block.dtype.kind == "f":
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-2)
    else:
        assert np.abs(got.astype(np.int64) - want).max() <= 1


@pytest.mark.parametrize(("src", "dst"), [(598, 256), (592, 299), (512, 500), (300, 299)])
def test_realistic_factors_agree_with_opencv(src, dst):
    block = random_block(np.random.default_rng(7), 2, src, src, 3, np.uint8)
    diff = np.abs(area_resample(block, dst).astype(np.int64) - _opencv(block, dst, dst))
    assert diff.max() <= 1
    assert (diff == 0).mean() > 0.99  # off by one only where float rounding meets a half


def test_integer_factors_differ_from_opencv_exactly_at_ties():
    # OpenCV's 2 x 2 fast path rounds x.5 up; we round it to even (numpy.rint)
    block = random_block(np.random.default_rng(8), 2, 598, 598, 3, np.uint8)
    got = area_resample(block, 299).astype(np.int64)
    want = _opencv(block, 299, 299)
    sums = block.reshape(2, 299, 2, 299, 2, 3).sum(axis=(2, 4), dtype=np.int64)
    ties = sums % 4 == 2
    assert np.array_equal(got[~ties], want[~ties])
    assert np.array_equal(got[ties], want[ties] - (want[ties] % 2))  # up to odd -> back to even


def test_long_sides_keep_the_slivers_opencv_drops():
    # 2001 -> 1000: output 0 covers [0, 2.001), a 1/1000-pixel sliver of pixel 2 that OpenCV
    # leaves out (its weights below 1e-3 are dropped); the exact mean keeps it
    block = random_block(np.random.default_rng(9), 1, 1, 2001, 1, np.uint16)
    block[0, 0, :3, 0] = [0, 0, 65535]
    got = area_resample(block, (1, 1000))
    assert np.array_equal(got, reference(block, 1, 1000))
    assert got[0, 0, 0, 0] == 33  # 65535 · 0.001 / 2.001 = 32.75 (OpenCV 5.1 gives 0)
