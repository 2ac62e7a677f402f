"""Polygons to masks and footprint coverage, against independent references."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from skimage.draw import polygon as sk_polygon

from gigapatch.plan.annotations import Region
from gigapatch.plan.annotations.coverage import MIN_SIDE, TILE, Coverage, mask_scale
from gigapatch.plan.annotations.points import RingIndex
from gigapatch.plan.annotations.raster import NONE, fill, paint
from tests.plan.annotations.reference import inside

rings = st.integers(3, 40).flatmap(
    lambda n: st.lists(st.tuples(st.floats(-20, 140), st.floats(-20, 140)), min_size=n,
                       max_size=n)
)


def _off_edges(ring, y, x, eps=1e-7):
    """Points farther than ``eps`` from every edge (on an edge, rounding decides)."""
    far = np.ones(y.shape, bool)
    for a, b in zip(ring, np.roll(ring, -1, axis=0), strict=True):
        d = b - a
        t = np.clip(((x - a[0]) * d[0] + (y - a[1]) * d[1]) / max(d @ d, 1e-300), 0, 1)
        far &= np.hypot(x - a[0] - t * d[0], y - a[1] - t * d[1]) > eps
    return far


@settings(max_examples=60, deadline=None)
@given(rings, st.sampled_from([0.5, 1.0, 2.5]))
def test_fill_is_the_even_odd_rule_at_pixel_centres(points, s):
    ring = np.array(points, np.float64)
    h, w = 64, 48
    window = (3, -2, h, w)  # an offset window, partly outside the grid
    got = fill(ring, s, window)
    ii, jj = np.mgrid[0:h, 0:w]
    cy, cx = (ii + window[0] + 0.5) * s, (jj + window[1] + 0.5) * s
    far = _off_edges(ring, cy, cx)
    assert np.array_equal(got[far], inside(ring, cy, cx)[far])
    points_test = RingIndex(ring).contains(cy.ravel(), cx.ravel()).reshape(h, w)
    assert np.array_equal(got[far], points_test[far])


def test_fill_agrees_with_scikit_image_polygon():
    rng = np.random.default_rng(5)
    for _ in range(10):
        ring = rng.uniform(0, 100, (rng.integers(3, 25), 2))
        ref = np.zeros((100, 100), bool)
        rr, cc = sk_polygon(ring[:, 1] - 0.5, ring[:, 0] - 0.5, (100, 100))
        ref[rr, cc] = True
        assert np.array_equal(fill(ring, 1.0, (0, 0, 100, 100)), ref)


def test_point_index_bands_a_long_outline_and_still_agrees():
    t = np.linspace(0, 2 * np.pi, 3000, endpoint=False)
    r = 400 + 60 * np.sin(7 * t)
    ring = np.stack([500 + r * np.cos(t), 500 + r * np.sin(t)], 1)
    index = RingIndex(ring)
    assert index.bands > 10
    pts = np.random.default_rng(0).uniform(0, 1000, (20000, 2))
    assert np.array_equal(index.contains(pts[:, 0], pts[:, 1]), inside(ring, pts[:, 0], pts[:, 1]))


def _square(x0, y0, x1, y1):
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float64)


def test_smaller_regions_win_and_holes_show_what_lies_under():
    big = Region("stroma", _square(0, 0, 100, 100), (_square(60, 60, 80, 80),))
    small = Region("tumor", _square(10, 10, 40, 40))
    inner = Region("necrosis", _square(20, 20, 30, 30))
    wide = Region("fat", _square(50, 0, 100, 100))  # larger than big's hole, smaller than big
    labels = paint([inner, big, small, wide], [2, 0, 1, 3], 1.0, (0, 0, 100, 100))
    assert labels[25, 25] == 2 and labels[15, 15] == 1 and labels[5, 5] == 0
    assert labels[70, 70] == 3  # big's hole shows the region under it, not nothing
    assert labels[70, 20] == 0
    alone = paint([big], [0], 1.0, (0, 0, 100, 100))
    assert alone[70, 70] == NONE and alone[50, 50] == 0
    # the order given does not matter
    again = paint([wide, small, big, inner], [3, 1, 0, 2], 1.0, (0, 0, 100, 100))
    assert np.array_equal(labels, again)


def test_a_larger_region_drawn_later_does_not_cover_a_smaller_one():
    small = Region("tumor", _square(10, 10, 20, 20))
    big = Region("stroma", _square(0, 0, 50, 50))
    assert paint([small, big], [1, 0], 1.0, (0, 0, 50, 50))[15, 15] == 1


def test_the_mask_cell_gives_a_patch_at_least_16_cells_a_side():
    assert mask_scale((256, 512)) == 256 / MIN_SIDE
    cov = Coverage([Region("a", _square(0, 0, 10, 10))], [0], 1, (100_000, 100_000), (256, 256))
    assert cov.grid == (6250, 6250) and cov.s == 16


def _brute(regions, labels, classes, shape0, footprint, y, x):
    """Coverage from a full-slide mask at the same cell, by exact cell overlap."""
    s = mask_scale(footprint)
    mh, mw = int(np.ceil(shape0[0] / s)), int(np.ceil(shape0[1] / s))
    lab = paint(regions, labels, s, (0, 0, mh, mw))
    out = np.zeros((len(y), classes))
    edges_y, edges_x = np.arange(mh + 1) * s, np.arange(mw + 1) * s
    for n, (y0, x0) in enumerate(zip(y, x, strict=True)):
        oy = np.clip(np.minimum(edges_y[1:], y0 + footprint[0])
                     - np.maximum(edges_y[:-1], y0), 0, None)
        ox = np.clip(np.minimum(edges_x[1:], x0 + footprint[1])
                     - np.maximum(edges_x[:-1], x0), 0, None)
        weight = oy[:, None] * ox[None, :]
        for k in range(classes):
            out[n, k] = (weight * (lab == k)).sum() / (footprint[0] * footprint[1])
    return out


def test_coverage_is_the_exact_cell_overlap_of_the_mask():
    regions = [Region("a", np.array([[30, 20], [400, 60], [260, 380], [40, 300]], float)),
               Region("b", _square(200, 100, 330, 220)),
               Region("a", _square(500, 500, 560, 700), (_square(520, 560, 540, 600),))]
    labels = [0, 1, 0]
    shape0, footprint = (800, 700), (40, 56)
    rng = np.random.default_rng(2)
    y = rng.integers(-20, 780, 300)
    x = rng.integers(-20, 680, 300)
    got = Coverage(regions, labels, 2, shape0, footprint)(y, x)  # many: integral images
    want = _brute(regions, labels, 2, shape0, footprint, y, x)
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert got.sum(axis=1).max() <= 1 + 1e-6
    few = Coverage(regions, labels, 2, shape0, footprint)(y[:20], x[:20])  # few: cell by cell
    np.testing.assert_allclose(few, want[:20], atol=1e-5)
    assert (want[:20] > 0).any() and (want[:20] < 1).any()


def test_coverage_paints_only_tiles_near_regions():
    # a 2-million-pixel-wide slide: the grid (125,000² cells) is never held, only one tile is
    regions = [Region("a", _square(1_000_000, 1_000_000, 1_000_400, 1_000_400))]
    cov = Coverage(regions, [0], 1, (2_000_000, 2_000_000), (256, 256))
    y = np.array([1_000_100, 10, 1_999_000, 1_000_000])
    x = np.array([1_000_100, 10, 10, 1_000_000])
    frac = cov(y, x)
    assert frac[:, 0].tolist() == pytest.approx([1.0, 0.0, 0.0, 1.0])
    assert cov.painted == 1
    assert cov.window(0, 0)[2] == TILE + cov.halo
