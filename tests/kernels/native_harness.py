"""Test helper: the CUDA kernels' signatures, and their host-compiled twin (g++).

``build`` compiles ``tests/kernels/native/core_harness.cpp`` (the kernel core header
with a host loop over the thread index); ``HostKernel`` stands in for a
``cupy.RawKernel``: it checks each argument's C type against the signature
parsed from ``patches.cu``, records the launch, and runs the harness.
Run as a script (``python tests/kernels/native_harness.py LIB``) it drives a set of
cases through the real launcher and compares with NumPy: the AddressSanitizer
build is run that way, in a subprocess with ``libasan`` preloaded.
"""

from __future__ import annotations

import contextlib
import ctypes
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from gigapatch.kernels import backend, fused, launch

HERE = Path(__file__).resolve().parent
HARNESS = HERE / "native" / "core_harness.cpp"
C_DTYPES = {"unsigned char": np.uint8, "unsigned short": np.uint16, "float": np.float32,
            "int": np.int32, "long long": np.int64, "gp_half": np.float16}
SUFFIXES = {"unsigned char": "u8", "unsigned short": "u16", "float": "f32", "gp_half": "f16"}
CTYPES = {"unsigned char": ctypes.c_uint8, "unsigned short": ctypes.c_uint16,
          "float": ctypes.c_float, "int": ctypes.c_int32, "long long": ctypes.c_int64}
_SIGNATURE = re.compile(r"template\s*<([^>]*)>\s*__global__\s+void\s+(\w+)\s*\(([^)]*)\)")
_NAME = re.compile(r"^(\w+)<(.*)>$")


def kernel_signatures(
    body: str | None = None,
) -> dict[str, tuple[list[str], list[str], list[str]]]:
    """``{kernel: (template parameters, parameter C types, parameter names)}`` of ``patches.cu``."""
    body = (launch.SOURCE_DIR / "patches.cu").read_text() if body is None else body
    found = {}
    for tparams, name, params in _SIGNATURE.findall(body):
        names = [p.split()[-1] for p in tparams.split(",")]
        types = [" ".join(p.split()[:-1]).replace(" *", "*") for p in params.split(",")]
        found[name] = (names, types, [p.split()[-1] for p in params.split(",")])
    return found


def all_kernel_signatures() -> dict[str, tuple[list[str], list[str], list[str]]]:
    """The signatures of every kernel of every ``src/*.cu`` (patch kernels, resampler)."""
    found = {}
    for path in sorted(launch.SOURCE_DIR.glob("*.cu")):
        found.update(kernel_signatures(path.read_text()))
    return found


def parameter_types(name_expression: str) -> list[str]:
    """C types of the parameters of one instantiation, e.g. ``gp_gather_raw<float>``."""
    base, targs = _NAME.match(name_expression).groups()
    tnames, types, _ = all_kernel_signatures()[base]
    subst = dict(zip(tnames, (a.strip() for a in targs.split(",")), strict=True))
    out = []
    for ctype in types:
        words = re.findall(r"[A-Za-z_]\w*|\*", ctype)
        out.append(" ".join(subst.get(word, word) for word in words).replace(" *", "*"))
    return out


def named_args(name_expression: str, args: tuple) -> dict:
    """``{parameter name: argument}`` of one launch, names as in the kernel's signature."""
    names = kernel_signatures()[_NAME.match(name_expression).group(1)][2]
    return dict(zip(names, args, strict=True))


def arg_mismatches(name_expression: str, args: tuple) -> list[str]:
    """Each argument whose C type differs from the kernel parameter it lands in."""
    types = parameter_types(name_expression)
    if len(types) != len(args):
        return [f"{len(args)} arguments for {len(types)} parameters"]
    bad = []
    for i, (ctype, arg) in enumerate(zip(types, args, strict=True)):
        base = ctype.removeprefix("const ").rstrip("*").strip()
        if ctype.endswith("*"):
            ok = isinstance(arg, np.ndarray) and arg.dtype == C_DTYPES[base]
        else:
            ok = isinstance(arg, np.generic) and arg.dtype == C_DTYPES[base]
        if not ok:
            bad.append(f"argument {i}: {type(arg).__name__} {getattr(arg, 'dtype', '')} "
                       f"for {ctype}")
    return bad


