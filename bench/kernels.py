"""Kernel throughput: gather and gather+normalize against a memcpy of the same bytes.

Run as a script (``python bench/kernels.py``). From one decoded RGB uint8
block (4096² by default, in memory), it cuts ``--patches`` patches at random
positions, for 256² and 299² patches, and times in one run, each
``--repeats`` times, every output buffer allocated and touched once before:

* ``np.copyto``: the same number of output bytes copied from a contiguous
  array — the machine's memcpy bandwidth, the ceiling for any gather;
* ``gather``: :func:`gigapatch.kernels.gather` (one strided slice per patch);
* ``fused xception f32`` / ``fused imagenet f16 chw + dihedral``:
  :func:`gigapatch.kernels.fused_gather` with a normalization (output bytes
  are 4× / 2× the uint8 patch bytes);
* baselines: a naive loop (``np.stack`` of slices, new array each time),
  ``sliding_window_view`` indexed by the positions (view_as_windows style),
  and fancy indexing with index grids.

Throughput is GB/s of output bytes; ratios are against ``np.copyto`` of the
same byte count. Prints a table, writes JSON under ``bench/results/``. On a
machine with a CUDA device (CuPy), also times the fused kernel against a
device-to-device copy.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from gigapatch.kernels import fused_gather, gather
from gigapatch.kernels.backend import _cupy

HERE = Path(__file__).resolve().parent


def _timed(fn, repeats: int, sync=lambda: None) -> list[float]:
    fn()  # warm: first touch of outputs, caches, kernel compilation
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return times


def _cases(block, ys, xs, side: int):
    """(name, function, output bytes) for one patch size, on the host."""
    n, c = len(ys), block.shape[2]
    nbytes = n * side * side * c
    src = np.resize(block.reshape(-1), nbytes)  # contiguous, as many bytes as the output
    dst = np.empty(nbytes, np.uint8)
    out_u8 = np.empty((n, side, side, c), np.uint8)
    out_f32 = np.empty((n, side, side, c), np.float32)
    out_f16 = np.empty((n, c, side, side), np.float16)
    ops = np.arange(n, dtype=np.int32) % 8
    windows = np.lib.stride_tricks.sliding_window_view(block, (side, side, c))
    ii, jj = np.ogrid[:side, :side]
    return [
        ("np.copyto (memcpy)", lambda: np.copyto(dst, src), nbytes),
        ("gather", lambda: gather(block, ys, xs, side, out=out_u8), nbytes),
        ("fused xception f32", lambda: fused_gather(block, ys, xs, side, normalize="xception",
                                                    out=out_f32), 4 * nbytes),
        ("fused imagenet f16 chw + dihedral",
         lambda: fused_gather(block, ys, xs, side, normalize="imagenet", dtype="float16",
                              layout="chw", dihedral=ops, out=out_f16), 2 * nbytes),
        ("naive loop (np.stack of slices)",
         lambda: np.stack([block[y : y + side, x : x + side] for y, x in zip(ys, xs, strict=True)]),
         nbytes),
        ("sliding_window_view[ys, xs]", lambda: windows[ys, xs, 0], nbytes),
        ("fancy indexing", lambda: block[ys[:, None, None] + ii, xs[:, None, None] + jj], nbytes),
    ]


def _gpu_cases(cp, block, ys, xs, side: int):
    n, c = len(ys), block.shape[2]
    nbytes = n * side * side * c
    dblock = cp.asarray(block)
    src = cp.asarray(np.resize(block.reshape(-1), nbytes))
    dst = cp.empty_like(src)
    out_u8 = cp.empty((n, side, side, c), cp.uint8)
    out_f32 = cp.empty((n, side, side, c), cp.float32)
    return [
        ("GPU device-to-device copy", lambda: cp.copyto(dst, src), nbytes),
        ("GPU fused gather (one launch)", lambda: fused_gather(dblock, ys, xs, side, out=out_u8),
         nbytes),
        ("GPU fused xception f32", lambda: fused_gather(dblock, ys, xs, side,
                                                        normalize="xception", out=out_f32),
         4 * nbytes),
    ]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--block", type=int, default=4096, help="block side in pixels")
    parser.add_argument("--patches", type=int, default=256, help="patches per batch")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 299])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs (best and median)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    block = rng.integers(0, 256, (args.block, args.block, 3), dtype=np.uint8)
    cp = _cupy()
    rows = []
    for side in args.sizes:
        ys = rng.integers(0, args.block - side + 1, args.patches)
        xs = rng.integers(0, args.block - side + 1, args.patches)
        groups = [("cpu", _cases(block, ys, xs, side), lambda: None)]
        if cp is not None:
            groups.append(("gpu", _gpu_cases(cp, block, ys, xs, side),
                           cp.cuda.Device().synchronize))
        for device, cases, sync in groups:
            base = None
            for name, fn, nbytes in cases:
                times = _timed(fn, args.repeats, sync)
                best, median = nbytes / min(times) / 1e9, nbytes / statistics.median(times) / 1e9
                base = base or (best, median)
                rows.append({"device": device, "patch": side, "method": name,
                             "output_bytes": nbytes, "best_gbps": best, "median_gbps": median,
                             "ratio_best": best / base[0], "ratio_median": median / base[1],
                             "times_s": times})
    _print(rows, args)
    result = {"bench": "kernels", "args": {k: str(v) for k, v in vars(args).items()},
              "machine": {"python": sys.version.split()[0], "numpy": np.__version__,
                          "platform": platform.platform(), "processor": platform.processor()},
              "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "rows": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"kernels-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=1))
    print(f"\nwrote {path}")
    return result


def _print(rows: list[dict], args) -> None:
    print(f"{args.patches} RGB uint8 patches from a {args.block}² block, best / median of "
          f"{args.repeats}; GB/s of output bytes; ratio to the memcpy of the same bytes")
    print(f"{'dev':4} {'patch':>5}  {'method':36} {'best':>7} {'median':>7} {'x best':>7} "
          f"{'x med':>7}")
    for r in rows:
        print(f"{r['device']:4} {r['patch']:>5}  {r['method']:36} {r['best_gbps']:7.2f} "
              f"{r['median_gbps']:7.2f} {r['ratio_best']:7.2f} {r['ratio_median']:7.2f}")


if __name__ == "__main__":
    main()
