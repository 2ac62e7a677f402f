"""`open`: pick the reader for a path, a Zarr array or an in-memory array.

``reader="auto"`` reads TIFF files with tifffile, Zarr folders with zarr-python, and any
other file OpenSlide knows (``OpenSlide.detect_format``) through OpenSlide when the
``openslide`` extra is installed; a TIFF that tifffile cannot parse, or whose layout
gigapatch does not read, also goes to OpenSlide when OpenSlide knows it (a corrupt or
truncated TIFF stays an error).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Literal

import numpy as np

from gigapatch.errors import InvalidArgumentError, SlideError
from gigapatch.sources.array import open_array
from gigapatch.sources.openslide import EXTRA_HINT, load_openslide, open_openslide, vendor_of
from gigapatch.sources.series import choose_series
from gigapatch.sources.slide import Slide
from gigapatch.sources.tiff import UnsupportedTiffError, open_tiff
from gigapatch.sources.zarr import open_zarr

__all__ = ["READERS", "ReaderName", "is_zarr", "open_slide"]

#: What ``reader=`` takes.
ReaderName = Literal["auto", "tifffile", "openslide"]
READERS: tuple[ReaderName, ...] = ("auto", "tifffile", "openslide")

_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_ZARR_MARKERS = ("zarr.json", ".zarray", ".zgroup")
_LOG = logging.getLogger(__name__)


def is_zarr(folder: Path) -> bool:
    """Whether ``folder`` is a Zarr v2 or v3 array or group."""
    return any((folder / m).exists() for m in _ZARR_MARKERS)


def _is_zarr_array(obj: Any) -> bool:
    module = type(obj).__module__ or ""
    return module.startswith("zarr") and hasattr(obj, "chunks") and hasattr(obj, "shape")


def open_slide(
    source: str | os.PathLike[str] | np.ndarray | Any,
    *,
    axes: str | None = None,
    series: int | str | None = None,
    reader: ReaderName = "auto",
) -> Slide:
    """Open a whole-slide image, a Zarr image or an array as a :class:`Slide`.

    Parameters
    ----------
    source
        A TIFF file (Aperio SVS, OME-TIFF, NDPI, Leica SCN, Ventana BIF, generic tiled or
        stripped TIFF or BigTIFF, pyramidal or not), any file OpenSlide reads (MRXS, VMS/VMU,
        …; needs the ``openslide`` extra), a Zarr v2/v3 array or OME-Zarr image folder, a
        ``zarr.Array``, a NumPy array, or a `Slide` (returned as is).
    axes
        Layout of array sources without metadata: by default (h, w) or
        (h, w, C); e.g. ``"cyx"`` for channels first.
    series
        Which image of a file holding several (SVS thumbnail, NDPI macro, OME-TIFF images,
        SCN regions…): an index or a name, as listed by :attr:`Slide.series`. ``None``
        (default): the largest pyramid (most level-0 pixels).
    reader
        ``"auto"`` (default): tifffile for TIFF files, zarr-python for Zarr, else OpenSlide
        when installed and it knows the file. ``"tifffile"`` or ``"openslide"`` force one.

    Returns
    -------
    Slide

    Raises
    ------
    SlideError
        The file is missing, empty, truncated, not an image, or of an
        unsupported layout (the message names the file and what was expected), or
        it needs OpenSlide and the ``openslide`` extra is not installed.
    InvalidArgumentError
        ``reader`` is not one of ``READERS``; ``series`` names no image of the file (the
        message lists them); ``series`` or ``reader`` given with an in-memory source.
    """
    if not isinstance(reader, str) or reader not in READERS:
        raise InvalidArgumentError(
            f"reader must be one of {', '.join(map(repr, READERS))}; got {reader!r}"
        )
    if not isinstance(source, str | os.PathLike):
        if series is not None or reader != "auto":
            raise InvalidArgumentError(
                "series and reader apply when opening a path; got "
                f"series={series!r}, reader={reader!r} with a {type(source).__name__}"
            )
        if isinstance(source, Slide):
            return source
        if isinstance(source, np.ndarray):
            return open_array(source, axes=axes)
        if _is_zarr_array(source):
            return open_zarr(source, axes=axes)
        raise InvalidArgumentError(
            "source must be a path, a NumPy or Zarr array, or a Slide; "
            f"got {type(source).__name__}"
        )
    path = Path(source)
    if not path.exists():
        raise SlideError(f"{str(path)!r} does not exist")
    if reader == "openslide":
        return open_openslide(path, series=series)
    if path.is_dir():
        if is_zarr(path) and reader == "auto":
            slide = open_zarr(path, axes=axes)
            choose_series(slide.series, series, str(path))  # only 0 (or its name) is valid
            return slide
        expected = "a TIFF file" if reader == "tifffile" else "an image file or a Zarr store"
        raise SlideError(f"{str(path)!r} is a directory, expected {expected}")
    try:
        with path.open("rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise SlideError(f"cannot read {str(path)!r}: {exc.strerror}") from None
    if not magic:
        raise SlideError(f"{str(path)!r} is empty, expected a TIFF image")
    if magic in _TIFF_MAGIC:
        if reader == "tifffile":
            return open_tiff(path, series=series)
        try:
            return open_tiff(path, series=series)
        except UnsupportedTiffError as tiff_error:
            if vendor_of(path) is None:
                raise
            _LOG.info("%s: tifffile cannot read it (%s); reading it with OpenSlide", path,
                      tiff_error)
            try:
                return open_openslide(path, series=series)
            except SlideError:
                raise tiff_error from None
    if reader == "tifffile":
        raise SlideError(f"{str(path)!r} is not a TIFF image (reader='tifffile' reads TIFF)")
    if vendor_of(path) is not None:
        _LOG.debug("%s: not a TIFF; reading it with OpenSlide", path)
        return open_openslide(path, series=series)
    supported = "supported: .svs, .tif, .tiff, .ome.tif, Zarr v2/v3, OME-Zarr"
    if load_openslide() is None:
        raise SlideError(
            f"{str(path)!r} is not a TIFF image or Zarr store ({supported}); other slide "
            f"formats (MRXS, VMS, ...) need OpenSlide, which is not installed: {EXTRA_HINT}"
        )
    raise SlideError(
        f"{str(path)!r} is not a TIFF image or Zarr store, nor a slide OpenSlide knows "
        f"({supported}, and what OpenSlide reads: MRXS, VMS, VMU, SCN, BIF, ...)"
    )
