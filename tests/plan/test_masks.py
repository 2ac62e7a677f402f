"""Tissue masks from low-resolution levels, mask files, and footprint fractions."""

import imagecodecs
import numpy as np
import pytest
import tifffile

import gigapatch
from gigapatch.errors import InvalidArgumentError, SlideError
from gigapatch.plan.masks import (
    footprint_fraction,
    load_mask,
    mask_level,
    resolve_mask,
    thumbnail,
    tissue_mask,
)
from gigapatch.synth import TISSUE_FRACTION


def _spy_levels(slide, monkeypatch):
    """Record the level of every pixel read the slide's reader serves."""
    levels = []
    real = slide._reader.read_level

    def spy(level, y, x, out):
        levels.append(level)
        return real(level, y, x, out)

    monkeypatch.setattr(slide._reader, "read_level", spy)
    return levels


def test_tissue_mask_of_a_synthetic_slide_finds_its_tissue(square_path):
    slide = gigapatch.open(square_path)
    assert mask_level(slide) == 1  # 2048 is level 0: never threshold the full resolution
    mask = tissue_mask(slide)
    assert mask.dtype == bool and mask.shape == (512, 512)
    assert abs(mask.mean() - TISSUE_FRACTION) < 0.1
    # tissue is darker and more saturated than background
    rgb = slide.read(0, 0, 512, 512, level=1).astype(float)
    assert rgb[mask].mean() < rgb[~mask].mean() - 20
    od = tissue_mask(slide, method="od")
    assert (od == mask).mean() > 0.9


def test_blank_glass_has_no_tissue_and_a_stain_is_all_tissue():
    white = gigapatch.open(np.full((300, 400, 3), 242, np.uint8))
    assert not tissue_mask(white).any()
    pink = np.full((300, 400, 3), 240, np.uint8)
    pink[50:250, 100:300] = (220, 120, 180)
    pink[140:145, 190:195] = 240  # a small hole in the tissue is filled
    mask = tissue_mask(gigapatch.open(pink))
    assert mask[50:250, 100:300].all() and not mask[:40].any() and mask.sum() == 200 * 200


def test_small_specks_are_removed():
    img = np.full((400, 400, 3), 240, np.uint8)
    img[100:300, 100:300] = (200, 100, 170)
    img[10:13, 10:13] = (200, 100, 170)  # dust
    mask = tissue_mask(gigapatch.open(img))
    assert not mask[:50, :50].any() and mask[150, 150]


def test_a_single_level_image_is_reduced_in_strips():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (1030, 2100, 3), dtype=np.uint8)
    thumb = thumbnail(gigapatch.open(img), 0, max_side=700)  # factor 3
    expected = img[:1029, :2100].astype(np.float32).reshape(343, 3, 700, 3, 3).mean(axis=(1, 3))
    assert thumb.shape == (343, 700, 3) and np.allclose(thumb, expected, atol=1e-3)


def test_footprint_fraction_equals_a_brute_force_mean():
    rng = np.random.default_rng(1)
    mask = rng.random((30, 40)) > 0.5
    y = rng.integers(-10, 35, 200)
    x = rng.integers(-10, 45, 200)
    got = footprint_fraction(mask, (30, 40), y, x, (7, 9))
    padded = np.zeros((60, 70))
    padded[10:40, 10:50] = mask
    expected = [padded[a + 10 : a + 17, b + 10 : b + 19].mean() for a, b in zip(y, x, strict=True)]
    assert np.allclose(got, expected)
    # a coarse mask: every rectangle covers at least one cell
    coarse = footprint_fraction(np.ones((2, 2)), (1000, 1000), np.array([10]), np.array([10]),
                                (5, 5))
    assert coarse.tolist() == [1.0]


def test_masks_load_from_npy_tiff_and_png(tmp_path):
    mask = np.zeros((20, 30), np.uint8)
    mask[5:15, 10:20] = 255
    np.save(tmp_path / "m.npy", mask > 0)
    tifffile.imwrite(tmp_path / "m.tif", mask)
    (tmp_path / "m.png").write_bytes(imagecodecs.png_encode(np.dstack([mask] * 3)))
    slide = gigapatch.open(np.zeros((200, 300, 3), np.uint8))
    for name in ("m.npy", "m.tif", "m.png"):
        got = resolve_mask(tmp_path / name, slide)
        assert got.dtype == np.float64 and np.array_equal(got, (mask > 0).astype(float)), name
    plan = gigapatch.grid(slide, 100, mask=str(tmp_path / "m.png"), min_tissue=0.3)
    assert plan.tissue.min() >= 0.3 and plan.params()["mask"].endswith("m.png")


def test_bad_mask_files_and_methods_are_clear_errors(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"not a png")
    slide = gigapatch.open(np.zeros((200, 300, 3), np.uint8))
    with pytest.raises(SlideError, match=r"mask file .*nope\.npy' does not exist"):
        load_mask(tmp_path / "nope.npy")
    with pytest.raises(SlideError, match=r"cannot read mask .*bad\.png'"):
        resolve_mask(tmp_path / "bad.png", slide)
    with pytest.raises(InvalidArgumentError, match="method must be 'saturation' or 'od'"):
        tissue_mask(slide, method="otsu")
    gray = gigapatch.open(np.zeros((50, 50), np.uint8))
    with pytest.raises(InvalidArgumentError, match=r"method must be 'od' for 'array' \(1 ch"):
        tissue_mask(gray, method="saturation")
    assert tissue_mask(gray).shape == (50, 50)


def test_planning_reads_no_level0_pixel(square_path, monkeypatch):
    slide = gigapatch.open(square_path)
    levels = _spy_levels(slide, monkeypatch)
    weighted = gigapatch.random(slide, 256, 300, seed=0, weights="tissue", min_tissue=0.5)
    masked = gigapatch.random(slide, 256, 300, seed=0, min_tissue=0.5)
    grid = gigapatch.grid(slide, 256, min_tissue=0.5)
    assert levels and 0 not in levels
    for plan in (weighted, masked, grid):
        assert len(plan) and plan.tissue.min() >= 0.5
    assert len(grid) < 64
