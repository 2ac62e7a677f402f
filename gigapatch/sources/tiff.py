"""TIFF sources: Aperio SVS, generic tiled or stripped (Big)TIFF pyramids.

tifffile parses the file once (series, levels, tags); pixel reads then fetch
only the encoded segments (tiles or strips) a region touches, with
``os.pread`` on a plain file descriptor (thread-safe, no shared seek
position), and decode each with the page's own decoder (any codec tifffile
supports, JPEG tables included). Each touched segment is decoded exactly once
per read.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from pathlib import Path
from struct import error as struct_error

import numpy as np
import tifffile

from gigapatch.errors import SlideError
from gigapatch.sources.slide import Level, Slide

__all__ = ["open_tiff"]

_SVS_MPP = re.compile(r"\|\s*MPP\s*=\s*([0-9.eE+-]+)")


def _mpp_of(tif: tifffile.TiffFile, page: tifffile.TiffPage) -> float | None:
    """Microns per pixel of level 0 from the SVS description or the resolution tags."""
    if tif.is_svs:
        match = _SVS_MPP.search(page.description or "")
        if match:
            return float(match.group(1))
    unit = page.resolutionunit
    xres = page.resolution[0] if page.resolution else 0.0
    if not xres or unit == tifffile.RESUNIT.NONE:
        return None
    if unit == tifffile.RESUNIT.CENTIMETER:
        return 1e4 / xres
    if unit == tifffile.RESUNIT.INCH:
        return 25400.0 / xres
    if unit == tifffile.RESUNIT.MILLIMETER:
        return 1e3 / xres
    if unit == tifffile.RESUNIT.MICROMETER:
        return 1.0 / xres
    return None


class TiffReader:
    """Reads the levels of the first image series of a TIFF file.

    Parameters
    ----------
    path
        The TIFF file.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        log = logging.getLogger("tifffile")
        level = log.level
        log.setLevel(logging.CRITICAL)  # tifffile logs what it skips; we report one error
        try:
            with tifffile.TiffFile(path) as tif:
                self._parse(tif)
        except (tifffile.TiffFileError, ValueError, IndexError, KeyError, struct_error) as exc:
            raise SlideError(f"{path!r} is not a readable TIFF image: {exc}") from None
        finally:
            log.setLevel(level)
        self._check_segments(os.path.getsize(path))
        self._fd: int | None = None
        self._lock = threading.Lock()

    def _parse(self, tif: tifffile.TiffFile) -> None:
        if not tif.series:
            raise SlideError(f"{self.path!r} contains no image")
        series = tif.series[0]
        self.format = "svs" if tif.is_svs else "ome-tiff" if tif.is_ome else "tiff"
        pages: list[tifffile.TiffPage] = []
        for lvl in series.levels:
            page = lvl.keyframe
            if not isinstance(page, tifffile.TiffPage) or lvl.shape != page.shape:
                raise SlideError(
                    f"{self.path!r}: image series with shape {lvl.shape} and axes "
                    f"{lvl.axes!r} is not supported yet (expected one page per level)"
                )
            if (
                page.imagedepth != 1
                or page.ndim not in (2, 3)
                or (page.ndim == 3 and page.planarconfig != tifffile.PLANARCONFIG.CONTIG)
            ):
                raise SlideError(
                    f"{self.path!r}: page layout with shape {page.shape} and planar "
                    f"configuration {page.planarconfig.name} is not supported yet"
                )
            pages.append(page)
        h0, w0 = pages[0].imagelength, pages[0].imagewidth
        levels = []
        for page in pages:
            h, w = page.imagelength, page.imagewidth
            tile = (
                (page.tilelength, page.tilewidth)
                if page.is_tiled
                else (min(page.rowsperstrip, h), w)
            )
            levels.append(
                Level(
                    shape=(h, w),
                    downsample=(h0 / h, w0 / w),
                    tile=tile,
                    compression=page.compression.name.lower(),
                )
            )
        self.levels = tuple(levels)
        self.dtype = np.dtype(pages[0].dtype)
        self.channels = int(pages[0].samplesperpixel)
        self.mpp = _mpp_of(tif, pages[0])
        # what reads need, detached from the (closed) TiffFile
        self._segments = [
            (np.asarray(p.dataoffsets, np.int64), np.asarray(p.databytecounts, np.int64))
            for p in pages
        ]
        self._decoders = [p.decode for p in pages]
        self._jpegtables = [p.jpegtables for p in pages]

    def _check_segments(self, file_size: int) -> None:
        """Refuse files whose segment tables are incomplete or point past the end (truncated)."""
        for k, ((offsets, counts), lvl) in enumerate(zip(self._segments, self.levels, strict=True)):
            (h, w), (th, tw) = lvl.shape, lvl.tile
            expected = -(-h // th) * -(-w // tw)
            if len(offsets) != expected or len(counts) != expected:
                raise SlideError(
                    f"{self.path!r} is corrupt: level {k} lists {len(offsets)} segment offsets "
                    f"and {len(counts)} byte counts, expected {expected} of each"
                )
            if expected and int((offsets + counts).max()) > file_size:
                raise SlideError(
                    f"{self.path!r} is truncated: level {k} data ends past the end of the file "
                    f"({file_size} bytes)"
                )

    # ------------------------------------------------------------------ file handle
    def _handle(self) -> int:
        if self._fd is None:
            with self._lock:
                if self._fd is None:
                    try:
                        self._fd = os.open(self.path, os.O_RDONLY)
                    except OSError as exc:
                        raise SlideError(f"cannot reopen {self.path!r}: {exc.strerror}") from None
        return self._fd

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def __del__(self) -> None:
        fd = getattr(self, "_fd", None)
        if fd is not None:
            os.close(fd)

    # ------------------------------------------------------------------ pixels
    def read_level(self, level: int, y: int, x: int, out: np.ndarray) -> None:
        """Decode the segments that ``out``'s region touches and copy their overlap."""
        h, w = out.shape[:2]
        th, tw = self.levels[level].tile
        lh, lw = self.levels[level].shape
        across = -(-lw // tw)
        offsets, counts = self._segments[level]
        decode, tables = self._decoders[level], self._jpegtables[level]
        fd = self._handle()
        for ty in range(y // th, (y + h - 1) // th + 1):
            for tx in range(x // tw, (x + w - 1) // tw + 1):
                index = ty * across + tx
                sy, sx = ty * th, tx * tw
                # overlap of the segment with the region, in level pixels
                ya, yb = max(y, sy), min(y + h, sy + th, lh)
                xa, xb = max(x, sx), min(x + w, sx + tw, lw)
                target = out[ya - y : yb - y, xa - x : xb - x]
                nbytes = int(counts[index])
                if nbytes == 0:
                    target[...] = 0
                    continue
                data = os.pread(fd, nbytes, int(offsets[index]))
                if len(data) != nbytes:
                    raise SlideError(
                        f"{self.path!r} is truncated: level {level} segment {index} ends past "
                        "the end of the file"
                    )
                try:
                    segment = decode(data, index, jpegtables=tables)[0]
                except Exception as exc:  # codec errors come as many types
                    raise SlideError(
                        f"{self.path!r}: cannot decode level {level} segment {index}: {exc}"
                    ) from None
                segment = segment.reshape(segment.shape[-3:])  # drop the depth axis
                target[...] = segment[ya - sy : yb - sy, xa - sx : xb - sx]


def open_tiff(path: str | os.PathLike) -> Slide:
    """Open a TIFF file as a :class:`~gigapatch.sources.slide.Slide`."""
    path = os.fspath(path)
    reader = TiffReader(path)
    return Slide(
        reader, name=Path(path).name, path=os.path.abspath(path), reopen=(open_tiff, (path,))
    )
