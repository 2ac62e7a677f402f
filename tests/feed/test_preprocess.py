"""Preprocess: the kernels on each batch; the device path checked on array-api-strict and CuPy."""

import os

import numpy as np
import pytest

import gigapatch.feed.preprocess as pre
from gigapatch.feed import Preprocess
from gigapatch.kernels import augment, draw_params
from tests.helpers import gpu_cupy

cp = gpu_cupy()
os.environ.setdefault("KERAS_BACKEND", "torch")  # keras 3 here has no tensorflow to default to
BATCH = np.random.default_rng(0).integers(0, 256, (6, 8, 8, 3), dtype=np.uint8)


def test_default_is_identity_and_presets_match_the_kernels():
    assert Preprocess()(BATCH) is not None
    assert np.array_equal(Preprocess()(BATCH), BATCH)
    prep = Preprocess(normalize="imagenet", dtype="float16", layout="chw", dihedral=True,
                      contrast=0.2)
    got = prep(BATCH, 11)
    params = draw_params(6, 11, dihedral=True, contrast=0.2)
    want = augment(BATCH, dihedral=params.dihedral, jitter=params.jitter, normalize="imagenet",
                   dtype="float16", layout="chw")
    assert got.dtype == np.float16 and np.array_equal(got, want)
    assert np.array_equal(prep(BATCH, 11), got) and not np.array_equal(prep(BATCH, 12), got)


def test_xception_preset_equals_keras_preprocess_input():
    keras_xception = pytest.importorskip("keras.applications.xception", exc_type=ImportError)
    got = Preprocess(normalize="xception")(BATCH)
    assert np.array_equal(got, keras_xception.preprocess_input(BATCH.astype(np.float32)))


def test_affine_resamples_each_patch_inside_itself():
    # a shift of 1e-9 px is an identity resample: rounding gives the batch back
    assert np.array_equal(Preprocess(shift=1e-9)(BATCH, 0), BATCH)
    flat = np.full((4, 9, 9, 3), 200, np.uint8)
    turned = Preprocess(rotation=30, fill=7)(flat, 1)
    assert turned.dtype == np.uint8 and (turned[:, 4, 4] == 200).all()
    assert (turned == 7).any() and set(np.unique(turned)) <= set(range(7, 201))


def test_device_path_copies_uint8_once_and_runs_the_kernels_there(monkeypatch):
    xps = pytest.importorskip("array_api_strict")
    device = xps.Device("device1")
    copies = []

    class FakeDevice:
        @staticmethod
        def asarray(batch):
            copies.append((batch.dtype, batch.shape))
            return xps.asarray(batch, device=device)

    cases = [{"normalize": "xception", "dihedral": True, "brightness": 5.0},
             {"normalize": "unit", "layout": "chw", "rotation": 20.0}]
    wants = [Preprocess(**options)(BATCH, 3) for options in cases]
    monkeypatch.setattr(pre, "resolve_device", lambda name: "gpu")
    monkeypatch.setattr(pre, "array_module", lambda name: FakeDevice)
    for options, want in zip(cases, wants, strict=True):
        copies.clear()
        out = Preprocess(device="gpu", **options)(BATCH, 3)
        assert copies == [(np.uint8, BATCH.shape)] and out.device == device
        back = np.asarray(xps.asarray(out, device=xps.Device("CPU_DEVICE")))
        assert np.array_equal(back, want)


@pytest.mark.gpu
@pytest.mark.skipif(cp is None, reason="no CUDA device: cupy.cuda.is_available() is False "
                                       "or CuPy is not installed (pip install -e '.[gpu]')")
def test_gpu_batches_equal_cpu_and_reach_torch_by_dlpack():
    torch = pytest.importorskip("torch")
    from gigapatch.feed.torch import to_torch

    prep = dict(normalize="xception", layout="chw", dihedral=True, contrast=0.1)
    got = Preprocess(device="gpu", **prep)(BATCH, 5)
    assert isinstance(got, cp.ndarray)
    assert np.array_equal(got.get(), Preprocess(**prep)(BATCH, 5))
    tensor = to_torch(got)
    assert tensor.is_cuda and torch.equal(tensor.cpu(), torch.from_numpy(got.get()))
