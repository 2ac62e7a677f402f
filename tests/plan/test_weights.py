"""Weight maps of any shape: stretched over the slide, cells ∝ weight, centres uniform in a cell.

The rule under test: a map of shape (m, n) over a slide of level-0 size (H, W) gives cell
(i, j) the rows ``⌊i·H/m⌋ … ⌊(i+1)·H/m⌋`` and columns ``⌊j·W/n⌋ … ⌊(j+1)·W/n⌋`` (ends
excluded); a patch's centre pixel (offset ``⌊h/2⌋, ⌊w/2⌋`` from its top-left) is uniform
over the drawn cell's pixels, then the window is shifted to fit. The tests map patches back
to cells with their own reading of the rule (plain Python integers), not the package's.
"""

import os
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import chisquare

import gigapatch
import gigapatch.testing
from gigapatch.errors import InvalidArgumentError
from gigapatch.plan.masks import cell_edges, cell_of, footprint_fraction, tissue_mask
from gigapatch.plan.saliency import tissue_density


def _image(h, w):
    return gigapatch.open(np.zeros((h, w, 3), np.uint8))


def _huge(h, w):
    """An array-backed slide of any size that holds no memory (planning reads no pixel)."""
    return gigapatch.open(np.broadcast_to(np.zeros((1, 1, 3), np.uint8), (h, w, 3)))


