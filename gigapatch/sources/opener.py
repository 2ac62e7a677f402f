"""`open`: pick the reader for a path, a Zarr array or an in-memory array."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from gigapatch.errors import InvalidArgumentError, SlideError
from gigapatch.sources.array import open_array
from gigapatch.sources.slide import Slide
from gigapatch.sources.tiff import open_tiff
from gigapatch.sources.zarr import open_zarr

__all__ = ["is_zarr", "open_slide"]

_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_ZARR_MARKERS = ("zarr.json", ".zarray", ".zgroup")


def is_zarr(folder: Path) -> bool:
    """Whether ``folder`` is a Zarr v2 or v3 array or group."""
    return any((folder / m).exists() for m in _ZARR_MARKERS)


def _is_zarr_array(obj: Any) -> bool:
    module = type(obj).__module__ or ""
    return module.startswith("zarr") and hasattr(obj, "chunks") and hasattr(obj, "shape")


def open_slide(
    source: str | os.PathLike[str] | np.ndarray | Any, *, axes: str | None = None
) -> Slide:
    """Open a whole-slide image, a Zarr image or an array as a :class:`Slide`.

    Parameters
    ----------
    source
        A TIFF file (Aperio SVS, OME-TIFF, generic tiled or stripped TIFF or
        BigTIFF, pyramidal or not), a Zarr v2/v3 array or OME-Zarr image
        folder, a ``zarr.Array``, a NumPy array, or a `Slide` (returned as is).
    axes
        Layout of array sources without metadata: by default (h, w) or
        (h, w, C); e.g. ``"cyx"`` for channels first.

    Returns
    -------
    Slide

    Raises
    ------
    SlideError
        The file is missing, empty, truncated, not an image, or of an
        unsupported layout (the message names the file and what was expected).
    """
    if isinstance(source, Slide):
        return source
    if isinstance(source, np.ndarray):
        return open_array(source, axes=axes)
    if _is_zarr_array(source):
        return open_zarr(source, axes=axes)
    if not isinstance(source, str | os.PathLike):
        raise InvalidArgumentError(
            "source must be a path, a NumPy or Zarr array, or a Slide; "
            f"got {type(source).__name__}"
        )
    path = Path(source)
    if not path.exists():
        raise SlideError(f"{str(path)!r} does not exist")
    if path.is_dir():
        if is_zarr(path):
            return open_zarr(path, axes=axes)
        raise SlideError(
            f"{str(path)!r} is a directory, expected an image file or a Zarr store"
        )
    try:
        with path.open("rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise SlideError(f"cannot read {str(path)!r}: {exc.strerror}") from None
    if not magic:
        raise SlideError(f"{str(path)!r} is empty, expected a TIFF image")
    if magic in _TIFF_MAGIC:
        return open_tiff(path)
    raise SlideError(
        f"{str(path)!r} is not a TIFF image or Zarr store (supported: .svs, .tif, .tiff, "
        ".ome.tif, Zarr v2/v3, OME-Zarr)"
    )
