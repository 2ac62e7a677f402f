"""The one error hierarchy of gigapatch.

Every error gigapatch raises on purpose derives from :class:`GigapatchError`,
so callers (and the command line) can tell a problem with the user's input
from a bug. Each subclass also derives from the builtin a Python user would
expect (``ValueError`` for bad arguments, ``OSError`` for files), as zarr
does with ``BaseZarrError(ValueError)``.

Messages name the argument or file, what was expected and what was received,
in one line: the command line prints them as they are.
"""

from __future__ import annotations

__all__ = [
    "ClusterError",
    "DeviceError",
    "GigapatchError",
    "InvalidArgumentError",
    "RegionError",
    "SlideError",
    "StoreError",
    "StoreExistsError",
]


class GigapatchError(Exception):
    """Base class of every error gigapatch raises on purpose."""


class InvalidArgumentError(GigapatchError, ValueError):
    """An argument has the wrong type, range or combination."""


class SlideError(GigapatchError, OSError):
    """A source image cannot be opened or decoded (missing, not an image, corrupt)."""


class RegionError(GigapatchError, ValueError):
    """A requested region or patch does not fit inside the image."""


class StoreError(GigapatchError, OSError):
    """A patch store is missing, incomplete, or not a gigapatch store."""


class StoreExistsError(StoreError, FileExistsError):
    """The output store exists and neither overwrite nor resume was asked for."""


class DeviceError(GigapatchError, RuntimeError):
    """The requested compute device (GPU) is not available."""


class ClusterError(GigapatchError, ConnectionError):
    """A Dask distributed scheduler cannot be reached."""
