"""Saliency maps as weights: tissue density and Xception's last-block activation."""

import os
import sys

import numpy as np
import pytest

import gigapatch
from gigapatch.errors import InvalidArgumentError, SlideError
from gigapatch.plan.masks import tissue_mask
from gigapatch.plan.saliency import XceptionSaliency, tissue_density


def _keras():
    """keras with the torch backend (CPU, from the torch extra) unless one is chosen already."""
    if "keras" not in sys.modules:
        os.environ.setdefault("KERAS_BACKEND", "torch")
    return pytest.importorskip("keras")


def test_tissue_density_is_the_local_tissue_fraction(square_path):
    slide = gigapatch.open(square_path)
    mask = tissue_mask(slide)
    density = tissue_density(slide, mask=mask)
    assert density.shape == mask.shape and density.dtype == np.float32
    assert density.min() >= 0 and density.max() <= 1
    assert abs(density.mean() - mask.mean()) < 0.02
    assert np.array_equal(tissue_density(slide, mask=mask, radius=0), mask.astype(np.float32))


def test_tissue_weighted_patches_land_on_tissue(square_path):
    slide = gigapatch.open(square_path)
    uniform = gigapatch.random(slide, 128, 400, seed=0, mask="tissue")
    weighted = gigapatch.random(slide, 128, 400, seed=0, weights="tissue", mask="tissue")
    assert weighted.kind == "weighted" and weighted.params()["weights"] == "tissue"
    assert weighted.tissue.mean() > uniform.tissue.mean() + 0.3


# keras' save_weights on the torch backend calls np.array on torch tensors, which warns
@pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")
def test_xception_saliency_with_random_weights_on_a_tiny_image(tmp_path):
    keras = _keras()
    keras.utils.set_random_seed(0)
    saliency = XceptionSaliency(max_side=128)
    image = np.random.default_rng(0).integers(0, 255, (96, 128, 3), dtype=np.uint8)
    slide = gigapatch.open(image)
    smap = saliency(slide)
    assert smap.shape == (96, 128) and smap.dtype == np.float32
    assert np.isfinite(smap).all() and smap.min() >= 0 and smap.max() > 0
    plan = gigapatch.random(slide, 32, 50, seed=1, weights=saliency)
    assert len(plan) == 50 and plan.params()["weights"] == "XceptionSaliency"
    # weights from a local file give the same map
    path = tmp_path / "xception.weights.h5"
    saliency._model.save_weights(path)
    keras.utils.set_random_seed(1)
    assert np.allclose(XceptionSaliency(path, max_side=128)(slide), smap, rtol=1e-4, atol=1e-7)


def test_xception_saliency_errors(tmp_path):
    _keras()
    with pytest.raises(SlideError, match=r"weights file .*missing\.h5' does not exist"):
        XceptionSaliency(tmp_path / "missing.h5")
    with pytest.raises(InvalidArgumentError, match="max_side must be at least 71; got 10"):
        XceptionSaliency(max_side=10)
    saliency = XceptionSaliency(max_side=128)
    with pytest.raises(InvalidArgumentError, match="needs RGB slides; 'array' has 1 channels"):
        saliency(gigapatch.open(np.zeros((100, 100), np.uint8)))
    with pytest.raises(InvalidArgumentError, match="Xception needs at least 71x71 pixels"):
        saliency(gigapatch.open(np.zeros((50, 300, 3), np.uint8)))
