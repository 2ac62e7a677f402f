"""Random and weighted plans: inside, uniform, proportional to weights, deterministic."""

import numpy as np
import pytest
from scipy.stats import chisquare

import gigapatch
from gigapatch.errors import InvalidArgumentError
from gigapatch.plan.sampling import allocate


def _image(h, w):
    return gigapatch.open(np.zeros((h, w, 3), np.uint8))


def test_every_random_patch_is_whole_and_inside():
    plan = gigapatch.random(_image(50, 70), (13, 21), 2000, seed=1)
    assert len(plan) == 2000 and plan.kind == "random" and plan.seed == 1
    assert plan.y.min() >= 0 and plan.x.min() >= 0
    assert (plan.y + 13).max() <= 50 and (plan.x + 21).max() <= 70
    assert plan.tissue is None and plan.stride == (13, 21)


def test_random_top_left_corners_are_uniform_over_every_fitting_position():
    h, w, size = 20, 30, (5, 7)
    ny, nx = h - size[0] + 1, w - size[1] + 1  # 16 x 24 positions, the extremes included
    plan = gigapatch.random(_image(h, w), size, 100 * ny * nx, seed=7)
    counts = np.bincount(plan.y * nx + plan.x, minlength=ny * nx)
    assert len(counts) == ny * nx and counts.min() > 0
    assert chisquare(counts).pvalue > 1e-3


def test_same_seed_same_plan_other_seed_other_plan():
    a = gigapatch.random(_image(300, 400), 32, 500, seed=3)
    b = gigapatch.random(_image(300, 400), 32, 500, seed=3)
    c = gigapatch.random(_image(300, 400), 32, 500, seed=4)
    assert np.array_equal(a.y, b.y) and np.array_equal(a.x, b.x)
    assert not (np.array_equal(a.y, c.y) and np.array_equal(a.x, c.x))
    fresh = gigapatch.random(_image(300, 400), 32, 5)
    assert isinstance(fresh.seed, int)  # drawn, recorded: the plan can be made again
    again = gigapatch.random(_image(300, 400), 32, 5, seed=fresh.seed)
    assert np.array_equal(fresh.y, again.y)


def test_each_slide_draws_from_its_own_spawned_stream():
    one, two = _image(300, 400), _image(200, 500)
    both = gigapatch.random([one, two], 32, 100, seed=11, per_slide=True)
    alone = gigapatch.random([one], 32, 100, seed=11)
    assert np.array_equal(both.y[both.slide == 0], alone.y)
    # slide 1's patches depend on its index only, not on slide 0
    other = gigapatch.random([_image(300, 400), two], 32, 100, seed=11, per_slide=True)
    assert np.array_equal(other.x[other.slide == 1], both.x[both.slide == 1])


def test_patches_are_sorted_by_tile_band_then_x():
    plan = gigapatch.random(_image(300, 400), 16, 400, seed=0)
    band = plan.y // 300  # an in-memory image is one tile
    key = np.stack([band, plan.x], 1)
    assert (np.diff(key[:, 0]) >= 0).all() and (np.diff(plan.x) >= 0).all()