def build(out_dir: Path, *, header: str | None = None, asan: bool = False,
          harness: Path = HARNESS, header_name: str = launch.HEADER) -> Path:
    """Compile ``harness`` into a shared library under ``out_dir``.

    ``header`` replaces the text of the core header ``header_name`` (the tests
    build broken copies).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    include = launch.SOURCE_DIR
    if header is not None:
        include = out_dir / "include"
        include.mkdir(parents=True, exist_ok=True)
        (include / header_name).write_text(header)
    lib = out_dir / f"{harness.stem}{'_asan' if asan else ''}.so"
    cmd = [shutil.which("g++") or "g++", "-std=c++17", "-O1", "-g", "-fPIC", "-shared",
           "-ffp-contract=off", "-Wall", "-Wextra", "-Werror", f"-I{include}", str(harness),
           "-o", str(lib)]
    if asan:
        cmd[4:4] = ["-fsanitize=address", "-fno-omit-frame-pointer"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise RuntimeError(f"g++ failed:\n{proc.stderr}")
    return lib


class HostKernel:
    """A stand-in for ``cupy.RawKernel``: type-checks, records, and runs the host harness."""

    def __init__(self, lib: ctypes.CDLL | None, name: str, calls: list) -> None:
        self.lib, self.name, self.calls = lib, name, calls

    def __call__(self, grid, block, args) -> None:
        self.calls.append(SimpleNamespace(name=self.name, grid=grid, block=block, args=args))
        bad = arg_mismatches(self.name, args)
        if bad:
            raise TypeError(f"{self.name}: " + "; ".join(bad))
        if self.lib is None:
            return
        base, targs = _NAME.match(self.name).groups()
        suffix = "_".join(SUFFIXES[a.strip()] for a in targs.split(","))
        func = getattr(self.lib, f"{base}_{suffix}")
        cargs = []
        for ctype, arg in zip(parameter_types(self.name), args, strict=True):
            if ctype.endswith("*"):
                cargs.append(ctypes.c_void_p(arg.ctypes.data))
            else:
                cargs.append(CTYPES[ctype](arg.item()))
        func(*cargs)


#: CuPy as NumPy, for kernels whose CUDA path only allocates and copies (the resampler).
FAKE_CUPY = SimpleNamespace(asarray=np.asarray, ascontiguousarray=np.ascontiguousarray,
                            empty=np.empty)


@contextlib.contextmanager
def cuda_on_host(lib, calls: list, copies: list | None = None) -> Iterator[SimpleNamespace]:
    """Drive the CUDA path without a GPU: CuPy stands as NumPy, kernels run on ``lib``.

    Inside, ``device="gpu"`` resolves (the backend sees a CuPy), every block
    takes the CUDA path of :func:`fused_gather`, and each launch is recorded in
    ``calls`` by a :class:`HostKernel` that checks the argument C types and runs
    the host-compiled core (``lib``; None records only, leaving ``out`` unset).
    ``copies`` records the (dtype, shape) of every host→device ``asarray``.
    """
    def asarray(a, *args, **kwargs):
        host = np.asarray(a, *args, **kwargs)
        if copies is not None:
            copies.append((host.dtype, host.shape))
        return host

    cupy = SimpleNamespace(asarray=asarray, ascontiguousarray=np.ascontiguousarray,
                           empty=np.empty)
    saved = backend._cupy, fused._cuda_namespace, launch.get_kernel
    backend._cupy = lambda: cupy
    fused._cuda_namespace = lambda block: cupy
    launch.get_kernel = lambda _, name: HostKernel(lib, name, calls)
    try:
        yield cupy
    finally:
        backend._cupy, fused._cuda_namespace, launch.get_kernel = saved


def host_fused(lib, calls: list | None = None, **kwargs):
    """:func:`fused_gather` through the CUDA launcher, run by the host harness ``lib``."""
    with cuda_on_host(lib, [] if calls is None else calls):
        return fused.fused_gather(**kwargs)


def random_case(rng: np.random.Generator) -> dict:
    """Random fused_gather arguments with patches inside, across and outside the block."""
    dtype = rng.choice([np.uint8, np.uint16, np.float32])
    bh, bw = (int(v) for v in rng.integers(1, 24, 2))
    c = int(rng.choice([1, 3, 4]))
    block = (rng.integers(0, 250, (bh, bw, c)) if dtype != np.float32
             else rng.normal(100, 50, (bh, bw, c))).astype(dtype)
    side = int(rng.integers(1, 8))
    size = (side, side) if rng.random() < 0.7 else (side, int(rng.integers(1, 8)))
    n = int(rng.integers(1, 7))
    ys, xs = rng.integers(-10, bh + 3, n), rng.integers(-10, bw + 3, n)
    ops = rng.integers(0, 8, n) if size[0] == size[1] else rng.choice([0, 2, 4, 6], n)
    case = {"block": block, "ys": ys, "xs": xs, "size": size,
            "dilation": (int(rng.integers(1, 4)), int(rng.integers(1, 4))),
            "fill": int(rng.integers(0, 200)), "dihedral": ops,
            "layout": str(rng.choice(["hwc", "chw"]))}
    if rng.random() < 0.7:
        case["normalize"] = str(rng.choice(["xception", "imagenet", "unit"])) if c == 3 else "unit"
        case["dtype"] = str(rng.choice(["float32", "float16"]))
        if rng.random() < 0.5:
            case["jitter"] = np.stack([rng.uniform(0.5, 1.5, n), rng.uniform(-40, 40, n)], 1)
    return case


def compare_random(lib, cases: int, seed: int) -> list[str]:
    """Run random cases on the harness and on NumPy; describe every disagreement."""
    rng = np.random.default_rng(seed)
    failures = []
    for i in range(cases):
        case = random_case(rng)
        got = host_fused(lib, **case)
        want = fused.fused_gather(**case)
        if got.dtype != want.dtype or not np.array_equal(got, want, equal_nan=True):
            failures.append(f"case {i}: {case['block'].dtype} {case['size']} "
                            f"{case.get('normalize')} {case.get('dtype')} {case['layout']}")
    return failures


if __name__ == "__main__":  # the ASan run: python tests/kernels/native_harness.py LIB [CASES]
    problems = compare_random(ctypes.CDLL(sys.argv[1]), int(sys.argv[2]), seed=11)
    print("\n".join(problems) or f"{sys.argv[2]} cases agree")
    sys.exit(1 if problems else 0)


class FakeCupyModules:
    """Just enough of CuPy for the kernel module caches: a current device and RawModule."""

    def __init__(self) -> None:
        self.device = 0
        self.built: list[dict] = []
        self.cuda = SimpleNamespace(Device=lambda: SimpleNamespace(id=self.device))

    def RawModule(self, **kwargs):
        self.built.append(kwargs)
        return SimpleNamespace(get_function=lambda name: ("kernel", name, self.device))


def run_asan(script: Path, lib: Path, cases: int):
    """Run a harness ``script`` on ``lib`` in a fresh process with AddressSanitizer preloaded
    (skips when g++ has no libasan); the repository root is importable there."""
    import os
    import subprocess
    import sys

    import pytest

    libasan = subprocess.run(["g++", "-print-file-name=libasan.so"], capture_output=True,
                             text=True, check=True).stdout.strip()
    if not os.path.isabs(libasan):
        pytest.skip("libasan.so is not installed with g++: no AddressSanitizer run")
    root = str(Path(script).resolve().parents[2])
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "LD_PRELOAD": libasan, "ASAN_OPTIONS": "detect_leaks=0",
           "PYTHONPATH": path}
    return subprocess.run([sys.executable, str(script), str(lib), str(cases)], env=env,
                          capture_output=True, text=True, check=False, cwd=root, timeout=300)


def demangled_parameters(source: str, names: list[str]) -> dict[str, list[str]]:
    """The parameter C types NVRTC itself gives each instantiation in ``names`` of ``source``
    (demangled, ``T const*`` spelled ``const T*``); skips without ``c++filt``."""
    import shutil
    import subprocess

    import pytest

    from tests.kernels.test_cuda_compile import compile_cubin

    demangle = shutil.which("c++filt")
    if demangle is None:
        pytest.skip("c++filt is not installed: cannot demangle NVRTC's names")
    ok, log, lowered, _ = compile_cubin(source, "sm_90", names)
    assert ok, log
    found = {}
    for name in names:
        text = subprocess.run([demangle, lowered[name]], capture_output=True, text=True,
                              check=True).stdout
        params = text[text.index("(", text.index(">")) + 1 : text.rindex(")")].split(", ")
        found[name] = [re.sub(r"^(.*) const\*$", r"const \1*", p) for p in params]
    return found
