"""Tier 5: the launcher, with the kernel object replaced by a recorder (no GPU, no CuPy).

Grid and block sizes, the instantiation picked for each dtype pair, and the
C type of every argument against the kernel signature; lazy, per-device
module building with the exact compile options.
"""

import subprocess
import sys

import numpy as np
import pytest

from gigapatch.errors import InvalidArgumentError
from gigapatch.kernels import launch
from tests.helpers import PRESET_FORMULAS
from tests.kernels import native_harness as kn


def _record(**kwargs):
    calls = []
    out = kn.host_fused(None, calls, **kwargs)
    assert len(calls) == 1
    return calls[0], out


@pytest.mark.parametrize(("dtype", "normalize", "out_dtype", "name"), [
    (np.uint8, None, None, "gp_gather_raw<unsigned char>"),
    (np.uint16, None, None, "gp_gather_raw<unsigned short>"),
    (np.float32, None, None, "gp_gather_raw<float>"),
    (np.uint8, "xception", "float32", "gp_gather_norm<unsigned char, float>"),
    (np.uint8, "imagenet", "float16", "gp_gather_norm<unsigned char, gp_half>"),
    (np.uint16, "unit", "float16", "gp_gather_norm<unsigned short, gp_half>"),
    (np.float32, "unit", "float32", "gp_gather_norm<float, float>"),
])
@pytest.mark.parametrize("jitter", [False, True])
def test_launch_arguments_match_the_kernel_signature(dtype, normalize, out_dtype, name, jitter):
    block = np.zeros((40, 30, 3), dtype)
    kw = {"normalize": normalize, "dtype": out_dtype, "dihedral": [1, 2, 7]}
    if jitter and normalize:
        kw["jitter"] = [[1.0, 2.0]] * 3
    call, out = _record(block=block, ys=[0, 5, -3], xs=[1, 2, 28], size=9, fill=4, **kw)
    assert call.name == name
    assert kn.arg_mismatches(name, call.args) == []  # HostKernel checked it too
    assert call.block == (256,)
    assert call.grid == (1, 3)  # 81 pixels fit one block of 256 threads; one row per patch
    args = kn.named_args(name, call.args)
    assert args["block"] is block and args["out"] is out and out.shape == (3, 9, 9, 3)
    assert [int(args[k]) for k in ("bh", "bw", "c", "n", "h", "w", "ry", "rx")] == [
        40, 30, 3, 3, 9, 9, 1, 1]
    assert args["ys"].tolist() == [0, 5, -3] and args["xs"].tolist() == [1, 2, 28]
    assert args["ops"].tolist() == [1, 2, 7] and int(args["channel_first"]) == 0
    assert args["fill"] == 4
    if normalize:
        assert int(args["use_jitter"]) == int(bool(jitter))
        assert args["jitter"].tolist() == ([[1.0, 2.0]] * 3 if jitter else [[0.0, 0.0]])
        big = float(np.finfo(np.float32).max)  # float sources are not clipped
        clip = {np.uint8: (0.0, 255.0), np.uint16: (0.0, 65535.0), np.float32: (-big, big)}
        assert (float(args["lo"]), float(args["hi"])) == clip[dtype]
        divisor, offset = (np.broadcast_to(np.float32(v), 3) for v in PRESET_FORMULAS[normalize])
        assert np.array_equal(args["divisor"], divisor) and np.array_equal(args["offset"], offset)


def test_grid_is_capped_and_the_kernel_strides():
    call, _ = _record(block=np.zeros((600, 600, 3), np.uint8), ys=[0] * 300, xs=[0] * 300,
                      size=299)
    assert call.grid == (350, 300)  # 299² = 89401 pixels = 349.2 blocks of 256
    many = np.zeros(70_000, np.int64)
    call, _ = _record(block=np.zeros((2, 2, 1), np.uint8), ys=many, xs=many, size=1)
    assert call.grid == (1, 65535)  # CUDA's limit on gridDim.y; the kernel loops over the rest
    call, _ = _record(block=np.zeros((4200, 4200, 1), np.uint8), ys=[0], xs=[0], size=4100)
    assert call.grid == (65535, 1)  # 4100² / 256 = 65664 blocks, capped: the kernel strides
    body = (launch.SOURCE_DIR / "patches.cu").read_text()
    signatures = len(kn.kernel_signatures())
    assert body.count("p += stride") == body.count("k += gridDim.y") == signatures


