"""Shared fixtures: small synthetic slides made by gigapatch's own generator.

Set ``GIGAPATCH_TEST_SLIDES`` to a glob (e.g. ``/data/*.svs``) to also run the
source tests against real slides.
"""

from __future__ import annotations

import ctypes
import glob
import os
import shutil

# Keras 3 runs on torch here (the test extra installs torch, not TensorFlow); set before any
# test module imports keras
os.environ.setdefault("KERAS_BACKEND", "torch")

import pytest

from gigapatch.synth import synthesize


@pytest.fixture(scope="session")
def slide_path(tmp_path_factory):
    """A non-square slide whose sides are not multiples of the tile (edge tiles)."""
    return synthesize(tmp_path_factory.mktemp("slides") / "odd.svs", (1800, 2600), seed=3)


@pytest.fixture(scope="session")
def square_path(tmp_path_factory):
    """A 2048² two-level slide (2048, 512)."""
    return synthesize(tmp_path_factory.mktemp("slides") / "square.svs", 2048, seed=1)


def real_slides() -> list[str]:
    pattern = os.environ.get("GIGAPATCH_TEST_SLIDES")
    return sorted(glob.glob(pattern)) if pattern else []


@pytest.fixture(params=["odd", "square", *real_slides()])
def any_slide_path(request, slide_path, square_path):
    """Every slide the source tests run on: the synthetic ones, plus real ones if given."""
    return {"odd": slide_path, "square": square_path}.get(request.param, request.param)


@pytest.fixture(scope="session")
def kernel_core(tmp_path_factory):
    """The CUDA kernels' core compiled for the host with g++ (tier 4), loaded with ctypes."""
    if shutil.which("g++") is None:
        pytest.skip("g++ is not installed: the host-compiled kernel core cannot be run")
    from tests.kernels import native_harness

    return ctypes.CDLL(str(native_harness.build(tmp_path_factory.mktemp("core"))))
