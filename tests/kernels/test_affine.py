"""Affine resampling against scipy.ndimage, and the seeded parameter drawer."""

import ast
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gigapatch.errors import InvalidArgumentError
from gigapatch.kernels import fused_gather
from gigapatch.kernels.affine import affine_gather, affine_matrices
from gigapatch.kernels.params import draw_params

ndimage = pytest.importorskip("scipy.ndimage")


def _scipy_reference(block, ys, xs, size, mats, fill):
    """scipy's affine_transform (order 1, grid-constant) per patch and channel."""
    h, w = size
    c_out = np.array([(h - 1) / 2, (w - 1) / 2])
    out = []
    for y, x, m in zip(ys, xs, mats, strict=True):
        a, t = m[:, :2], m[:, 2]
        offset = np.array([y, x]) + c_out + t - a @ c_out
        out.append(np.stack([
            ndimage.affine_transform(block[..., ch].astype(np.float64), a, offset=offset,
                                     output_shape=(h, w), order=1, mode="grid-constant",
                                     cval=fill)
            for ch in range(block.shape[2])
        ], -1))
    return np.stack(out)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_affine_equals_scipy(data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    bh, bw = data.draw(st.integers(1, 40)), data.draw(st.integers(1, 40))
    block = rng.integers(0, 256, (bh, bw, data.draw(st.sampled_from([1, 3])))).astype(np.uint8)
    n = data.draw(st.integers(1, 4))
    size = (data.draw(st.integers(1, 12)), data.draw(st.integers(1, 12)))
    mats = affine_matrices(n, rotation=rng.uniform(-180, 180, n), shear=rng.uniform(-20, 20, n),
                           zoom=rng.uniform(0.5, 2, (n, 2)), shift=rng.uniform(-5, 5, (n, 2)))
    ys, xs = rng.integers(-10, bh + 2, n), rng.integers(-10, bw + 2, n)
    fill = data.draw(st.sampled_from([0, 255]))
    got = affine_gather(block, ys, xs, size, mats, fill=fill)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, _scipy_reference(block, ys, xs, size, mats, fill),
                               rtol=1e-5, atol=1e-4)


def test_identity_is_gather_and_quarter_turns_are_the_dihedral_codes():
    block = np.random.default_rng(1).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    ys, xs = [0, 5, 20, 31], [3, 9, 0, 30]
    plain = fused_gather(block, ys, xs, 9, fill=0)
    assert np.array_equal(affine_gather(block, ys, xs, 9, affine_matrices(4)), plain)
    turned = affine_gather(block, ys, xs, 9, affine_matrices(4, rotation=[90, 180, 270, -90]))
    assert np.array_equal(turned, fused_gather(block, ys, xs, 9, dihedral=[1, 2, 3, 3]))


def test_affine_normalizes_and_lays_out_like_the_fused_kernel():
    block = np.random.default_rng(2).integers(0, 256, (30, 30, 3), dtype=np.uint8)
    kw = {"normalize": "imagenet", "layout": "chw", "dtype": "float16"}
    got = affine_gather(block, [1, 2], [3, 4], 8, affine_matrices(2), **kw)
    assert np.array_equal(got, fused_gather(block, [1, 2], [3, 4], 8, **kw))


def test_affine_runs_on_a_strict_non_host_device():
    xps = pytest.importorskip("array_api_strict")
    device = xps.Device("device1")
    host = np.random.default_rng(3).integers(0, 256, (20, 24, 3), dtype=np.uint8)
    mats = affine_matrices(3, rotation=[10, -30, 45], zoom=[1, 1.5, 0.8])
    out = affine_gather(xps.asarray(host, device=device), [0, 4, -3], [2, 10, 18], 7, mats,
                        fill=5, normalize="unit")
    assert out.device == device
    back = np.asarray(xps.asarray(out, device=xps.Device("CPU_DEVICE")))
    want = affine_gather(host, [0, 4, -3], [2, 10, 18], 7, mats, fill=5, normalize="unit")
    np.testing.assert_allclose(back, want, rtol=1e-6)


@pytest.mark.parametrize(("call", "match"), [
    (lambda: affine_matrices(2, zoom=0), "zoom must be positive; got minimum 0.0"),
    (lambda: affine_matrices(2, rotation=[1, 2, 3]),
     r"rotation must be a scalar or \(2,\) per-patch values; got shape \(3,\)"),
    (lambda: affine_matrices(1, shift=np.nan), "shift must be finite; got nan"),
    (lambda: affine_matrices(-1), "n must be a non-negative integer; got -1"),
    (lambda: affine_gather(np.zeros((4, 4, 1)), [0], [0], 2, np.zeros((2, 2, 3))),
     r"matrices finite \(N, 2, 3\); got \(1,\), \(1,\) and \(2, 2, 3\)"),
    (lambda: affine_gather(np.zeros((4, 4, 1)), [0], [0], 2, affine_matrices(1), fill=None),
     "fill must be a number; got None"),
    (lambda: draw_params(3, 0, rotation=-1), "rotation must be a finite number >= 0; got -1"),
    (lambda: draw_params(3, 0, contrast=1.0), "contrast must be below 1"),
    (lambda: draw_params(3, 0, zoom=(2, 1)), r"0 < low <= high; got \(2, 1\)"),
])
def test_affine_and_drawer_check_their_arguments(call, match):
    with pytest.raises(InvalidArgumentError, match=match):
        call()


def test_drawer_is_reproducible_and_within_its_ranges():
    kw = {"rotation": 30, "shear": 5, "zoom": (0.9, 1.1), "shift": 4, "brightness": 20,
          "contrast": 0.2}
    a, b, c = draw_params(500, 7, **kw), draw_params(500, 7, **kw), draw_params(500, 8, **kw)
    for field in ("dihedral", "jitter", "affine"):
        assert np.array_equal(getattr(a, field), getattr(b, field))
        assert not np.array_equal(getattr(a, field), getattr(c, field))
    assert set(a.dihedral.tolist()) == set(range(8))
    assert np.all(np.abs(a.jitter[:, 0] - 1) <= 0.2) and np.all(np.abs(a.jitter[:, 1]) <= 20)
    assert np.all(np.abs(a.affine[:, :, 2]) <= 4)
    plain = draw_params(5, 0, dihedral=False)
    assert plain.dihedral is None and plain.jitter is None and plain.affine is None


def test_no_kernel_module_draws_random_numbers():
    src = Path(__file__).resolve().parents[2] / "gigapatch" / "kernels"
    for path in src.glob("*.py"):
        if path.name == "params.py":
            continue
        names = {n.attr for n in ast.walk(ast.parse(path.read_text()))
                 if isinstance(n, ast.Attribute)}
        assert not names & {"random", "default_rng", "RandomState"}, path.name
