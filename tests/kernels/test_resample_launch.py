"""Tiers 3, 4 and 5 of the area resampler's CUDA path, without a GPU.

3. ``resample.cu`` with its core header compiles with NVRTC, with the
   runtime's options, for sm_80 and sm_90, every instantiation lowered.
4. The core compiled by g++ (and with AddressSanitizer) runs every thread
   index through the real launcher and equals NumPy (bit for bit for
   integer dtypes).
5. The launcher with the kernel object replaced by a recorder: grid, block,
   the instantiation per dtype, every argument's C type against the kernel
   signature; the module is built lazily, once per device, with the
   exact options.
"""

import ctypes
import re
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from gigapatch.errors import InvalidArgumentError
from gigapatch.kernels import area_resample, launch, resample_launch
from tests.kernels import native_harness as kn
from tests.kernels import resample_harness as rh
from tests.kernels.test_cuda_compile import ARCHES, compile_cubin

BODY = (launch.SOURCE_DIR / resample_launch.SOURCE).read_text()
HEADER = (launch.SOURCE_DIR / resample_launch.HEADER).read_text()


def _mutated(old: str, new: str) -> str:
    assert HEADER.count(old) == 1, old
    return HEADER.replace(old, new)


# --- tier 3: NVRTC ----------------------------------------------------------------------------

@pytest.mark.parametrize("arch", ARCHES)
def test_every_instantiation_compiles_with_the_runtime_options(arch):
    names = resample_launch.name_expressions()
    ok, log, lowered, cubin = compile_cubin(resample_launch.resample_source(), arch, names)
    assert ok, log
    assert "warning" not in log.lower(), log
    assert set(lowered) == set(names) and all(v.startswith("_Z") for v in lowered.values())
    assert cubin > 0


def test_every_source_dtype_is_instantiated():
    names = resample_launch.name_expressions()
    assert set(kn.kernel_signatures(BODY)) == {"gp_resample_area"}
    assert len(names) == len(set(names)) == len(launch.IN_TYPES)


def test_the_source_is_one_translation_unit_without_host_includes():
    source = resample_launch.resample_source()
    assert re.findall(r"#include\s*<", source) == []
    assert '#include "' not in source
    assert "gp_round_div" in source  # the header is inlined


def test_a_syntax_error_in_the_core_fails_the_gate():
    line = "const unsigned long long r = num - q * den;"
    broken = resample_launch.resample_source(header=_mutated(line, line[:-1]))
    ok, log, _, _ = compile_cubin(broken, "sm_90", resample_launch.name_expressions())
    assert not ok and "error" in log


# --- tier 4: the core on the host -------------------------------------------------------------

@pytest.fixture(scope="module")
def gxx():
    if shutil.which("g++") is None:
        pytest.skip("g++ is not installed: the host-compiled resampler core cannot be checked")


@pytest.fixture(scope="module")
def core(gxx, tmp_path_factory):
    return ctypes.CDLL(str(rh.build(tmp_path_factory.mktemp("resample"))))


def test_core_equals_numpy_on_random_cases(core):
    assert rh.compare_random(core, 400, seed=1) == []


@pytest.mark.parametrize("case", [
    {"block": np.full((2, 598, 598, 3), 255, np.uint8), "out_hw": 299},
    {"block": np.full((1, 592, 7, 1), 65535, np.uint16), "out_hw": (299, 3)},
    {"block": np.arange(24, dtype=np.float32).reshape(1, 4, 2, 3), "out_hw": (3, 1)},
    {"block": np.arange(60, dtype=np.uint8).reshape(1, 1, 60, 1), "out_hw": (1, 7)},
    {"block": np.array([0, 2, 0, 0, 0, 6, 0, 0], np.uint8).reshape(1, 2, 4, 1),
     "out_hw": (2, 3)},
    {"block": np.zeros((3, 5, 5, 4), np.uint16) + 7, "out_hw": 5},
], ids=["saturated-u8-f2", "saturated-u16-592-299", "float-4x2", "one-row", "ties", "same-size"])
def test_core_equals_numpy_on_edge_cases(core, case):
    calls = []
    got = rh.host_resample(core, calls, **case)
    assert len(calls) == 1  # one launch for the whole batch
    want = area_resample(**case)
    assert got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=1e-6) if got.dtype == np.float32 else (
        np.testing.assert_array_equal(got, want))


def test_rounding_is_ties_to_even_on_the_host(core):
    den = np.uint64(4)
    num = np.arange(0, 4 * 70_000, dtype=np.uint64)
    out = np.empty_like(num)
    core.gp_round_div_n(ctypes.c_void_p(num.ctypes.data), ctypes.c_uint64(int(den)),
                        ctypes.c_void_p(out.ctypes.data), ctypes.c_int64(num.size))
    assert np.array_equal(out, np.rint(num / 4.0).astype(np.uint64))
    big = np.array([2**47 + 1, 2**47 + 2, 2**47 + 3, 2**47 + 6], np.uint64)
    core.gp_round_div_n(ctypes.c_void_p(big.ctypes.data), ctypes.c_uint64(4),
                        ctypes.c_void_p(out.ctypes.data), ctypes.c_int64(big.size))
    assert out[:4].tolist() == [2**45, 2**45, 2**45 + 1, 2**45 + 2]  # .25, .5 even, .75, .5 odd


def test_an_off_by_one_in_the_span_is_caught(gxx, tmp_path):
    header = _mutated("*lo = i * src / dst;", "*lo = i * src / dst + 1;")
    broken = rh.build(tmp_path, header=header)
    assert len(rh.compare_random(ctypes.CDLL(str(broken)), 200, seed=1)) > 0


