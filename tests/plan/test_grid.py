"""Grid plans against the closed form and a plain-NumPy reference of tf.image.extract_patches."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gigapatch
from gigapatch.engine import read_patches
from gigapatch.errors import InvalidArgumentError


def tf_extract_patches(image, size, stride, rate, padding, fill=0):
    """Reference: ``tf.image.extract_patches`` on one (H, W, C) image, in plain NumPy.

    Returns (out_h, out_w, kh * kw * C) as TF does: pad explicitly (SAME: total
    ``max((out - 1) * stride + span - n, 0)``, low side half rounded down), then
    take every ``rate``-th pixel of each window.
    """
    (kh, kw), (sh, sw), (rh, rw) = size, stride, rate
    span = ((kh - 1) * rh + 1, (kw - 1) * rw + 1)
    h, w, c = image.shape
    if padding == "VALID":
        out = (math.ceil((h - span[0] + 1) / sh), math.ceil((w - span[1] + 1) / sw))
        pads = ((0, 0), (0, 0))
    else:
        out = (math.ceil(h / sh), math.ceil(w / sw))
        total = [
            max((o - 1) * s + sp - n, 0)
            for o, s, sp, n in zip(out, stride, span, (h, w), strict=True)
        ]
        pads = tuple((t // 2, t - t // 2) for t in total)
    padded = np.pad(image, (*pads, (0, 0)), constant_values=fill)
    result = np.empty((max(out[0], 0), max(out[1], 0), kh * kw * c), image.dtype)
    for i in range(result.shape[0]):
        for j in range(result.shape[1]):
            window = padded[i * sh : i * sh + span[0] : rh, j * sw : j * sw + span[1] : rw]
            result[i, j] = window.reshape(-1)
    return result


def _image(h, w, c=2, seed=0):
    return np.random.default_rng(seed).integers(1, 250, (h, w, c), dtype=np.uint8)


def _tf_out(n, span, stride, padding):
    return math.ceil(n / stride) if padding == "same" else math.ceil((n - span + 1) / stride)


def _grid_cases(side, kernel, step, rate, min_side=1):
    """(h, w, size, stride, rate, padding) of a grid, each pair drawn per axis."""
    def pair(most):
        return st.tuples(st.integers(1, most), st.integers(1, most))

    sides = st.integers(min_side, side)
    return st.tuples(sides, sides, pair(kernel), pair(step), pair(rate),
                     st.sampled_from(["valid", "same"]))


@settings(max_examples=300, deadline=None)
@given(case=_grid_cases(side=300, kernel=64, step=64, rate=4))
def test_counts_and_positions_are_tf_closed_form(case):
    h, w, size, stride, rate, padding = case
    img = gigapatch.open(np.zeros((h, w, 1), np.uint8))
    span = [(k - 1) * r + 1 for k, r in zip(size, rate, strict=True)]
    if padding == "valid" and (span[0] > h or span[1] > w):
        with pytest.raises(InvalidArgumentError, match="does not fit"):
            gigapatch.grid(img, size, stride, padding=padding, dilation=rate)
        return
    plan = gigapatch.grid(img, size, stride, padding=padding, dilation=rate)
    oh, ow = _tf_out(h, span[0], stride[0], padding), _tf_out(w, span[1], stride[1], padding)
    assert len(plan) == oh * ow and plan.span == tuple(span)
    pad_y = max((oh - 1) * stride[0] + span[0] - h, 0) // 2 if padding == "same" else 0
    pad_x = max((ow - 1) * stride[1] + span[1] - w, 0) // 2 if padding == "same" else 0
    assert np.array_equal(plan.y, np.repeat(np.arange(oh) * stride[0] - pad_y, ow))
    assert np.array_equal(plan.x, np.tile(np.arange(ow) * stride[1] - pad_x, oh))
    assert plan.y.dtype == np.int64 and plan.slide.dtype == np.int32
    if padding == "valid":
        # every patch lies fully inside, and the next one along would not
        assert (plan.y + span[0] <= h).all() and (plan.x + span[1] <= w).all()
        assert plan.y.max() + stride[0] + span[0] > h and plan.x.max() + stride[1] + span[1] > w


@settings(max_examples=120, deadline=None)
@given(case=_grid_cases(side=40, kernel=6, step=5, rate=3, min_side=3),
       fill=st.sampled_from([0, 7, 255]))
def test_gathered_patches_equal_the_numpy_reference(case, fill):
    h, w, size, stride, rate, padding = case
    image = _image(h, w)
    span = [(k - 1) * r + 1 for k, r in zip(size, rate, strict=True)]
    if padding == "valid" and (span[0] > h or span[1] > w):
        return
    plan = gigapatch.grid(image, size, stride, padding=padding, dilation=rate, fill=fill)
    got = read_patches([gigapatch.open(image)], plan)
    ref = tf_extract_patches(image, size, stride, rate, padding.upper(), fill)
    assert got.shape == (ref.shape[0] * ref.shape[1], *size, 2)
    assert np.array_equal(got.reshape(ref.shape), ref)


@pytest.mark.parametrize("padding", ["valid", "same"])
def test_extract_goes_through_the_engine_the_same_way(padding):
    image = _image(37, 52, 3, seed=4)
    plan = gigapatch.grid(image, (6, 5), (4, 7), padding=padding, dilation=(2, 3), fill=9)
    got = gigapatch.extract(image, plan, block_size=7)
    ref = tf_extract_patches(image, (6, 5), (4, 7), (2, 3), padding.upper(), 9)
    assert np.array_equal(got.reshape(ref.shape), ref)


@pytest.mark.parametrize(
    ("size", "stride", "rate"), [((3, 3), (1, 1), (1, 1)), ((4, 5), (3, 2), (2, 3)), ((2, 7), 5, 1)]
)
def test_valid_grid_equals_torch_unfold(size, stride, rate):
    torch = pytest.importorskip("torch")
    image = _image(31, 44, 3, seed=2)
    plan = gigapatch.grid(image, size, stride, dilation=rate)
    got = read_patches([gigapatch.open(image)], plan)  # (L, kh, kw, C)
    unfolded = torch.nn.functional.unfold(
        torch.from_numpy(image).permute(2, 0, 1)[None].double(),
        kernel_size=size,
        dilation=rate,
        stride=stride,
    )[0]  # (C * kh * kw, L)
    expected = unfolded.T.reshape(len(plan), 3, *size).permute(0, 2, 3, 1).numpy()
    assert np.array_equal(got, expected.astype(np.uint8))


def test_same_grid_on_a_slide_level_covers_it_with_negative_coordinates(square_path):
    slide = gigapatch.open(square_path)
    plan = gigapatch.grid(slide, 100, 90, padding="same", level=1, fill=255)
    n = math.ceil(512 / 90)
    pad = max((n - 1) * 90 + 100 - 512, 0) // 2
    assert len(plan) == n * n and plan.y.min() == -pad * 4 and plan.params()["padding"] == "same"
    patches = gigapatch.extract(slide, plan)
    for i in (0, n - 1, len(plan) - 1, len(plan) // 2):
        y, x = int(plan.y[i]), int(plan.x[i])
        assert np.array_equal(patches[i], slide.read(y, x, 100, 100, level=1, fill=255))
    assert (patches[0, : pad, :pad] == 255).all()


def test_grid_by_mpp_picks_the_level_of_each_slide(square_path):
    plan = gigapatch.grid(square_path, 128, mpp=1.0)
    assert plan.level == 1 and plan.levels == (1,) and len(plan) == 16
    assert plan.params()["mpp"] == 1.0
    with pytest.raises(InvalidArgumentError, match="give level or mpp/magnification, not both"):
        gigapatch.grid(square_path, 128, mpp=1.0, level=1)
    with pytest.raises(InvalidArgumentError, match=r"mpp 0\.1 is finer than level 0 of "
                       r"'square\.svs' \(0\.25 µm/px, its finest\)"):
        gigapatch.grid(square_path, 128, mpp=0.1)


def test_grid_with_a_user_mask_records_and_filters_tissue():
    image = _image(40, 60)
    mask = np.zeros((4, 6), bool)
    mask[:, :3] = True  # left half is tissue
    plan = gigapatch.grid(image, 10, mask=mask)
    assert plan.tissue is not None and len(plan.tissue) == len(plan) == 24
    assert np.array_equal(plan.tissue, np.where(plan.x < 30, 1.0, 0.0).astype(np.float32))
    kept = gigapatch.grid(image, 10, mask=mask, min_tissue=0.5)
    assert len(kept) == 12 and (kept.x < 30).all() and (kept.tissue == 1).all()
    assert len(kept.rows(2, 5).tissue) == 3


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"padding": "full"}, "padding must be 'valid' or 'same'; got 'full'"),
        ({"dilation": 0}, "dilation must be at least 1; got 0"),
        ({"fill": 300}, "fill must be representable as uint8"),
        ({"fill": float("nan")}, "fill must be a finite number"),
        ({"fill": "white"}, "fill must be a number; got 'white'"),
        ({"min_tissue": 1.5}, r"min_tissue must be a number in \[0, 1\]; got 1.5"),
        ({"dilation": 5}, "does not fit in 'array' at level 0 .* with dilation 5x5"),
        ({"mask": np.ones((3, 3, 3))}, "mask for 'array' must be a non-empty 2-d numeric map"),
        ({"mask": np.ones((41, 9))}, r"mask for 'array' must have no more cells .*got shape 41x9"),
        ({"mask": np.full((4, 6), 2.0)}, "mask for 'array' must be boolean, integer"),
        ({"labels": [0, 1]}, r"labels must give one integer label >= -1 per slide \(1\)"),
    ],
)
def test_grid_errors_name_the_argument(kwargs, match):
    with pytest.raises(InvalidArgumentError, match=match):
        gigapatch.grid(_image(40, 60), 10, **kwargs)


def test_one_mask_array_for_many_slides_is_refused():
    images = [_image(40, 60), _image(40, 60)]
    with pytest.raises(InvalidArgumentError, match="mask: one map for 2 slides is ambiguous"):
        gigapatch.grid(images, 10, mask=np.ones((4, 6)))
    with pytest.raises(InvalidArgumentError, match=r"one entry per slide \(2\) when a list; got 1"):
        gigapatch.grid(images, 10, mask=[np.ones((4, 6))])
    plan = gigapatch.grid(images, 10, mask=[np.ones((4, 6)), None])
    assert np.isnan(plan.tissue[plan.slide == 1]).all()
    assert (plan.tissue[plan.slide == 0] == 1).all()
