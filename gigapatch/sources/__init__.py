"""Sources: open images of every supported format behind one :class:`Slide`."""

from gigapatch.sources.array import open_array
from gigapatch.sources.describe import describe_file
from gigapatch.sources.fingerprint import fingerprint
from gigapatch.sources.opener import READERS, open_slide
from gigapatch.sources.openslide import open_openslide
from gigapatch.sources.series import Series
from gigapatch.sources.slide import Level, Slide
from gigapatch.sources.tiff import open_tiff
from gigapatch.sources.zarr import open_zarr

__all__ = [
    "READERS", "Level", "Series", "Slide", "describe_file", "fingerprint", "open_array",
    "open_openslide", "open_slide", "open_tiff", "open_zarr",
]
