"""Sources: open images of every supported format behind one :class:`Slide`."""

from gigapatch.sources.array import open_array
from gigapatch.sources.opener import open_slide
from gigapatch.sources.slide import Level, Slide, describe_file
from gigapatch.sources.tiff import open_tiff
from gigapatch.sources.zarr import open_zarr

__all__ = [
    "Level", "Slide", "describe_file", "open_array", "open_slide", "open_tiff", "open_zarr",
]
