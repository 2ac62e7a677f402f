"""`describe_file`: the record of a source file (or Zarr folder) that stores keep.

Path, total size and modification time, and, given the slide opened from it,
the file's images (``series``) and the one read: what a store's metadata
records of each source, and what ``info`` and the store summary print.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gigapatch.sources.slide import Slide

__all__ = ["describe_file"]


def describe_file(
    path: str | os.PathLike[str], *, slide: Slide | None = None
) -> dict[str, Any]:
    """Return ``{"path", "size", "mtime"}`` of a file or folder (a Zarr store), as stores record.

    ``size`` is the total bytes of the files under a folder. Given the ``slide`` opened from
    ``path``, the record also lists the file's images, ``"series"`` (a list of ``{"index",
    "name", "shape", "levels"}``), and the one the slide reads, ``"series_index"``.
    """
    st = os.stat(path)
    size = st.st_size
    if os.path.isdir(path):
        size = sum(
            os.path.getsize(os.path.join(root, name))
            for root, _, files in os.walk(path)
            for name in files
        )
    record: dict[str, Any] = {"path": os.path.abspath(path), "size": size, "mtime": st.st_mtime}
    if slide is not None:
        record["series"] = [
            {"index": s.index, "name": s.name, "shape": list(s.shape), "levels": s.levels}
            for s in slide.series
        ]
        record["series_index"] = slide.series_index
    return record
