"""Preprocess: each batch against the plain definition; the GPU path up to the CUDA launch.

Without a GPU the device path is checked in the tiers of the kernels: the
CUDA path with the kernel object replaced by a recorder (tier 5) and by the
host-compiled kernel core (tier 4), and the ``xp``-generic code on
array-api-strict device arrays (tier 2). With a GPU, CuPy against NumPy.
"""

import numpy as np
import pytest

from gigapatch.feed import Preprocess
from gigapatch.kernels import backend, draw_params
from tests.helpers import PRESET_FORMULAS, gpu_cupy, plain_augment
from tests.kernels import native_harness as kn

cp = gpu_cupy()
BATCH = np.random.default_rng(0).integers(0, 256, (6, 8, 8, 3), dtype=np.uint8)


def test_default_is_identity_and_presets_equal_the_plain_definition():
    assert np.array_equal(Preprocess()(BATCH), BATCH)
    prep = Preprocess(normalize="imagenet", dtype="float16", layout="chw", dihedral=True,
                      contrast=0.2, brightness=30.0)
    got = prep(BATCH, 11)
    params = draw_params(6, 11, dihedral=True, contrast=0.2, brightness=30.0)  # what seed 11 drew
    assert len(set(params.dihedral.tolist())) > 2 and (params.jitter[:, 1] != 0).all()
    want = plain_augment(BATCH, params.dihedral, params.jitter, "imagenet", "float16", "chw")
    assert got.dtype == np.float16 and got.shape == (6, 3, 8, 8)
    assert np.array_equal(got, want)
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


GPU_CASES = [
    ({"normalize": "xception", "dihedral": True, "brightness": 5.0},
     "gp_gather_norm<unsigned char, float>"),
    ({"normalize": "unit", "dtype": "float16", "layout": "chw", "rotation": 20.0},
     "gp_gather_norm<unsigned char, gp_half>"),
    ({"dihedral": True}, "gp_gather_raw<unsigned char>"),
]


@pytest.mark.parametrize(("options", "kernel"), GPU_CASES)
def test_gpu_path_copies_the_uint8_batch_once_then_makes_one_fused_launch(options, kernel):
    calls, copies = [], []
    with kn.cuda_on_host(None, calls, copies):  # the kernel object is a recorder
        Preprocess(device="gpu", **options)(BATCH, 3)
    assert [c for c in copies if len(c[1]) > 2] == [(np.uint8, BATCH.shape)]
    [call] = calls
    assert call.name == kernel and kn.arg_mismatches(kernel, call.args) == []
    assert call.block == (256,) and call.grid == (1, 6)  # 64 pixels in one block, 6 patches
    args = kn.named_args(kernel, call.args)
    assert [int(args[k]) for k in ("bh", "bw", "c", "n", "h", "w", "ry", "rx")] == [
        48, 8, 3, 6, 8, 8, 1, 1]  # the batch as one (6·8, 8, 3) block
    assert args["ys"].tolist() == [0, 8, 16, 24, 32, 40] and not args["xs"].any()
    assert int(args["channel_first"]) == (options.get("layout") == "chw")
    params = draw_params(6, 3, dihedral=options.get("dihedral", False),
                         brightness=options.get("brightness", 0.0),
                         rotation=options.get("rotation", 0.0))
    ops = np.zeros(6) if params.dihedral is None else params.dihedral
    assert np.array_equal(args["ops"], ops)
    if "normalize" in options:
        divisor, offset = PRESET_FORMULAS[options["normalize"]]
        assert args["divisor"].tolist() == divisor * 3 and args["offset"].tolist() == offset * 3
        assert (float(args["lo"]), float(args["hi"])) == (0.0, 255.0)
        assert int(args["use_jitter"]) == (params.jitter is not None)
        if params.jitter is not None:
            assert np.array_equal(args["jitter"], params.jitter)


@pytest.mark.parametrize(("options", "kernel"), GPU_CASES)
def test_gpu_path_through_the_host_compiled_kernel_equals_the_cpu_path(kernel_core, options,
                                                                        kernel):
    calls = []
    with kn.cuda_on_host(kernel_core, calls):
        got = Preprocess(device="gpu", **options)(BATCH, 3)
    want = Preprocess(**options)(BATCH, 3)
    assert [c.name for c in calls] == [kernel]
    assert got.dtype == want.dtype and np.array_equal(got, want)


def test_xp_generic_path_runs_on_a_strict_device_array(monkeypatch):
    xps = pytest.importorskip("array_api_strict")
    device = xps.Device("device1")
    copies = []

    def to_device(batch):
        copies.append((batch.dtype, batch.shape))
        return xps.asarray(batch, device=device)

    # a "CuPy" whose arrays live on array-api-strict's device1: no implicit host conversion
    monkeypatch.setattr(backend, "_cupy", lambda: type("StrictGpu", (), {"asarray": to_device}))
    for options, _ in GPU_CASES:
        if options.get("dtype") == "float16":  # the standard has no float16
            options = {**options, "dtype": "float32"}
        copies.clear()
        out = Preprocess(device="gpu", **options)(BATCH, 3)
        assert copies == [(np.uint8, BATCH.shape)] and out.device == device
        back = np.asarray(xps.asarray(out, device=xps.Device("CPU_DEVICE")))
        assert np.array_equal(back, Preprocess(**options)(BATCH, 3))


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
