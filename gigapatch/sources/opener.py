"""`open`: pick the reader for a path or an array."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from gigapatch.errors import InvalidArgumentError, SlideError
from gigapatch.sources.array import open_array
from gigapatch.sources.slide import Slide
from gigapatch.sources.tiff import open_tiff

__all__ = ["open_slide"]

_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


def open_slide(source: str | os.PathLike | np.ndarray | Slide) -> Slide:
    """Open a whole-slide image, or wrap an array, as a :class:`Slide`.

    Parameters
    ----------
    source
        Path to a TIFF file (Aperio SVS, generic tiled or stripped, pyramidal
        or not), an (h, w) or (h, w, C) NumPy array, or a `Slide` (returned
        as is).

    Returns
    -------
    Slide

    Raises
    ------
    SlideError
        The file is missing, is a directory, is empty or is not a TIFF image.
    """
    if isinstance(source, Slide):
        return source
    if isinstance(source, np.ndarray):
        return open_array(source)
    if not isinstance(source, str | os.PathLike):
        raise InvalidArgumentError(
            f"source must be a path, a NumPy array or a Slide; got {type(source).__name__}"
        )
    path = Path(source)
    if not path.exists():
        raise SlideError(f"{str(path)!r} does not exist")
    if path.is_dir():
        raise SlideError(f"{str(path)!r} is a directory, expected an image file")
    try:
        with path.open("rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise SlideError(f"cannot read {str(path)!r}: {exc.strerror}") from None
    if not magic:
        raise SlideError(f"{str(path)!r} is empty, expected a TIFF image")
    if magic in _TIFF_MAGIC:
        return open_tiff(path)
    raise SlideError(f"{str(path)!r} is not a TIFF image (supported: .svs, .tif, .tiff)")
