"""Patches at a pixel size no level has: read finer, area-averaged to exactly ``size``."""

from __future__ import annotations

import numpy as np
import pytest

import gigapatch
from gigapatch.synth import synthesize


@pytest.fixture(scope="module")
def slide40_path(tmp_path_factory):
    """A 40x slide (0.25 µm/px, AppMag 40, levels 0.25 and 1.0 µm/px), sides not tile multiples."""
    return synthesize(tmp_path_factory.mktemp("s") / "40x.svs", (1500, 1900), seed=4)


def _block_mean(region: np.ndarray, f: int) -> np.ndarray:
    """The reference: each output pixel the f × f block mean, rounded half to even."""
    h, w, c = region.shape[0] // f, region.shape[1] // f, region.shape[2]
    total = region[: h * f, : w * f].astype(np.int64).reshape(h, f, w, f, c).sum(axis=(1, 3))
    return np.rint(total / (f * f)).astype(region.dtype)


def test_20x_from_40x_is_the_exact_2x2_block_mean(slide40_path, tmp_path):
    slide = gigapatch.open(slide40_path)
    plan = gigapatch.grid(slide, 96, mpp=0.5)
    assert plan.levels == (0,) and plan.factors == (2.0,) and plan.read_size(0) == (192, 192)
    # the grid is laid in 20x pixels: 750 x 950 of them, so 7 x 9 patches
    assert len(plan) == (750 // 96) * (950 // 96)
    assert set(np.unique(plan.y)) == {96 * 2 * k for k in range(7)}
    store = gigapatch.extract_to_zarr(slide, plan, tmp_path / "a.zarr", shard_size=16)
    for i in np.random.default_rng(0).choice(len(plan), 12, replace=False).tolist():
        y, x = (int(v) for v in store.coords[i])
        expected = _block_mean(slide.read(y, x, 192, 192), 2)
        assert np.array_equal(store[i], expected), i
        assert np.array_equal(slide.read(y, x, 96, 96, mpp=0.5), expected)
    record = store.sources[0]
    assert (record["level"], record["factor"], record["resampling"], record["target_mpp"],
            record["read_size"]) == (0, 2.0, "area-integer", 0.5, [192, 192])
    assert store.plan["target_mpp"] == 0.5 and store.plan["factors"] == [2.0]


def test_magnification_20_gives_the_same_patches_as_mpp_05(slide40_path, tmp_path):
    by_mpp = gigapatch.random(slide40_path, 64, 40, seed=3, mpp=0.5, min_tissue=0.2)
    by_mag = gigapatch.random(slide40_path, 64, 40, seed=3, magnification=20, min_tissue=0.2)
    assert np.array_equal(by_mpp.y, by_mag.y) and np.array_equal(by_mpp.x, by_mag.x)
    a = gigapatch.extract(slide40_path, by_mpp)
    b = gigapatch.extract(slide40_path, by_mag)
    assert np.array_equal(a, b)
    slide = gigapatch.open(slide40_path)
    for i in range(0, 40, 7):  # random patches fit whole at their read size
        y, x = int(by_mpp.y[i]), int(by_mpp.x[i])
        assert np.array_equal(a[i], _block_mean(slide.read(y, x, 128, 128), 2))


def test_a_non_integer_factor_is_within_one_grey_level_of_opencv_inter_area(slide40_path):
    cv2 = pytest.importorskip("cv2", reason="opencv-python-headless (test extra) is not installed")
    slide = gigapatch.open(slide40_path)
    plan = gigapatch.grid(slide, 80, mpp=0.3)
    assert plan.read_size(0) == (96, 96) and plan.factors[0] == pytest.approx(1.2)
    patches = gigapatch.extract(slide, plan)
    for i in range(0, len(plan), max(1, len(plan) // 15)):
        region = slide.read(int(plan.y[i]), int(plan.x[i]), 96, 96)
        expected = cv2.resize(region, (80, 80), interpolation=cv2.INTER_AREA)
        diff = np.abs(patches[i].astype(int) - expected.astype(int))
        assert diff.max() <= 1, (i, diff.max())


def test_same_padding_dilation_and_levels_compose_with_resampling(slide40_path):
    slide = gigapatch.open(slide40_path)
    same = gigapatch.grid(slide, 100, mpp=0.5, padding="same", fill=255)
    patches = gigapatch.extract(slide, same)
    first = _block_mean(slide.read(int(same.y[0]), int(same.x[0]), 200, 200, fill=255), 2)
    assert np.array_equal(patches[0], first)
    dilated = gigapatch.grid(slide, 32, mpp=0.5, dilation=2)
    assert dilated.read_size(0) == (126, 126)  # span 63 target pixels
    got = gigapatch.extract(slide, dilated)
    y, x = int(dilated.y[3]), int(dilated.x[3])
    full = _block_mean(slide.read(y, x, 126, 126), 2)
    assert np.array_equal(got[3], full[::2, ::2])
    # 2 µm/px lies between levels 1 (1.0) and none coarser on this slide: level 1, factor 2
    coarse = gigapatch.grid(slide, 64, mpp=2.0)
    assert coarse.levels == (1,) and coarse.factors == (2.0,)
    out = gigapatch.extract(slide, coarse)
    y, x = int(coarse.y[0]), int(coarse.x[0])
    assert np.array_equal(out[0], _block_mean(slide.read(y, x, 128, 128, level=1), 2))


def test_the_same_bytes_whatever_workers_and_scheduler(slide40_path, tmp_path):
    plan = gigapatch.grid(slide40_path, 64, mpp=0.5)
    reference = gigapatch.extract(slide40_path, plan, scheduler="synchronous")
    for k, kwargs in enumerate([{"workers": 2}, {"scheduler": "processes", "workers": 2}]):
        store = gigapatch.extract_to_zarr(slide40_path, plan, tmp_path / f"{k}.zarr",
                                          shard_size=8, **kwargs)
        assert np.array_equal(store[:], reference)