def _edges(cells, pixels):
    """Cell edges by the rule, in Python integers."""
    return np.array([i * pixels // cells for i in range(cells + 1)], np.int64)


def _check_proportional(plan, weights, slide_shape, down=1):
    """Every patch whole and inside; the cells of its centres ∝ weights (chi-square)."""
    h0, w0 = plan.size[0] * down, plan.size[1] * down
    assert plan.y.min() >= 0 and plan.x.min() >= 0
    assert (plan.y + h0).max() <= slide_shape[0] and (plan.x + w0).max() <= slide_shape[1]
    cy, cx = plan.y + h0 // 2, plan.x + w0 // 2
    ci = np.searchsorted(_edges(weights.shape[0], slide_shape[0]), cy, side="right") - 1
    cj = np.searchsorted(_edges(weights.shape[1], slide_shape[1]), cx, side="right") - 1
    counts = np.bincount(ci * weights.shape[1] + cj, minlength=weights.size)
    zero = weights.ravel() == 0
    assert counts[zero].sum() == 0  # zero-weight cells are never drawn
    expected = weights.ravel()[~zero] / weights.sum() * len(plan)
    assert expected.min() >= 5  # chi-square needs it
    assert chisquare(counts[~zero], expected).pvalue > 1e-3
    return counts


def _map(shape, seed, zeros=0.15):
    rng = np.random.default_rng(seed)
    w = rng.uniform(0.3, 3.0, shape) * (rng.random(shape) > zeros)
    w.flat[0] = 1.0  # never all zero
    return w


@pytest.mark.parametrize("size", [1, (16, 9), (15, 24)])
def test_seed_scenario_a_10x10_map_over_a_301x257_image(size):
    weights = _map((10, 10), seed=0)
    plan = gigapatch.random(_image(301, 257), size, 40_000, seed=1, weights=weights)
    assert plan.kind == "weighted" and len(plan) == 40_000
    _check_proportional(plan, weights, (301, 257))


def test_a_10x10_map_over_a_synthetic_slide_at_level_0_and_1(slide_path):
    slide = gigapatch.open(slide_path)  # 1800 x 2600, levels at downsample 1 and 4
    weights = _map((10, 10), seed=2)
    level0 = gigapatch.random(slide, (64, 96), 30_000, seed=3, weights=weights)
    _check_proportional(level0, weights, slide.shape)
    # at level 1 the centre snaps to the level's pixel grid; cell edges (multiples of 180 and
    # 260) are multiples of 4 here, so the snapped centre stays in the drawn cell
    level1 = gigapatch.random(slide, (16, 24), 30_000, seed=3, weights=weights, level=1)
    assert level1.level == 1
    _check_proportional(level1, weights, slide.shape, down=4)


def test_a_10x10_map_over_a_40x_sized_array_backed_slide():
    slide = _huge(77_311, 101_789)  # the size and aspect of a 40x scan; odd sides
    weights = _map((10, 10), seed=4)
    plan = gigapatch.random(slide, 256, 40_000, seed=5, weights=weights)
    _check_proportional(plan, weights, slide.shape)


@pytest.mark.parametrize(
    ("shape", "image", "size"),
    [
        ((1, 7), (301, 257), (31, 7)),
        ((13, 2), (301, 257), (9, 40)),
        ((7, 11), (100, 100), (5, 3)),  # divides neither side
        ((4, 40), (100, 100), 1),  # an aspect ratio far from the slide's
        ((37, 250), (301, 257), 1),  # cells of 1 or 2 columns
        ((301, 257), (301, 257), 1),  # one cell per pixel
    ],
)
def test_maps_of_any_shape_are_stretched_over_the_slide(shape, image, size):
    weights = _map(shape, seed=sum(shape))
    n = max(20_000, int(12 * weights.size / (weights[weights > 0].min() / weights.mean())))
    plan = gigapatch.random(_image(*image), size, n, seed=6, weights=weights)
    _check_proportional(plan, weights, image)


@pytest.mark.parametrize(("shape", "image"), [((2, 3), (7, 11)), ((3, 1), (10, 4))])
def test_the_centre_is_uniform_over_the_pixels_of_its_cell(shape, image):
    weights = np.arange(1.0, shape[0] * shape[1] + 1).reshape(shape)
    plan = gigapatch.random(_image(*image), 1, 60_000, seed=7, weights=weights)
    ey, ex = _edges(shape[0], image[0]), _edges(shape[1], image[1])
    # each pixel's expected share: its cell's weight spread evenly over the cell's pixels
    per_pixel = np.repeat(np.repeat(weights / np.outer(np.diff(ey), np.diff(ex)),
                                    np.diff(ey), axis=0), np.diff(ex), axis=1)
    assert per_pixel.shape == image
    counts = np.bincount(plan.y * image[1] + plan.x, minlength=per_pixel.size)
    assert chisquare(counts, per_pixel.ravel() / per_pixel.sum() * len(plan)).pvalue > 1e-3


def test_a_patch_at_an_edge_cell_is_shifted_to_fit_never_clipped():
    weights = np.zeros((3, 5))
    weights[2, 4] = 1.0  # the bottom-right cell: rows 66..99, columns 80..99 of 100 x 100
    plan = gigapatch.random(_image(100, 100), (40, 30), 2_000, seed=8, weights=weights)
    # centre pixel uniform over rows 66..99 -> top-left 46..79, shifted to at most 60
    assert plan.y.min() == 46 and plan.y.max() == 60 and plan.x.max() == 70
    assert np.mean(plan.y == 60) > 0.5  # every centre at or below row 80 lands on the edge
    assert (plan.y + 40).max() == 100 and (plan.x + 30).max() == 100


def test_a_map_with_more_cells_than_pixels_is_an_error_not_empty_cells():
    with pytest.raises(InvalidArgumentError, match=r"weights for 'array' must have no more "
                       r"cells than the slide has level-0 pixels along each axis \(30x40\); "
                       r"got shape 31x4"):
        gigapatch.random(_image(30, 40), 1, 5, seed=0, weights=np.ones((31, 4)))
    with pytest.raises(InvalidArgumentError, match=r"mask for 'array' .* got shape 2x41"):
        gigapatch.random(_image(30, 40), 1, 5, seed=0, mask=np.ones((2, 41)))


@pytest.mark.parametrize(
    ("weights", "match"),
    [
        (np.array([[1.0, np.nan, 2.0]]),
         r"weights for 'array' must be finite; got NaN at cell \(0, 1\) \(1 non-finite"),
        (np.array([[1.0], [np.inf]]), r"weights for 'array' must be finite; got inf at cell"),
        (np.array([[0.5, -0.25]]), r"weights for 'array' must be non-negative; got minimum -0.25"),
        (np.zeros((3, 7)), r"weights for 'array' must not be all zero .* 3x7 map of zeros"),
        (np.zeros((1, 1), bool), "weights for 'array' must not be all zero"),
    ],
)
def test_nan_inf_negative_and_all_zero_weights_are_errors(weights, match):
    with pytest.raises(InvalidArgumentError, match=match):
        gigapatch.random(_image(301, 257), 8, 10, seed=0, weights=weights)


def test_huge_finite_weights_do_not_overflow():
    weights = np.full((2, 2), 1e308)
    weights[0, 0] = 0.0
    plan = gigapatch.random(_image(20, 20), 1, 3_000, seed=9, weights=weights)
    assert not ((plan.y < 10) & (plan.x < 10)).any()
    assert np.bincount((plan.y // 10) * 2 + plan.x // 10, minlength=4)[1:].min() > 900


@settings(max_examples=300, deadline=None)
@given(
    pixels=st.integers(1, 3_000),
    data=st.data(),
)
def test_cells_tile_the_axis_exactly(pixels, data):
    cells = data.draw(st.integers(1, pixels), label="cells")
    edges = cell_edges(cells, pixels)
    assert edges.tolist() == _edges(cells, pixels).tolist()
    assert edges[0] == 0 and edges[-1] == pixels
    widths = np.diff(edges)
    assert widths.min() >= 1  # no empty cell when cells <= pixels
    assert set(widths.tolist()) <= {pixels // cells, -(-pixels // cells)}
    # every pixel in exactly one cell: the cells, laid end to end, are the axis
    owner = np.repeat(np.arange(cells), widths)
    assert len(owner) == pixels
    assert np.array_equal(cell_of(np.arange(pixels), cells, pixels), owner)


@settings(max_examples=200, deadline=None)
@given(pixels=st.integers(1, 10**9), data=st.data())
def test_cell_of_inverts_cell_edges_on_huge_axes(pixels, data):
    cells = data.draw(st.integers(1, min(pixels, 10**6)), label="cells")
    i = np.array(data.draw(st.lists(st.integers(0, cells - 1), min_size=1, max_size=20)))
    first, end = i * pixels // cells, (i + 1) * pixels // cells
    assert np.array_equal(cell_edges(cells, pixels)[i], first)
    assert np.array_equal(cell_of(first, cells, pixels), i)
    assert np.array_equal(cell_of(end - 1, cells, pixels), i)


def test_more_cells_than_pixels_leaves_empty_cells_which_maps_refuse():
    edges = cell_edges(5, 3)  # the helper itself is total; check_map refuses such maps
    assert edges.tolist() == [0, 0, 1, 1, 2, 3] and (np.diff(edges) == 0).sum() == 2


@settings(max_examples=150, deadline=None)
@given(
    h=st.integers(1, 60),
    w=st.integers(1, 60),
    size=st.tuples(st.integers(1, 12), st.integers(1, 12)),
    data=st.data(),
)
def test_patches_are_inside_and_centred_in_weighted_cells_unless_at_an_edge(h, w, size, data):
    size = (min(size[0], h), min(size[1], w))
    m, n = data.draw(st.integers(1, h), label="m"), data.draw(st.integers(1, w), label="n")
    weights = np.array(data.draw(st.lists(st.sampled_from([0.0, 0.5, 2.0]),
                                          min_size=m * n, max_size=m * n))).reshape(m, n)
    weights.flat[data.draw(st.integers(0, m * n - 1), label="one")] = 1.0
    plan = gigapatch.random(_image(h, w), size, 200, seed=10, weights=weights)
    assert (plan.y >= 0).all() and (plan.y + size[0] <= h).all()
    assert (plan.x >= 0).all() and (plan.x + size[1] <= w).all()
    cy, cx = plan.y + size[0] // 2, plan.x + size[1] // 2
    ci = np.searchsorted(_edges(m, h), cy, side="right") - 1
    cj = np.searchsorted(_edges(n, w), cx, side="right") - 1
    at_edge = (plan.y == 0) | (plan.x == 0) | (plan.y + size[0] == h) | (plan.x + size[1] == w)
    assert (weights[ci, cj] > 0)[~at_edge].all()


def _expand(mask, shape0):
    """The mask as a level-0 image, by the rule."""
    ey, ex = _edges(mask.shape[0], shape0[0]), _edges(mask.shape[1], shape0[1])
    return np.repeat(np.repeat(mask, np.diff(ey), axis=0), np.diff(ex), axis=1)


@settings(max_examples=150, deadline=None)
@given(
    h=st.integers(1, 50),
    w=st.integers(1, 50),
    extent=st.tuples(st.integers(1, 20), st.integers(1, 20)),
    data=st.data(),
)
def test_footprint_fraction_is_the_exact_mean_of_the_stretched_mask(h, w, extent, data):
    m, n = data.draw(st.integers(1, h), label="m"), data.draw(st.integers(1, w), label="n")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    mask = rng.random((m, n)) * (rng.random((m, n)) > 0.4)
    y, x = rng.integers(-extent[0], h + 1, 30), rng.integers(-extent[1], w + 1, 30)
    got = footprint_fraction(mask, (h, w), y, x, extent)
    pad = np.zeros((h + 2 * extent[0], w + 2 * extent[1]))
    pad[extent[0] : extent[0] + h, extent[1] : extent[1] + w] = _expand(mask, (h, w))
    expected = [pad[a + extent[0] : a + 2 * extent[0], b + extent[1] : b + 2 * extent[1]].mean()
                for a, b in zip(y, x, strict=True)]
    assert np.allclose(got, expected, atol=1e-6)


def test_a_mask_of_another_aspect_ratio_filters_a_grid_by_the_rule():
    mask = np.zeros((3, 2), bool)
    mask[1, 1] = True  # rows 33..65, columns 150..299 of a 100 x 300 slide
    slide = _image(100, 300)
    plan = gigapatch.grid(slide, 10, mask=mask, min_tissue=1.0)
    assert sorted(set(plan.y.tolist())) == [40, 50] and sorted(set(plan.x.tolist())) == list(
        range(150, 300, 10))
    some = gigapatch.grid(slide, 10, mask=mask, min_tissue=0.01)
    assert set(some.y.tolist()) == {30, 40, 50, 60}
    assert np.allclose(some.tissue[some.y == 30], 0.7) and np.allclose(some.tissue[some.y == 60],
                                                                       0.6)


def test_tissue_weights_on_a_non_square_slide_follow_the_rule(slide_path):
    slide = gigapatch.open(slide_path)  # 1800 x 2600; the mask is its 450 x 650 level 1
    levels = []
    real = slide._reader.read_level

    def spy(level, y, x, out):
        levels.append(level)
        return real(level, y, x, out)

    slide._reader.read_level = spy
    density = tissue_density(slide, mask=tissue_mask(slide))
    plan = gigapatch.random(slide, 64, 3_000, seed=11, weights="tissue", min_tissue=0.25)
    assert levels and 0 not in levels  # a plan reads no level-0 pixel
    assert density.shape == (450, 650) and (plan.tissue >= 0.25).all()
    inside = (plan.y > 0) & (plan.x > 0) & (plan.y + 64 < 1800) & (plan.x + 64 < 2600)
    ci = np.searchsorted(_edges(450, 1800), plan.y + 32, side="right") - 1
    cj = np.searchsorted(_edges(650, 2600), plan.x + 32, side="right") - 1
    assert inside.mean() > 0.9 and (density[ci, cj] > 0)[inside].all()
    # a map of another shape and aspect over the same slide: 7 x 5 blocks of the density
    blocks = density[: 450 // 7 * 7].reshape(7, 450 // 7, 5, 650 // 5).mean((1, 3))
    blocks += 0.05 * blocks.max()  # every block drawable, for the chi-square
    coarse = gigapatch.random(slide, 64, 5_000, seed=12, weights=blocks)
    _check_proportional(coarse, blocks, slide.shape)


def _keras():
    if "keras" not in sys.modules:
        os.environ.setdefault("KERAS_BACKEND", "torch")
    return pytest.importorskip("keras")


@pytest.mark.slow
def test_an_xception_feature_map_weights_a_301x257_image_as_it_is():
    keras = _keras()
    keras.utils.set_random_seed(0)
    net = keras.applications.Xception(include_top=False, weights=None, input_shape=(None, None, 3))
    image = gigapatch.testing.sample_rgb(301, 257, seed=1)
    act = net(image[None].astype(np.float32) / 127.5 - 1.0, training=False)
    act = act.detach().cpu().numpy() if hasattr(act, "detach") else np.asarray(act)
    weights = act[0].mean(axis=-1).astype(np.float64)  # block14_sepconv2_act, one cell per 32 px
    assert weights.shape == (10, 8) and (weights > 0).any()
    weights = weights / weights.max() + 0.05  # keep every cell drawable for the chi-square
    plan = gigapatch.random(gigapatch.open(image), 16, 30_000, seed=13, weights=weights)
    _check_proportional(plan, weights, (301, 257))
