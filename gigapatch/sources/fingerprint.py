"""A cheap content fingerprint of a source file or folder, so ``--resume`` can tell a slide that
changed on disk from the one a store was made from, even at the same size and time.

For a TIFF (SVS, OME-TIFF, BigTIFF, NDPI ...): a SHA-256 of the first
64 KiB (header and first IFD), every page's shape, tile offset and byte-count
tables, and the bytes of each page's first and last tile. Re-encoding any
tile changes the tables; a different scan changes all of it. Reading costs
the tables (which opening the slide reads anyway) and two tiles per level.
For another file: its size, its first and last MiB and 16 blocks of 64 KiB
spread over it. For a folder (a Zarr store): every metadata file's bytes and
every file's name and size, with the first and last data file's bytes.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import tifffile

__all__ = ["fingerprint"]

_HEAD = 1 << 16
_BLOCK = 1 << 16
_EDGE = 1 << 20
_SPREAD = 16
_METADATA = {"zarr.json", ".zarray", ".zattrs", ".zgroup", ".zmetadata"}


def _read_at(fh: object, offset: int, nbytes: int) -> bytes:
    assert hasattr(fh, "seek") and hasattr(fh, "read")
    fh.seek(offset)
    data: bytes = fh.read(nbytes)
    return data


def _tiff(path: Path, digest: hashlib._Hash) -> bool:
    """Hash the TIFF at ``path`` into ``digest``; False when it is not a TIFF."""
    try:
        tif = tifffile.TiffFile(path)
    except (tifffile.TiffFileError, ValueError, OSError):
        return False
    with tif:
        fh = tif.filehandle
        digest.update(_read_at(fh, 0, _HEAD))
        for page in tif.pages:
            if not isinstance(page, tifffile.TiffPage):
                continue
            offsets = np.asarray(page.dataoffsets, np.uint64)
            counts = np.asarray(page.databytecounts, np.uint64)
            digest.update(repr((page.shape, page.compression, page.tile)).encode())
            digest.update(offsets.tobytes() + counts.tobytes())
            stored = np.flatnonzero(counts)
            for k in stored[[0, -1]] if len(stored) else []:
                digest.update(_read_at(fh, int(offsets[k]), min(int(counts[k]), 1 << 22)))
    return True


def _file(path: Path, digest: hashlib._Hash) -> None:
    size = path.stat().st_size
    digest.update(str(size).encode())
    with open(path, "rb") as fh:
        digest.update(_read_at(fh, 0, _EDGE))
        for k in range(_SPREAD):
            digest.update(_read_at(fh, size * k // _SPREAD, _BLOCK))
        digest.update(_read_at(fh, max(size - _EDGE, 0), _EDGE))


def _folder(path: Path, digest: hashlib._Hash) -> None:
    files = sorted(p for p in path.rglob("*") if p.is_file())
    data = [p for p in files if p.name not in _METADATA]
    for p in files:
        digest.update(f"{p.relative_to(path)}:{p.stat().st_size}\n".encode())
        if p.name in _METADATA:
            digest.update(p.read_bytes())
    for p in data[:1] + data[-1:]:
        digest.update(p.read_bytes()[:_EDGE])


def fingerprint(path: str | os.PathLike[str]) -> str:
    """The content fingerprint of the source at ``path``: ``"sha256:"`` and 64 hex digits.

    Raises
    ------
    OSError
        The file cannot be read.
    """
    path = Path(path)
    digest = hashlib.sha256()
    if path.is_dir():
        _folder(path, digest)
    elif not _tiff(path, digest):
        _file(path, digest)
    return f"sha256:{digest.hexdigest()}"