def test_rounding_half_up_is_caught(gxx, tmp_path):
    broken = rh.build(tmp_path, header=_mutated("(2 * r == den && (q & 1ull))", "2 * r == den"))
    assert len(rh.compare_random(ctypes.CDLL(str(broken)), 200, seed=1)) > 0


def _run_asan(lib: Path, cases: int) -> subprocess.CompletedProcess:
    return kn.run_asan(Path(rh.__file__), lib, cases)


def test_core_under_address_sanitizer(gxx, tmp_path):
    proc = _run_asan(rh.build(tmp_path, asan=True), 300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "300 cases agree" in proc.stdout


def test_address_sanitizer_catches_an_out_of_bounds_read(gxx, tmp_path):
    header = _mutated("*hi = ((i + 1) * src + dst - 1) / dst;",
                      "*hi = ((i + 1) * src + dst - 1) / dst + 1;")
    proc = _run_asan(rh.build(tmp_path, header=header, asan=True), 300)
    assert proc.returncode != 0
    assert "AddressSanitizer: heap-buffer-overflow" in proc.stderr


# --- tier 5: the launcher with a recorder -----------------------------------------------------

def _record(**kwargs):
    calls = []
    out = rh.host_resample(None, calls, **kwargs)
    assert len(calls) == 1
    return calls[0], out


@pytest.mark.parametrize(("dtype", "name"), [
    (np.uint8, "gp_resample_area<unsigned char>"),
    (np.uint16, "gp_resample_area<unsigned short>"),
    (np.float32, "gp_resample_area<float>"),
])
def test_launch_arguments_match_the_kernel_signature(dtype, name):
    call, out = _record(block=np.zeros((5, 598, 596, 3), dtype), out_hw=(299, 256))
    assert call.name == name
    assert kn.arg_mismatches(name, call.args) == []  # HostKernel checked it too
    assert call.block == (launch.THREADS,)
    assert call.grid == (-(-299 * 256 // launch.THREADS), 5)
    assert call.args[0].shape == (5, 598, 596, 3) and call.args[5] is out
    assert [int(a) for a in call.args[1:5]] == [5, 598, 596, 3]
    assert [int(a) for a in call.args[6:]] == [299, 256]


def test_grid_is_capped_and_the_kernel_strides():
    call, _ = _record(block=np.zeros((70_000, 2, 2, 1), np.uint8), out_hw=1)
    assert call.grid == (1, launch.MAX_BLOCKS)
    call, _ = _record(block=np.zeros((1, 4100, 4100, 1), np.uint8), out_hw=4100)
    assert call.grid == (launch.MAX_BLOCKS, 1)
    assert BODY.count("p += stride") == BODY.count("k += gridDim.y") == 1


def test_a_wrong_argument_type_is_caught():
    call, _ = _record(block=np.zeros((2, 8, 8, 1), np.uint8), out_hw=3)
    args = list(call.args)
    wide = args.copy()
    wide[2] = np.int64(wide[2])  # hs as 64-bit: every later argument would shift
    assert kn.arg_mismatches(call.name, tuple(wide)) == ["argument 2: int64 int64 for int"]
    narrow = args.copy()
    narrow[1] = np.int32(narrow[1])  # n is long long
    assert kn.arg_mismatches(call.name, tuple(narrow)) == ["argument 1: int32 int32 for long long"]
    assert kn.arg_mismatches(call.name, tuple(args[:-1])) == ["7 arguments for 8 parameters"]


def test_the_signature_parser_agrees_with_nvrtc():
    names = resample_launch.name_expressions()
    for name, params in kn.demangled_parameters(resample_launch.resample_source(), names).items():
        assert params == kn.parameter_types(name), name


def test_the_gpu_path_refuses_what_32_bit_index_math_cannot_hold():
    with pytest.raises(InvalidArgumentError, match="GPU resampler takes patches of < 2"):
        resample_launch.plan_resample(SimpleNamespace(shape=(1, 50_000, 50_000, 1)),
                                      SimpleNamespace(shape=(1, 10, 10, 1)))
    with pytest.raises(InvalidArgumentError, match="GPU resampler takes blocks of uint8, "
                                                   "uint16, float32; got float64"):
        resample_launch.kernel_name(np.float64)


def test_a_strided_out_is_refused_on_the_gpu_path():
    out = np.zeros((1, 2, 6, 1), np.uint8)[:, :, ::2]
    with pytest.raises(InvalidArgumentError, match="out must be C-contiguous on the GPU"):
        rh.host_resample(None, block=np.zeros((1, 4, 6, 1), np.uint8), out_hw=(2, 3), out=out)


def test_module_is_built_lazily_once_per_device_apart_from_the_patch_kernels(monkeypatch):
    monkeypatch.setattr(launch, "_modules", {})
    cp = kn.FakeCupyModules()
    name = resample_launch.name_expressions()[0]
    assert resample_launch.get_kernel(cp, name) == ("kernel", name, 0)
    resample_launch.get_kernel(cp, resample_launch.name_expressions()[-1])
    assert len(cp.built) == 1
    launch.get_kernel(cp, launch.name_expressions()[0])  # the patch kernels: their own module
    assert len(cp.built) == 2
    cp.device = 1
    assert resample_launch.get_kernel(cp, name) == ("kernel", name, 1)
    assert len(cp.built) == 3
    assert cp.built[0] == {"code": resample_launch.resample_source(),
                           "options": launch.COMPILE_OPTIONS,
                           "name_expressions": resample_launch.name_expressions()}
