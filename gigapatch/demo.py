"""The demo job: the main job of a pathology user, on a synthetic slide.

A 40x scan (0.25 µm/px at level 0, levels 4x apart: 0.25, 1, 4 µm/px — the
most common layout in pathology) is synthesized, then 299² patches (Xception's
input size) are cut on a grid at 20x (0.5 µm/px) from tissue only (at least
half of each patch's footprint on the tissue mask) into a Zarr v3 store, with
the coordinates and tissue fraction of every patch. The slide has no 20x
level, so each patch is read as 598² pixels of level 0 and area-averaged 2×
down: the path real scans take.
"""

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
    slide_mpp: float
    patch_mpp: float
    resampling: str
    synth_seconds: float
    store: PatchStore
    extract_seconds: float
    store_bytes: int

    @property
    def patches_per_second(self) -> float:
        """Extraction throughput (patches written per second)."""
        return len(self.store) / self.extract_seconds if self.extract_seconds else float("inf")


def run_demo(
    out: str | os.PathLike[str] = "gigapatch-demo",
    *,
    size: int = 8192,
    patch: int = 299,
    mpp: float = 0.5,
    slide_mpp: float = 0.25,
    min_tissue: float = 0.5,
    seed: int = 0,
    workers: int | None = None,
    progress: Progress | None = None,
) -> DemoResult:
    """Synthesize a ``size``² slide in ``out`` and extract its tissue ``patch``² grid.

    The slide (``slide_mpp`` µm/px at level 0, 40x by default) is
    ``out/demo-slide.svs`` and the store ``out/demo-patches.zarr``; both are
    replaced on every run. Patches are cut at ``mpp`` (20x by default: read
    from level 0 and downsampled) and kept where at least ``min_tissue`` of
    their footprint is tissue.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    slide_path = synthesize(
        out / "demo-slide.svs", size, seed=seed, mpp=slide_mpp, workers=workers
    )
    t1 = time.perf_counter()
    slide = open_slide(slide_path)
    plan = grid(slide, patch, mpp=mpp, min_tissue=min_tissue)
    if progress is not None:  # extraction starts: a progress clock counts from here, not
        progress(0, len(plan))  # from the slide's synthesis
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
        slide_mpp=slide_mpp,
        patch_mpp=mpp,
        resampling=str(store.sources[0].get("resampling", "none")),
        synth_seconds=t1 - t0,
        store=store,
        extract_seconds=t2 - t1,
        store_bytes=describe_file(store.path)["size"],
    )
