"""The demo job: synthesize a slide, extract a grid of patches into a store, report."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from gigapatch.engine import Progress, extract_to_zarr
from gigapatch.plan import grid
from gigapatch.sources import describe_file, open_slide
from gigapatch.store import PatchStore
from gigapatch.synth import synthesize

__all__ = ["DemoResult", "run_demo"]


@dataclass(frozen=True)
class DemoResult:
    """What the demo made and how fast."""

    slide_path: Path
    slide_shape: tuple[int, int]
    slide_levels: int
    synth_seconds: float
    store: PatchStore
    extract_seconds: float
    store_bytes: int

    @property
    def patches_per_second(self) -> float:
        """Extraction throughput (patches written per second)."""
        return len(self.store) / self.extract_seconds if self.extract_seconds else float("inf")


def run_demo(
    out: str | os.PathLike = "gigapatch-demo",
    *,
    size: int = 8192,
    patch: int = 299,
    seed: int = 0,
    workers: int | None = None,
    progress: Progress | None = None,
) -> DemoResult:
    """Synthesize a ``size``² slide in ``out`` and extract its ``patch``² grid into a store.

    The slide is ``out/demo-slide.svs`` and the store ``out/demo-patches.zarr``;
    both are replaced on every run.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    slide_path = synthesize(out / "demo-slide.svs", size, seed=seed, workers=workers)
    t1 = time.perf_counter()
    slide = open_slide(slide_path)
    plan = grid(slide, patch)
    store = extract_to_zarr(
        slide,
        plan,
        out / "demo-patches.zarr",
        overwrite=True,
        workers=workers,
        progress=progress,
    )
    t2 = time.perf_counter()
    return DemoResult(
        slide_path=slide_path,
        slide_shape=slide.shape,
        slide_levels=len(slide.levels),
        synth_seconds=t1 - t0,
        store=store,
        extract_seconds=t2 - t1,
        store_bytes=describe_file(store.path)["size"],
    )
