"""Tiers 1 and 2: the fused NumPy path against plain slicing, and on array-api-strict device1."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gigapatch.errors import InvalidArgumentError, RegionError
from gigapatch.kernels import Normalization, augment, fused_gather
from tests.helpers import padded_patches, plain_augment


def _reference(block, ys, xs, size, *, dilation=(1, 1), fill=0, dihedral=None, jitter=None,
               normalize=None, dtype="float32", layout="hwc"):
    """Padded slicing, then np.rot90/fliplr and the float32 arithmetic in the documented order."""
    patches = padded_patches(block, ys, xs, size, dilation, fill)
    return plain_augment(patches, dihedral, jitter, normalize, dtype, layout)


@settings(max_examples=120, deadline=None)
@given(data=st.data())
def test_fused_equals_the_plain_definition(data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    bh, bw = data.draw(st.integers(1, 24)), data.draw(st.integers(1, 24))
    c = data.draw(st.sampled_from([1, 3, 4]))
    dtype = data.draw(st.sampled_from([np.uint8, np.uint16, np.float32]))
    block = rng.integers(0, 250, (bh, bw, c)).astype(dtype)
    side = data.draw(st.integers(1, 7))
    n = data.draw(st.integers(1, 6))
    kwargs = {
        "dilation": (data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))),
        "fill": data.draw(st.sampled_from([0, 7, 200])),
        "dihedral": rng.integers(0, 8, n),
        "layout": data.draw(st.sampled_from(["hwc", "chw"])),
    }
    if data.draw(st.booleans()):
        kwargs["normalize"] = data.draw(st.sampled_from(["unit", "xception"]))
        kwargs["dtype"] = data.draw(st.sampled_from(["float32", "float16"]))
        if data.draw(st.booleans()):
            kwargs["jitter"] = np.stack([rng.uniform(0.5, 1.5, n), rng.uniform(-50, 50, n)], 1)
    ys, xs = rng.integers(-8, bh + 2, n), rng.integers(-8, bw + 2, n)
    got = fused_gather(block, ys, xs, side, **kwargs)
    want = _reference(block, ys, xs, (side, side), **kwargs)
    assert got.dtype == want.dtype and got.shape == want.shape
    assert np.array_equal(got, want)


@pytest.mark.parametrize("op", range(8))
def test_each_dihedral_code_is_the_documented_rotation_then_flip(op):
    patch = np.arange(16, dtype=np.uint8).reshape(4, 4, 1)
    got = fused_gather(patch, [0], [0], 4, dihedral=[op])[0, ..., 0]
    want = np.rot90(patch[..., 0], op % 4)
    assert np.array_equal(got, want[:, ::-1] if op >= 4 else want)


def test_the_eight_codes_give_eight_distinct_patches():
    patch = np.random.default_rng(0).integers(0, 255, (5, 5, 3), dtype=np.uint8)
    out = augment(np.repeat(patch[None], 8, axis=0), dihedral=np.arange(8))
    assert len({o.tobytes() for o in out}) == 8


def test_presets_match_their_formulas_in_float64():
    x = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, axis=2)
    x64 = x.astype(np.float64)
    mean = np.array([0.485, 0.456, 0.406]) * 255
    std = np.array([0.229, 0.224, 0.225]) * 255
    for name, want in [("xception", x64 / 127.5 - 1), ("unit", x64 / 255),
                       ("imagenet", (x64 - mean) / std)]:
        got = fused_gather(x, [0], [0], 16, normalize=name)[0]
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6, err_msg=name)
    x32 = x.astype(np.float32)  # Keras' xception "tf" mode and torchvision's ToTensor, in float32
    assert np.array_equal(fused_gather(x, [0], [0], 16, normalize="xception")[0], x32 / 127.5 - 1)
    assert np.array_equal(fused_gather(x, [0], [0], 16, normalize="unit")[0], x32 / 255)


def test_xception_output_lies_in_minus_one_one_even_with_jitter():
    x = np.arange(256, dtype=np.uint8).reshape(16, 16, 1)
    jitter = [[1.5, 60.0], [0.5, -60.0]]
    out = fused_gather(x, [0, 0], [0, 0], 16, normalize="xception", jitter=jitter)
    assert out.min() == -1 and out.max() == 1


def test_xception_equals_keras_preprocess_input():
    xception = pytest.importorskip("keras.applications.xception")
    x = np.random.default_rng(4).integers(0, 256, (6, 20, 3), dtype=np.uint8)
    ours = fused_gather(x, [0], [0], (6, 20), normalize="xception")[0]
    theirs = np.asarray(xception.preprocess_input(x.astype(np.float32)))
    assert np.array_equal(ours, theirs)  # bit for bit: the same division, then - 1


def test_custom_normalizations_and_layouts():
    x = np.random.default_rng(5).integers(0, 256, (9, 9, 2), dtype=np.uint8)
    norm = {"scale": [1.0, 2.0], "offset": [0.5, -3.0]}
    hwc = fused_gather(x, [1], [2], 4, normalize=norm)
    chw = fused_gather(x, [1], [2], 4, normalize=Normalization((1.0, 0.5), (0.5, -3.0)),
                       layout="chw")
    want = x[1:5, 2:6].astype(np.float32) * np.float32([1, 2]) + np.float32([0.5, -3])
    assert np.array_equal(hwc[0], want) and np.array_equal(chw[0], want.transpose(2, 0, 1))
    ms = fused_gather(x, [1], [2], 4, normalize={"mean": [10, 20], "std": [2, 4]})
    np.testing.assert_allclose(ms[0], (x[1:5, 2:6] - [10, 20]) / [2, 4], rtol=1e-6)


def test_fill_none_is_a_region_error_and_out_is_filled_in_place():
    block = np.zeros((10, 10, 3), np.uint8)
    with pytest.raises(RegionError, match=r"patch 1 at y=8, x=0 spanning 3x3 lies outside"):
        fused_gather(block, [0, 8], [0, 0], 3, fill=None, normalize="unit")
    out = np.zeros((2, 3, 3, 3), np.float16)
    res = fused_gather(block + 255, [0, 7], [0, 7], 3, normalize="unit", dtype="float16", out=out)
    assert res is out and np.all(out == 1)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"normalize": "tf"}, "normalize must be one of xception, imagenet, unit.*got 'tf'"),
    ({"normalize": {"scale": [1]}}, "normalize must be one of .*got {'scale': \\[1\\]}"),
    ({"normalize": {"divisor": [0], "offset": [1]}}, "no zero divisor\\); got {'divisor'"),
    ({"normalize": {"mean": [1], "std": [0]}}, "no zero std; got mean=\\[1\\], std=\\[0\\]"),
    ({"normalize": "imagenet", "size": 2, "ys": [0], "xs": [0], "c": 1},
     "normalize divisor must have 1 or 1 values .*got 3 for the 'imagenet'"),
    ({"normalize": "unit", "dtype": "int8"}, "dtype must be one of float32, float16 .*'int8'"),
    ({"dtype": "float32"}, "dtype must be None or the block's dtype uint8 when normalize"),
    ({"layout": "nhwc"}, "layout must be one of hwc, chw; got 'nhwc'"),
    ({"dihedral": [0, 8]}, "dihedral codes must lie in 0..7; got values from 0 to 8"),
    ({"dihedral": [1]}, "dihedral must be 2 integer codes in 0..7 .*got shape \\(1,\\)"),
    ({"dihedral": [1, 0], "size": (2, 3)}, "quarter turns\\) need square patches; got size"),
    ({"jitter": [[1, 0], [1, 0]]}, "jitter needs a normalization"),
    ({"jitter": [[1, 0]], "normalize": "unit"}, "jitter must be a finite \\(2, 2\\) array"),
    ({"fill": 300}, "fill must be None or a number representable as uint8; got 300"),
    ({"fill": 0.5}, "fill must be None or a number representable as uint8; got 0.5"),
    ({"out": np.zeros((2, 2, 2, 3))}, "out must have shape \\(2, 2, 2, 1\\) and dtype uint8"),
])
def test_fused_checks_its_arguments(kwargs, match):
    c = kwargs.pop("c", 1)
    args = {"ys": [0, 1], "xs": [0, 1], "size": 2, **kwargs}
    with pytest.raises(InvalidArgumentError, match=match):
        fused_gather(np.zeros((6, 6, c), np.uint8), **args)


def test_empty_batches():
    out = fused_gather(np.zeros((4, 4, 3), np.uint8), [], [], 2, normalize="unit", layout="chw")
    assert out.shape == (0, 3, 2, 2) and out.dtype == np.float32
    assert augment(np.zeros((0, 2, 2, 3), np.uint8), normalize="unit").shape == (0, 2, 2, 3)


def test_augment_and_fused_equal_the_plain_definition():
    rng = np.random.default_rng(6)
    block = rng.integers(0, 256, (30, 30, 3), dtype=np.uint8)
    ys, xs, ops = rng.integers(0, 22, 5), rng.integers(0, 22, 5), rng.integers(0, 8, 5)
    kw = {"dihedral": ops, "normalize": "imagenet", "layout": "chw", "dtype": "float16"}
    patches = fused_gather(block, ys, xs, 8)
    want = _reference(block, ys, xs, (8, 8), **kw)
    assert np.array_equal(augment(patches, **kw), want)
    assert np.array_equal(fused_gather(block, ys, xs, 8, **kw), want)
    with pytest.raises(InvalidArgumentError, match=r"augment takes dihedral, dtype.*got fill"):
        augment(patches, fill=0)


def test_fused_runs_on_a_strict_non_host_device():
    xps = pytest.importorskip("array_api_strict")
    device = xps.Device("device1")
    rng = np.random.default_rng(7)
    host = rng.integers(0, 255, (12, 14, 3), dtype=np.uint8)
    block = xps.asarray(host, device=device)
    ys, xs, ops = [0, 5, -2], [1, 2, 11], [1, 6, 3]
    jitter = [[1.2, -5.0], [0.8, 10.0], [1.0, 0.0]]
    for kw in ({"dihedral": ops},
               {"dihedral": ops, "normalize": "imagenet", "layout": "chw", "jitter": jitter},
               {"normalize": "xception", "dilation": (2, 2)}):
        out = fused_gather(block, ys, xs, 3, fill=9, **kw)
        assert out.device == device
        back = np.asarray(xps.asarray(out, device=xps.Device("CPU_DEVICE")))
        want = _reference(host, ys, xs, (3, 3), fill=9, **kw)
        assert back.dtype == want.dtype and np.array_equal(back, want)
    with pytest.raises(InvalidArgumentError, match="dtype float16 is not available for "):
        fused_gather(block, ys, xs, 3, normalize="unit", dtype="float16")


def test_augment_runs_on_a_strict_non_host_device():
    xps = pytest.importorskip("array_api_strict")
    from gigapatch.kernels import augment

    host = np.random.default_rng(4).integers(0, 255, (3, 5, 6, 3), dtype=np.uint8)
    patches = xps.asarray(host, device=xps.Device("device1"))
    out = augment(patches, normalize="unit", dtype="float32")
    back = np.asarray(xps.asarray(out, device=xps.Device("CPU_DEVICE")))
    assert np.array_equal(back, host.astype(np.float32) / np.float32(255))
