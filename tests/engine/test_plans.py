"""The engine on the new plans: SAME padding, dilation, per-slide levels, labels, tissue."""

import numpy as np
import pytest
import zarr

import gigapatch
from gigapatch.errors import InvalidArgumentError
from gigapatch.synth import synthesize


@pytest.fixture(scope="module")
def coarse_path(tmp_path_factory):
    """A slide from a 'different scanner': 1.0 µm pixels at level 0 (one level)."""
    return synthesize(tmp_path_factory.mktemp("scanners") / "coarse.svs", 640, seed=5, mpp=1.0)


def _dilated(slide, y, x, size, rate, level, fill):
    """Reference patch: read the whole span with fill, keep every rate-th pixel."""
    span = [(k - 1) * r + 1 for k, r in zip(size, rate, strict=True)]
    region = slide.read(y, x, span[0], span[1], level=level, fill=fill)
    return region[:: rate[0], :: rate[1]]


def test_same_padding_and_dilation_through_the_store(square_path, tmp_path):
    slide = gigapatch.open(square_path)
    plan = gigapatch.grid(
        slide, (40, 30), (70, 90), padding="same", dilation=(3, 2), level=1, fill=17
    )
    assert plan.y.min() == -48 * 4 and (plan.y // 4 + 118 > 512).any()  # pads 48 + 48 rows
    store = gigapatch.extract_to_zarr(slide, plan, tmp_path / "p.zarr", shard_size=7)
    assert store.verify() == [] and store.plan["padding"] == "same"
    assert store.plan["dilation"] == [3, 2] and store.plan["fill"] == 17
    images = store[:]
    for i in range(len(plan)):
        y, x = int(plan.y[i]), int(plan.x[i])
        expected = _dilated(slide, y, x, (40, 30), (3, 2), 1, 17)
        assert np.array_equal(images[i], expected), i


def test_valid_dilated_grid_reads_only_inside(slide_path):
    plan = gigapatch.grid(slide_path, 50, 200, dilation=4)
    patches = gigapatch.extract(slide_path, plan)
    slide = gigapatch.open(slide_path)
    for i in (0, len(plan) - 1):
        y, x = int(plan.y[i]), int(plan.x[i])
        assert np.array_equal(patches[i], slide.read(y, x, 197, 197)[::4, ::4])


def test_slides_from_different_scanners_are_read_at_their_level_of_one_mpp(
    square_path, coarse_path, tmp_path
):
    sources = [square_path, coarse_path]
    plan = gigapatch.random(sources, 64, 12, seed=0, mpp=1.0, per_slide=True)
    assert plan.levels == (1, 0) and plan.level == -1 and plan.params()["levels"] == [1, 0]
    store = gigapatch.extract_to_zarr(sources, plan, tmp_path / "p.zarr", labels=[3, 4])
    assert store.verify() == []
    assert [s["level"] for s in store.sources] == [1, 0]
    assert [s["downsample"] for s in store.sources] == [[4.0, 4.0], [1.0, 1.0]]
    assert store.label.tolist() == [3] * 12 + [4] * 12
    slides = [gigapatch.open(p) for p in sources]
    for i in range(len(plan)):
        k = int(plan.slide[i])
        y, x = int(plan.y[i]), int(plan.x[i])
        assert np.array_equal(store[i], slides[k].read(y, x, 64, 64, level=plan.levels[k]))


def test_plan_labels_and_tissue_land_in_the_store(square_path, slide_path, tmp_path):
    sources = [square_path, slide_path]
    plan = gigapatch.random(
        sources, 128, 30, seed=2, min_tissue=0.25, labels=[1, 0], per_slide=True
    )
    store = gigapatch.extract_to_zarr(sources, plan, tmp_path / "p.zarr", shard_size=8)
    group = zarr.open_group(tmp_path / "p.zarr", mode="r")
    assert np.array_equal(group["tissue"][:], plan.tissue) and group["tissue"].dtype == np.float32
    assert (group["tissue"][:] >= 0.25).all()
    assert store.label.tolist() == plan.label.tolist() == [1] * 30 + [0] * 30
    assert [s["label"] for s in store.sources] == [1, 0]
    assert store.plan["min_tissue"] == 0.25 and store.plan["kind"] == "random"
    plain = gigapatch.extract_to_zarr(square_path, gigapatch.grid(square_path, 512),
                                      tmp_path / "q.zarr")
    assert "tissue" not in zarr.open_group(plain.path, mode="r")


def test_a_plan_for_other_sources_is_refused(square_path, coarse_path):
    plan = gigapatch.random([square_path, coarse_path], 64, 4, seed=0, mpp=1.0)
    with pytest.raises(InvalidArgumentError, match="plan has levels for 2 sources but 3"):
        gigapatch.extract([square_path, coarse_path, square_path], plan)
