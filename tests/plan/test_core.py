import numpy as np
import pytest

import gigapatch
from gigapatch.errors import InvalidArgumentError, parse_pair


def _blank(h, w):
    return gigapatch.open(np.zeros((h, w, 1), np.uint8))


def test_stride_defaults_to_size_and_plan_records_parameters():
    plan = gigapatch.grid(_blank(100, 70), 30)
    assert plan.stride == (30, 30) and len(plan) == 3 * 2
    assert plan.params() == {
        "kind": "grid",
        "level": 0,
        "size": [30, 30],
        "stride": [30, 30],
        "padding": "valid",
        "dilation": [1, 1],
        "fill": 0,
        "seed": None,
        "count": 6,
        "levels": [0],
        "factors": [],
        "labels": [],
        "classes": [],
        "mpp": None,
        "magnification": None,
        "mpp_tolerance": 0.02,
        "target_mpp": None,
        "min_tissue": 0.0,
        "mask": None,
    }


def test_grid_at_a_lower_level_is_in_level0_pixels(square_path):
    slide = gigapatch.open(square_path)
    plan = gigapatch.grid(slide, 128, level=1)
    assert len(plan) == 16
    assert sorted(set(plan.y.tolist())) == [0, 512, 1024, 1536]


def test_many_slides_are_indexed_in_order():
    plan = gigapatch.grid([_blank(20, 20), _blank(10, 30)], 10)
    assert plan.slide.tolist() == [0, 0, 0, 0, 1, 1, 1]


def test_coords_are_the_level0_corners_a_store_records(tmp_path):
    slide = _blank(40, 50)
    plan = gigapatch.random(slide, 10, 7, seed=1)
    assert plan.coords.shape == (7, 2) and plan.coords.dtype == np.int64
    assert plan.coords[:, 0].tolist() == plan.y.tolist()
    assert plan.coords[:, 1].tolist() == plan.x.tolist()
    store = gigapatch.extract_to_zarr(slide, plan, tmp_path / "p.zarr")
    assert np.array_equal(store.coords, plan.coords)
    assert gigapatch.grid(_blank(5, 5), 10, padding="valid", on_error="skip").coords.shape \
        == (0, 2)


def test_rows_is_a_sub_plan():
    plan = gigapatch.grid(_blank(40, 40), 10)
    sub = plan.rows(3, 7)
    assert len(sub) == 4 and sub.x.tolist() == plan.x[3:7].tolist() and sub.size == plan.size


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (0, "size must be at least 1; got 0"),
        ((3, -1), r"size must be at least 1; got \(3, -1\)"),
        ((1, 2, 3), "size must be an integer or a pair"),
        ("7", "size must be an integer or a pair"),
        (2.5, "size must be an integer or a pair"),
        (True, "size must be an integer or a pair"),
    ],
)
def test_parse_pair_names_the_argument(value, match):
    with pytest.raises(InvalidArgumentError, match=match):
        parse_pair("size", value)


def test_grid_errors_name_the_problem():
    with pytest.raises(
        InvalidArgumentError, match=r"size 50x50 does not fit in 'array' at level 0 \(40x40"
    ):
        gigapatch.grid(_blank(40, 40), 50)
    with pytest.raises(InvalidArgumentError, match="stride must be at least 1"):
        gigapatch.grid(_blank(40, 40), 10, 0)
    with pytest.raises(InvalidArgumentError, match=r"level must be in the range \[0, 0\]"):
        gigapatch.grid(_blank(40, 40), 10, level=1)
    with pytest.raises(InvalidArgumentError, match="at least one slide"):
        gigapatch.grid([], 10)
