"""Tier 3: the CUDA source compiles with NVRTC, as CuPy's RawModule will compile it, without a GPU.

Same translation unit (``launch.kernel_source()``), same options
(``launch.COMPILE_OPTIONS``), same name expressions (every template
instantiation), for the oldest and newest architectures we support.
"""

import re

import pytest

from gigapatch.kernels import launch
from tests.kernels.native_harness import kernel_signatures

ARCHES = ("sm_80", "sm_90")


def _nvrtc():
    """The NVRTC bindings, or a visible skip naming what is missing."""
    try:
        from cuda.bindings import nvrtc

        err, _major, _minor = nvrtc.nvrtcVersion()
    except Exception as exc:  # no wheel, or the library does not load
        pytest.skip(f"NVRTC is unavailable (pip install -e '.[test]'): {exc!r}")
    assert err == nvrtc.nvrtcResult.NVRTC_SUCCESS, err
    return nvrtc


def compile_cubin(source: str, arch: str, names=()) -> tuple[bool, str, dict[str, str], int]:
    """NVRTC-compile ``source`` for ``arch``: (ok, log, lowered names, cubin bytes)."""
    nvrtc = _nvrtc()
    err, prog = nvrtc.nvrtcCreateProgram(source.encode(), b"patches.cu", 0, [], [])
    assert err == nvrtc.nvrtcResult.NVRTC_SUCCESS, err
    try:
        for name in names:
            (err,) = nvrtc.nvrtcAddNameExpression(prog, name.encode())
            assert err == nvrtc.nvrtcResult.NVRTC_SUCCESS, err
        options = [o.encode() for o in (*launch.COMPILE_OPTIONS, f"--gpu-architecture={arch}")]
        (err,) = nvrtc.nvrtcCompileProgram(prog, len(options), options)
        _, size = nvrtc.nvrtcGetProgramLogSize(prog)
        log = b" " * size
        nvrtc.nvrtcGetProgramLog(prog, log)
        log = log.decode(errors="replace").rstrip("\x00 ")
        if err != nvrtc.nvrtcResult.NVRTC_SUCCESS:
            return False, log, {}, 0
        lowered = {n: nvrtc.nvrtcGetLoweredName(prog, n.encode())[1].decode() for n in names}
        _, cubin = nvrtc.nvrtcGetCUBINSize(prog)
        return True, log, lowered, cubin
    finally:
        nvrtc.nvrtcDestroyProgram(prog)


@pytest.mark.parametrize("arch", ARCHES)
def test_every_instantiation_compiles_with_the_runtime_options(arch):
    names = launch.name_expressions()
    ok, log, lowered, cubin = compile_cubin(launch.kernel_source(), arch, names)
    assert ok, log
    assert "warning" not in log.lower(), log
    assert set(lowered) == set(names) and all(v.startswith("_Z") for v in lowered.values())
    assert cubin > 0


def test_every_kernel_template_and_type_pair_is_instantiated():
    names = launch.name_expressions()
    for kernel in kernel_signatures():
        assert any(n.startswith(kernel + "<") for n in names), kernel
    raw = {n for n in names if n.startswith("gp_gather_raw<")}
    norm = {n for n in names if n.startswith("gp_gather_norm<")}
    assert len(raw) == len(launch.IN_TYPES)
    assert len(norm) == len(launch.IN_TYPES) * len(launch.OUT_TYPES)


def test_the_source_has_no_host_only_include():
    # NVRTC has no C++ standard library; nvcc would accept what RawModule rejects
    source = launch.kernel_source()
    assert re.findall(r"#include\s*<", source) == []
    assert '#include "' not in source  # the header is inlined: CuPy's cache sees it


def test_a_missing_semicolon_in_the_kernel_fails_the_gate():
    body = (launch.SOURCE_DIR / "patches.cu").read_text()
    line = "const long long stride = (long long)blockDim.x * gridDim.x;"
    assert line in body
    broken = launch.kernel_source(body=body.replace(line, line[:-1], 1))
    ok, log, _, _ = compile_cubin(broken, "sm_90", launch.name_expressions())
    assert not ok and 'expected a ";"' in log


def test_a_missing_semicolon_in_the_core_header_fails_the_gate():
    header = (launch.SOURCE_DIR / launch.HEADER).read_text()
    line = "const unsigned int rem = r & 0x1fffu;"
    assert line in header
    broken = launch.kernel_source(header=header.replace(line, line[:-1], 1))
    ok, log, _, _ = compile_cubin(broken, "sm_80", launch.name_expressions())
    assert not ok and "error" in log