def test_weighted_cells_are_drawn_in_proportion_and_zero_cells_never():
    rng = np.random.default_rng(5)
    weights = rng.random((5, 6)) * (rng.random((5, 6)) > 0.3)
    weights[0, 0], weights[4, 5] = 0.0, 3.0
    n = 60000
    plan = gigapatch.random(_image(100, 120), 1, n, seed=2, weights=weights)
    assert plan.kind == "weighted"
    cells = (plan.y // 20) * 6 + plan.x // 20
    counts = np.bincount(cells, minlength=30)
    zero = weights.ravel() == 0
    assert counts[zero].sum() == 0
    expected = weights.ravel()[~zero] / weights.sum() * n
    assert chisquare(counts[~zero], expected).pvalue > 1e-3


def test_weighted_patches_are_whole_near_heavy_edges():
    weights = np.zeros((10, 10))
    weights[0, 0] = weights[9, 9] = 1.0  # all the weight in two corner cells
    plan = gigapatch.random(_image(100, 100), 40, 1000, seed=0, weights=weights)
    assert plan.y.min() == 0 and (plan.y + 40).max() == 100
    assert set(zip(plan.y.tolist(), plan.x.tolist(), strict=True)) == {(0, 0), (60, 60)}


def test_weights_may_be_a_callable_of_the_slide():
    calls = []

    def right_half(slide):
        calls.append(slide.name)
        m = np.zeros((8, 8))
        m[:, 4:] = 1
        return m

    plan = gigapatch.random(_image(80, 80), 10, 300, seed=1, weights=right_half)
    assert calls == ["array"] and plan.x.min() >= 35 and plan.params()["weights"] == "right_half"


@pytest.mark.parametrize(
    ("weights", "match"),
    [
        (np.array([[1.0, np.nan], [1.0, 1.0]]), r"must be finite; got NaN at cell \(0, 1\)"),
        (np.array([[1.0, 1.0], [-np.inf, 1.0]]), r"must be finite; got -inf at cell \(1, 0\)"),
        (np.array([[1.0, -1.0], [1.0, 1.0]]), r"non-negative; got minimum -1 at cell \(0, 1\)"),
        (np.zeros((4, 4)), "weights for 'array' must not be all zero .*got a 4x4 map of zeros"),
        (np.ones((4, 4, 3)), "must be a non-empty 2-d numeric map; got shape"),
        (np.ones((0, 4)), "must be a non-empty 2-d numeric map"),
        (np.ones((101, 40)), r"no more cells .* along each axis \(100x100\); got shape 101x40"),
        (np.ones((200, 200)), "no more cells than .*; got shape 200x200"),
        ("saliency", "weights must be None, 'tissue', an array, a map file or a callable"),
        (lambda slide: np.full((3, 3), np.inf), "weights for 'array' must be finite"),
    ],
)
def test_bad_weights_are_clear_errors(weights, match):
    with pytest.raises(InvalidArgumentError, match=match):
        gigapatch.random(_image(100, 100), 10, 5, seed=0, weights=weights)


def test_without_replacement_positions_are_distinct():
    plan = gigapatch.random(_image(20, 20), 10, 121, seed=0, replace=False)  # every position
    assert len(set(zip(plan.y.tolist(), plan.x.tolist(), strict=True))) == 121
    with pytest.raises(InvalidArgumentError, match="122 distinct patches of 10x10 do not fit"):
        gigapatch.random(_image(20, 20), 10, 122, seed=0, replace=False)
    weights = np.zeros((2, 2))
    weights[0, 0] = 1
    # the one weighted cell holds 10 x 10 centre pixels, 5 x 5 top-left corners once shifted
    with pytest.raises(InvalidArgumentError, match=r"only 25 of 40 .* distinct positions"):
        gigapatch.random(_image(20, 20), 10, 40, seed=0, replace=False, weights=weights)


def test_min_tissue_rejects_draws_and_records_the_fraction():
    mask = np.zeros((10, 10), bool)
    mask[:, :5] = True
    plan = gigapatch.random(_image(100, 100), 20, 500, seed=3, mask=mask, min_tissue=0.75)
    assert (plan.tissue >= 0.75).all() and (plan.x + 20 <= 65).all()
    kept = plan.tissue
    assert kept.dtype == np.float32 and len(kept) == 500
    recorded = gigapatch.random(_image(100, 100), 20, 500, seed=3, mask=mask)
    assert recorded.tissue.min() == 0 and recorded.tissue.max() == 1
    # recording the fraction alone does not change the draws
    unmasked = gigapatch.random(_image(100, 100), 20, 500, seed=3)
    assert np.array_equal(recorded.y, unmasked.y) and np.array_equal(recorded.x, unmasked.x)
    with pytest.raises(InvalidArgumentError, match=r"could draw only 0 of 5 patches .* >= 1"):
        gigapatch.random(_image(100, 100), 20, 5, seed=3, mask=mask * 0.5, min_tissue=1.0)


def test_n_is_split_over_slides_or_balanced_over_classes():
    assert allocate(10, 3, [], per_slide=False, balance=False) == [4, 3, 3]
    assert allocate(10, 3, [], per_slide=True, balance=False) == [10, 10, 10]
    # two classes: 5 patches each; class 0 has three slides, class 1 one
    assert allocate(10, 4, [0, 0, 1, 0], per_slide=False, balance=True) == [2, 2, 5, 1]
    slides = [_image(100, 100) for _ in range(4)]
    plan = gigapatch.random(slides, 10, 10, seed=0, labels=[0, 0, 1, 0], balance=True)
    assert np.bincount(plan.label).tolist() == [5, 5]
    assert plan.params()["labels"] == [0, 0, 1, 0]
    with pytest.raises(InvalidArgumentError, match="balance=True needs a class label >= 0"):
        gigapatch.random(slides, 10, 10, seed=0, balance=True)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n": 0}, "n must be at least 1; got 0"),
        ({"n": 2.5}, "n must be an integer; got 2.5"),
        ({"seed": -1}, "seed must be a non-negative integer or None; got -1"),
        ({"size": 200}, r"size 200x200 does not fit in 'array' at level 0 \(100x100"),
        ({"min_tissue": -0.1}, r"min_tissue must be a number in \[0, 1\]"),
        ({"level": 2}, r"level must be in the range \[0, 0\]"),
    ],
)
def test_random_errors_name_the_argument(kwargs, match):
    args = {"size": 10, "n": 5, "seed": 0, **kwargs}
    with pytest.raises(InvalidArgumentError, match=match):
        gigapatch.random(_image(100, 100), **args)


def test_balance_needs_a_class_for_every_slide():
    images = [_image(128, 128)] * 3
    with pytest.raises(InvalidArgumentError, match=r"got \[0, 0, -1\]"):
        gigapatch.random(images, 16, 9, seed=0, labels=[0, 0, -1], balance=True)
