"""The loops users write today: a ``read_region`` per patch with tiffslide or OpenSlide, then
``cv2.resize(..., INTER_AREA)`` when the patches are resampled — for :mod:`.benchmark`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from gigapatch.engine.tiles import split
from gigapatch.plan import PatchPlan
from gigapatch.sources import Slide

__all__ = ["LIBRARIES", "Loop", "LoopUnavailable", "read_region_loop"]

#: The libraries a loop can use, and how to install each.
LIBRARIES = {
    "tiffslide": "pip install tiffslide",
    "openslide": "pip install openslide-python openslide-bin",
}


class LoopUnavailable(Exception):
    """A loop cannot run here; the message says why (shown in the table)."""


def _opener(library: str) -> Callable[[str], Any]:
    """A function opening a slide file with ``library``, or LoopUnavailable."""
    try:
        if library == "tiffslide":
            import tiffslide

            return lambda path: tiffslide.TiffSlide(path)
        import openslide

        return lambda path: openslide.OpenSlide(path)
    except (ImportError, OSError):  # OpenSlide's Python module without its library: OSError
        raise LoopUnavailable(f"not installed ({LIBRARIES[library]})") from None


def _resizer(factor: float, size: tuple[int, int]) -> Callable[[Any], Any]:
    if factor == 1.0:
        return lambda region: region
    try:
        import cv2
    except ImportError:
        raise LoopUnavailable(
            "not installed (pip install opencv-python-headless, for the resize)"
        ) from None
    h, w = size
    return lambda region: cv2.resize(region, (w, h), interpolation=cv2.INTER_AREA)


class Loop:
    """A user's loop over the patches of a plan: call it to run it once; :meth:`close` the
    library's handles after."""

    def __init__(self, handles: list[Any], read: Callable[[Any, int, int], Any],
                 resize: Callable[[Any], Any], plan: PatchPlan) -> None:
        self._handles = handles
        self._read = read
        self._resize = resize
        self._ys, self._xs = plan.y.tolist(), plan.x.tolist()

    def _work(self, ids: Sequence[int]) -> None:
        workers = len(self._handles)
        for k in ids:
            handle = self._handles[k]
            for i in range(k, len(self._ys), workers):
                self._resize(self._read(handle, self._ys[i], self._xs[i]))

    def __call__(self) -> None:
        """Read every patch once, on one thread per handle."""
        split(list(range(len(self._handles))), len(self._handles), self._work)

    def close(self) -> None:
        """Close the library's handles."""
        for handle in self._handles:
            handle.close()
        self._handles = []


def read_region_loop(library: str, slide: Slide, plan: PatchPlan, workers: int) -> Loop:
    """The loop a user writes to read every patch of ``plan`` (one source: ``slide``) with
    ``library``: ``read_region`` per patch (then ``cv2.resize(..., INTER_AREA)`` for resampled
    patches) on ``workers`` threads, one handle each, opened here, before any timing.

    Raises
    ------
    LoopUnavailable
        ``library`` (or OpenCV, for resampled patches) is not installed, or it
        cannot open the slide.
    """
    if library not in LIBRARIES:
        raise ValueError(f"library must be one of {', '.join(LIBRARIES)}; got {library!r}")
    if slide.path is None:
        raise LoopUnavailable("needs a slide file")
    open_with = _opener(library)
    resize = _resizer(plan.factor_of(0), plan.size)
    handles: list[Any] = []
    try:
        for _ in range(workers):
            handles.append(open_with(slide.path))
    except Exception as exc:  # each library raises its own types for files it cannot read
        for handle in handles:
            handle.close()
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise LoopUnavailable(f"cannot open the slide: {first}") from None
    level = plan.level_of(0)
    rh, rw = plan.read_size(0)

    if library == "tiffslide":
        def read(handle: Any, y: int, x: int) -> Any:
            return handle.read_region((x, y), level, (rw, rh), as_array=True)
    else:
        def read(handle: Any, y: int, x: int) -> Any:
            return np.asarray(handle.read_region((x, y), level, (rw, rh)).convert("RGB"))

    return Loop(handles, read, resize, plan)