def test_a_wrong_argument_type_or_order_is_caught():
    call, _ = _record(block=np.zeros((8, 8, 1), np.uint8), ys=[0], xs=[0], size=2)
    args = list(call.args)
    assert kn.arg_mismatches(call.name, tuple(args)) == []
    wide = args.copy()
    wide[9] = np.int64(wide[9])  # h passed as 64-bit: every later argument would shift
    assert kn.arg_mismatches(call.name, tuple(wide)) == ["argument 9: int64 int64 for int"]
    swapped = args.copy()
    swapped[4], swapped[6] = swapped[6], swapped[4]  # ys and ops exchanged
    assert len(kn.arg_mismatches(call.name, tuple(swapped))) == 2
    assert kn.arg_mismatches(call.name, tuple(args[:-1])) == ["14 arguments for 15 parameters"]


def test_the_signature_parser_agrees_with_nvrtc():
    names = launch.name_expressions()
    for name, params in kn.demangled_parameters(launch.kernel_source(), names).items():
        assert params == kn.parameter_types(name), name


def test_unsupported_block_dtypes_are_refused_by_the_launcher():
    with pytest.raises(InvalidArgumentError, match="GPU kernels take blocks of uint8, uint16, "
                                                   "float32; got int16"):
        _record(block=np.zeros((4, 4, 1), np.int16), ys=[0], xs=[0], size=2)


def test_module_is_built_lazily_once_per_device_with_the_exact_options(monkeypatch):
    monkeypatch.setattr(launch, "_modules", {})
    cp = kn.FakeCupyModules()
    name = launch.name_expressions()[0]
    assert launch.get_kernel(cp, name) == ("kernel", name, 0)
    launch.get_kernel(cp, launch.name_expressions()[-1])
    assert len(cp.built) == 1
    cp.device = 1
    assert launch.get_kernel(cp, name) == ("kernel", name, 1)
    assert len(cp.built) == 2
    body = (launch.SOURCE_DIR / "patches.cu").read_text()
    header = (launch.SOURCE_DIR / "gigapatch_core.cuh").read_text()
    assert body.count('#include "gigapatch_core.cuh"') == 1
    assert cp.built[0] == {
        "code": body.replace('#include "gigapatch_core.cuh"', header),  # one translation unit
        "options": ("--std=c++17", "--fmad=false"),  # no fused multiply-add: NumPy's roundings
        "name_expressions": tuple(EVERY_INSTANTIATION),
    }


EVERY_INSTANTIATION = [
    "gp_gather_raw<unsigned char>", "gp_gather_raw<unsigned short>", "gp_gather_raw<float>",
    "gp_gather_norm<unsigned char, float>", "gp_gather_norm<unsigned char, gp_half>",
    "gp_gather_norm<unsigned short, float>", "gp_gather_norm<unsigned short, gp_half>",
    "gp_gather_norm<float, float>", "gp_gather_norm<float, gp_half>",
]


def test_importing_the_kernels_imports_no_cuda_library():
    # the interpreter may preload the bare ``cuda`` namespace (a .pth of cuda-bindings)
    code = ("import sys; before = set(sys.modules); "
            "import gigapatch, gigapatch.kernels, gigapatch.kernels.launch; "
            "print(sorted(m for m in set(sys.modules) - before "
            "if m.split('.')[0] in ('cupy', 'cuda', 'cupyx')))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert proc.stdout.strip() == "[]"
