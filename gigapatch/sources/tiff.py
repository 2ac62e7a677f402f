"""TIFF sources: Aperio SVS, OME-TIFF (SubIFD pyramids), generic tiled or stripped (Big)TIFF.

A file may hold several images (tifffile's *series*: an SVS thumbnail, label and macro, an
NDPI macro, the regions of a Leica SCN, the images of an OME-TIFF); the reader reads one, by
default the largest (:mod:`gigapatch.sources.series`).

tifffile parses the file once (series, levels, tags, OME-XML). Pixel reads
then fetch only the encoded segments (tiles or strips) a region touches, with
``os.pread`` on a plain file descriptor (thread-safe, no shared seek), and
decode each exactly once per read:

* 8-bit JPEG segments (almost every brightfield scan) are decoded by
  libjpeg-turbo in strict mode (:mod:`gigapatch.sources.jpeg`) straight into a
  reused per-thread tile buffer, with the colour spaces tifffile would use, then
  the overlap is copied out;
* any other codec goes through the page's own tifffile decoder.

A segment that cannot be decoded — the decoder fails or warns, its byte count
is zero or runs past the end of the file, an uncompressed segment is short — is
a :class:`~gigapatch.errors.CorruptTileError` naming the file, level, row and
column, never pixels; the slide's other segments still read. A truncated file
therefore opens (its segment tables are intact) and fails only where its data
is missing; opening logs how many segments lie past the end.

A level may be one page (``YX`` or ``YXS``: grey or RGB) or one page per
channel (``CYX``: fluorescence); channels end up last, as ``(h, w, C)``.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import threading
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from struct import error as struct_error
from typing import Any

import numpy as np
import numpy.typing as npt
import tifffile

from gigapatch.errors import CorruptTileError, GigapatchError, SlideError
from gigapatch.sources.jpeg import JpegTiles, TileDecodeError
from gigapatch.sources.series import Series, choose_series
from gigapatch.sources.slide import Level, Slide
from gigapatch.sources.tilebytes import JpegTileBytes
from gigapatch.sources.tilecache import thread_cache
from gigapatch.sources.units import to_micrometres

__all__ = ["TiffReader", "UnsupportedTiffError", "open_tiff"]

_SVS_MPP = re.compile(r"\|\s*MPP\s*=\s*([0-9.eE+-]+)")
_SVS_MAG = re.compile(r"\|\s*AppMag\s*=\s*([0-9.eE+-]+)")
_RESUNIT_TO_UM: dict[int, float] = {  # keyed by RESUNIT (an IntEnum), looked up by value
    tifffile.RESUNIT.CENTIMETER: 1e4, tifffile.RESUNIT.INCH: 25400.0,
    tifffile.RESUNIT.MILLIMETER: 1e3, tifffile.RESUNIT.MICROMETER: 1.0,
}
_PHOTOMETRIC = tifffile.PHOTOMETRIC
_TOKENS = itertools.count()
_LOG = logging.getLogger(__name__)


class UnsupportedTiffError(SlideError):
    """tifffile cannot parse the file, or its image has a layout gigapatch does not read.

    Unlike a corrupt or truncated file, another reader (OpenSlide) may still read it.
    """


def _ome_mpp(tif: tifffile.TiffFile, image: int = 0) -> float | None:
    """PhysicalSizeX of the ``image``-th OME ``Image`` (tifffile's series order), in µm."""
    try:
        root = ET.fromstring(tif.ome_metadata or "")
    except ET.ParseError:
        return None
    images = [e for e in root if e.tag.endswith("}Image") or e.tag == "Image"]
    if not images:
        return None
    for elem in images[min(image, len(images) - 1)].iter():
        if elem.tag.endswith("}Pixels") or elem.tag == "Pixels":
            size = elem.get("PhysicalSizeX")
            if size is None:
                return None
            unit = elem.get("PhysicalSizeXUnit", "µm")
            return to_micrometres(float(size), unit)
    return None


def _mpp_of(tif: tifffile.TiffFile, page: tifffile.TiffPage, series: int = 0) -> float | None:
    """Microns per pixel of level 0: SVS description, OME-XML, then resolution tags."""
    if tif.is_svs:
        match = _SVS_MPP.search(page.description or "")
        if match:
            return float(match.group(1))
    if tif.is_ome:
        mpp = _ome_mpp(tif, series)
        if mpp is not None:
            return mpp
    xres = page.resolution[0] if page.resolution else 0.0
    scale = _RESUNIT_TO_UM.get(page.resolutionunit)
    return scale / xres if xres and scale else None


def _jpeg_tiles(path: str, page: tifffile.TiffPage) -> JpegTiles | None:
    """How the 8-bit JPEG segments of ``page`` decode (the colour spaces tifffile would use);
    None: other codecs and JPEG layouts, decoded by tifffile."""
    if page.compression != tifffile.COMPRESSION.JPEG or page.bitspersample != 8:
        return None
    if page.extrasamples or page.planarconfig != tifffile.PLANARCONFIG.CONTIG:
        return None
    if page.photometric == _PHOTOMETRIC.YCBCR:
        force_rgb = False
    elif page.photometric == _PHOTOMETRIC.RGB:  # Aperio: RGB JPEG without a JFIF marker
        force_rgb = not page.is_jfif
    elif page.photometric == _PHOTOMETRIC.MINISBLACK and page.samplesperpixel == 1:
        force_rgb = False
    else:
        return None
    try:
        return JpegTiles(page.jpegtables, force_rgb=force_rgb, samples=page.samplesperpixel)
    except TileDecodeError as exc:
        raise SlideError(f"{path!r} is corrupt: {exc}") from None


def _magnification_of(tif: tifffile.TiffFile, page: tifffile.TiffPage) -> float | None:
    """Objective power: ``AppMag`` of an SVS description; other TIFFs do not say in one way."""
    match = _SVS_MAG.search(page.description or "") if tif.is_svs else None
    return float(match.group(1)) if match else None


def _format_of(tif: tifffile.TiffFile) -> str:
    for flag in ("svs", "ndpi", "scn", "bif", "philips"):
        if getattr(tif, f"is_{flag}", False):
            return flag
    return "ome-tiff" if tif.is_ome else "tiff"


def _series_of(tif: tifffile.TiffFile) -> tuple[Series, ...]:
    found = []
    for k, s in enumerate(tif.series):
        key = s.keyframe
        found.append(Series(index=k, name=str(s.name or ""),
                            shape=(int(key.imagelength), int(key.imagewidth)),
                            levels=len(s.levels)))
    return tuple(found)


@dataclass
class _LevelData:
    """What reads of one level need, detached from the (closed) TiffFile."""

    offsets: list[np.ndarray]  # per page (channel plane): segment offsets
    counts: list[np.ndarray]
    decode: Any  # the keyframe's tifffile decoder
    jpegtables: bytes | None
    jpeg: JpegTiles | None  # 8-bit JPEG: decoded in strict mode
    samples: int  # samples per page
    tiled: bool  # tiles (all of one size) rather than strips
    compression: int  # TIFF compression code


class TiffReader(JpegTileBytes):
    """Reads the levels of one image series of a TIFF file.

    Parameters
    ----------
    path
        The TIFF file.
    series
        The series to read (index or name); ``None``: the largest.
    """

    def __init__(self, path: str, series: int | str | None = None) -> None:
        self.path = path
        self._want = series
        log = logging.getLogger("tifffile")
        level = log.level
        log.setLevel(logging.CRITICAL)  # tifffile logs what it skips; we raise one error
        try:
            with tifffile.TiffFile(path) as tif:
                self._parse(tif)
        except GigapatchError:
            raise
        except (tifffile.TiffFileError, ValueError, IndexError, KeyError, struct_error) as exc:
            raise UnsupportedTiffError(f"{path!r} is not a readable TIFF image: {exc}") from None
        finally:
            log.setLevel(level)
        self._size = os.path.getsize(path)
        self._check_segments(self._size)
        self._fd: int | None = None
        self._lock = threading.Lock()
        self._local = threading.local()
        self._token = next(_TOKENS)  # tells this reader's tiles apart in the shared tile cache

    # ------------------------------------------------------------------ parsing
    def _parse(self, tif: tifffile.TiffFile) -> None:
        if not tif.series:
            raise UnsupportedTiffError(f"{self.path!r} contains no image")
        self.series = _series_of(tif)
        self.series_index = choose_series(self.series, self._want, self.path)
        series = tif.series[self.series_index]
        self.format = _format_of(tif)
        levels, data = [], []
        for lvl in series.levels:
            pages = [p for p in lvl.pages if p is not None]
            key = lvl.keyframe
            self._check_layout(lvl, pages, key)
            h, w = key.imagelength, key.imagewidth
            tile = (key.tilelength, key.tilewidth) if key.is_tiled else (
                min(key.rowsperstrip, h), w)
            levels.append((h, w, tile, tifffile.COMPRESSION(key.compression).name.lower()))
            data.append(_LevelData(
                offsets=[np.asarray(p.dataoffsets, np.int64) for p in pages],
                counts=[np.asarray(p.databytecounts, np.int64) for p in pages],
                decode=key.decode, jpegtables=key.jpegtables, jpeg=_jpeg_tiles(self.path, key),
                samples=key.samplesperpixel, tiled=bool(key.is_tiled),
                compression=int(key.compression),
            ))
        h0, w0 = levels[0][:2]
        self.levels = tuple(
            Level(shape=(h, w), downsample=(h0 / h, w0 / w), tile=tile, compression=comp)
            for h, w, tile, comp in levels
        )
        key0 = series.levels[0].keyframe
        self.dtype = np.dtype(key0.dtype)
        self.channels = data[0].samples * len(data[0].offsets)
        self.mpp = _mpp_of(tif, key0, self.series_index)
        self.magnification = _magnification_of(tif, key0)
        self._data = data

    def _check_layout(
        self, lvl: Any, pages: list[tifffile.TiffPage | tifffile.TiffFrame], key: tifffile.TiffPage
    ) -> None:
        axes = lvl.axes
        if not (axes.endswith("YX") or axes.endswith("YXS")):
            raise UnsupportedTiffError(f"{self.path!r}: image axes {axes!r} are not supported "
                                       "(expected YX, YXS or CYX)")
        extra = axes[: -3 if axes.endswith("S") else -2]
        if extra not in ("", "C") or key.imagedepth != 1:
            raise UnsupportedTiffError(
                f"{self.path!r}: image with axes {axes!r} and shape {lvl.shape} is not a 2-D "
                "slide; only channel (C) planes are supported besides Y and X"
            )
        if key.planarconfig != tifffile.PLANARCONFIG.CONTIG and key.samplesperpixel > 1:
            raise UnsupportedTiffError(
                f"{self.path!r}: planar (separate) sample layout is not supported")
        if len(pages) != (lvl.shape[0] if extra == "C" else 1):
            raise UnsupportedTiffError(f"{self.path!r}: level with shape {lvl.shape} lacks pages")
        if np.dtype(key.dtype).kind not in "uif":
            raise UnsupportedTiffError(f"{self.path!r}: pixel type {key.dtype} is not supported")

    def _check_segments(self, file_size: int) -> None:
        """Refuse files whose segment tables are incomplete; log segments past the end.

        A segment whose data lies past the end of the file (a truncated copy) is an error
        only when it is read (:meth:`_segment`): the rest of the slide still reads.
        """
        for k, (data, lvl) in enumerate(zip(self._data, self.levels, strict=True)):
            (h, w), (th, tw) = lvl.shape, lvl.tile
            expected = -(-h // th) * -(-w // tw)
            for offsets, counts in zip(data.offsets, data.counts, strict=True):
                if len(offsets) != expected or len(counts) != expected:
                    raise SlideError(
                        f"{self.path!r} is corrupt: level {k} lists {len(offsets)} segment "
                        f"offsets and {len(counts)} byte counts, expected {expected} of each"
                    )
                past = int(np.count_nonzero(offsets + counts > file_size))
                if past:
                    _LOG.warning("%r is truncated: %d of %d segments of level %d end past the "
                                 "end of the file (%d bytes); reading them is an error",
                                 self.path, past, expected, k, file_size)

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

    def _tile_buffer(self, shape: tuple[int, ...]) -> np.ndarray:
        """A per-thread tile buffer, reused across reads (no allocation, no first touch)."""
        buf = getattr(self._local, "buf", None)
        if buf is None or buf.shape != shape or buf.dtype != self.dtype:
            buf = self._local.buf = np.empty(shape, self.dtype)
        return buf

    # ------------------------------------------------------------------ pixels
    def read_level(self, level: int, y: int, x: int, out: np.ndarray) -> None:
        """Decode the segments ``out``'s region touches, once each, and copy their overlap."""
        self.read_many(level, np.array([y]), np.array([x]), out[None])

    def read_many(self, level: int, ys: np.ndarray, xs: np.ndarray, out: np.ndarray,
                  tiles: tuple[int, int] | None = None) -> None:
        """Fill ``out[k]`` with the region of ``out.shape[1:3]`` at level pixels (ys[k], xs[k]).

        Every segment any region touches is decoded exactly once, then copied
        into each region that overlaps it; a JPEG tile that is exactly one
        region is decoded straight into that region's slot of ``out``. The
        regions lie inside the level (the caller checked it).

        ``tiles=(first, stop)`` reads only the segments whose row-major index is
        in ``[first, stop)``, leaving the other pixels of ``out`` as they are (so
        threads that own disjoint ranges fill one array together). Each segment
        is then decoded into the thread's one tile buffer, which stays in the CPU
        cache while it is copied out, not into the tile cache: it is used once.
        """
        n, h, w = out.shape[:3]
        if n == 0:
            return
        (th, tw), (lh, lw) = self.levels[level].tile, self.levels[level].shape
        across = -(-lw // tw)
        data = self._data[level]
        fd = self._handle()
        ys, xs = np.asarray(ys, np.int64), np.asarray(xs, np.int64)
        # every (segment, region) pair: the tiles of each region's bounding rectangle
        ty = (ys // th)[:, None, None] + np.arange((h - 1) // th + 2)[None, :, None]
        tx = (xs // tw)[:, None, None] + np.arange((w - 1) // tw + 2)[None, None, :]
        touched = (ty * th < (ys + h)[:, None, None]) & (tx * tw < (xs + w)[:, None, None])
        seg = np.broadcast_to(ty * across + tx, touched.shape)[touched]
        region = np.broadcast_to(np.arange(n)[:, None, None], touched.shape)[touched]
        if tiles is not None:
            mine = (seg >= tiles[0]) & (seg < tiles[1])
            seg, region = seg[mine], region[mine]
        order = np.lexsort((region, seg))
        seg, region = seg[order], region[order]
        starts = np.flatnonzero(np.r_[True, seg[1:] != seg[:-1]])
        ends = np.r_[starts[1:], len(seg)]
        # each pair's overlap, in the region (k, y0:y1, x0:x1) and in the segment (v0:v1, u0:u1)
        sy, sx = (seg // across) * th, (seg % across) * tw
        py, px = ys[region], xs[region]
        ya, yb = np.maximum(py, sy), np.minimum(np.minimum(py + h, sy + th), lh)
        xa, xb = np.maximum(px, sx), np.minimum(np.minimum(px + w, sx + tw), lw)
        pairs = np.stack([region, ya - py, yb - py, xa - px, xb - px,
                          ya - sy, yb - sy, xa - sx, xb - sx], axis=1).tolist()
        planes = len(data.offsets)
        for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
            index = int(seg[a])
            k = pairs[a][0]
            if (planes == 1 and b - a == 1 and data.jpeg is not None and data.tiled
                    and h == th and w == tw and pairs[a][1:5] == [0, h, 0, w]
                    and out[k].flags.c_contiguous):  # the tile is the region: decode into it
                self._segment(level, data, 0, index, fd, out=out[k])
                continue
            for plane in range(planes):
                c0, c1 = plane * data.samples, (plane + 1) * data.samples
                segment = (self._segment(level, data, plane, index, fd) if tiles is not None
                           else self._cached_segment(level, data, plane, index, fd))
                for k, y0, y1, x0, x1, v0, v1, u0, u1 in pairs[a:b]:
                    out[k, y0:y1, x0:x1, c0:c1] = segment[v0:v1, u0:u1]

    def _cached_segment(
        self, level: int, data: _LevelData, plane: int, index: int, fd: int,
    ) -> np.ndarray:
        """:meth:`_segment` through the thread's tile cache (JPEG tiles: full, fixed size)."""
        if data.jpeg is None or not data.tiled:
            return self._segment(level, data, plane, index, fd)
        th, tw = self.levels[level].tile
        cache = thread_cache((th, tw, data.samples), self.dtype)
        key = (self._token, level, plane, index)
        tile = cache.get(key)
        if tile is not None:
            return tile
        tile = cache.take()
        try:
            self._segment(level, data, plane, index, fd, out=tile)
        except BaseException:
            cache.give_back(tile)
            raise
        cache.put(key, tile)
        return tile

    def _corrupt(self, level: int, index: int, reason: str) -> CorruptTileError:
        """The error for segment ``index`` of ``level`` (its row and column in the tile grid)."""
        across = -(-self.levels[level].shape[1] // self.levels[level].tile[1])
        row, column = divmod(index, across)
        return CorruptTileError(self.path, level, row, column, reason)

    def _segment_bytes(self, level: int, data: _LevelData, plane: int, index: int,
                       fd: int) -> bytes | None:
        """The encoded bytes of one segment; None for a sparse (never written) segment.

        Raises
        ------
        CorruptTileError
            The byte count is zero (at a non-zero offset), or the data runs past the end
            of the file.
        """
        nbytes = int(data.counts[plane][index])
        offset = int(data.offsets[plane][index])
        if nbytes == 0:
            if offset == 0:  # offset and count 0: never written (sparse), reads as zeros
                return None
            raise self._corrupt(level, index, f"its byte count is 0 (data at byte {offset})")
        if offset + nbytes > self._size:
            raise self._corrupt(
                level, index, f"its {nbytes} bytes at byte {offset} end past the end of the "
                f"file ({self._size} bytes): the file is truncated or its tile table is corrupt")
        raw = os.pread(fd, nbytes, offset)
        if len(raw) != nbytes:  # the file shrank after it was opened
            raise self._corrupt(level, index, f"only {len(raw)} of its {nbytes} bytes at byte "
                                f"{offset} could be read: the file is truncated")
        return raw

    def _segment(
        self, level: int, data: _LevelData, plane: int, index: int, fd: int,
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        """Decode one segment to an (h, w, samples) array.

        JPEG tiles decode into ``out`` when given (a full tile), else into a reused
        per-thread buffer; JPEG strips into a new array; other codecs through tifffile.

        Raises
        ------
        CorruptTileError
            The segment's bytes are missing, or its decoder fails or warns.
        """
        th, tw = self.levels[level].tile
        raw = self._segment_bytes(level, data, plane, index, fd)
        if raw is None:
            segment: npt.NDArray[Any] = np.zeros((th, tw, data.samples), self.dtype)
            if out is not None:
                out[...] = segment
            return segment
        try:
            if data.jpeg is not None and data.tiled:
                buf = out if out is not None else self._tile_buffer((th, tw, data.samples))
                data.jpeg.decode(raw, out=buf)
                return buf
            if data.jpeg is not None:  # a strip: the last one may be shorter, or padded
                segment = data.jpeg.decode(raw)
                rows = min(th, self.levels[level].shape[0] - index * th)
                if segment.shape[:2] not in ((rows, tw), (th, tw)):
                    raise self._corrupt(level, index, f"it decodes to {segment.shape[0]}x"
                                        f"{segment.shape[1]} pixels, expected {rows}x{tw}")
            else:
                self._check_other(level, data, index, raw)
                segment = data.decode(raw, index, jpegtables=data.jpegtables)[0]
        except CorruptTileError:
            raise
        except Exception as exc:  # codecs raise many types; name the tile
            offset = int(data.offsets[plane][index])
            raise self._corrupt(level, index, f"data at byte {offset}: {exc}") from None
        segment = segment.reshape(segment.shape[-3:])  # drop the plane/depth axes
        if out is not None:
            out[...] = segment
        return segment

    def _check_other(self, level: int, data: _LevelData, index: int, raw: bytes) -> None:
        """What can be checked of a segment tifffile decodes: a JPEG stream ends with its end
        marker (tifffile's JPEG decoder does not report truncation); an uncompressed segment
        holds every byte of its pixels."""
        th, tw = self.levels[level].tile
        if data.compression == tifffile.COMPRESSION.JPEG:
            if not raw.rstrip(b"\x00").endswith(b"\xff\xd9"):
                raise self._corrupt(level, index, "its JPEG stream has no end marker (truncated)")
        elif data.compression == tifffile.COMPRESSION.NONE:
            rows = th if data.tiled else min(th, self.levels[level].shape[0] - index * th)
            need = rows * tw * data.samples * self.dtype.itemsize
            if len(raw) < need:
                raise self._corrupt(level, index, f"it holds {len(raw)} bytes, its pixels need "
                                    f"{need}")

    # ------------------------------------------------------------------ JPEG tiles as stored


def open_tiff(path: str | os.PathLike[str], *, series: int | str | None = None) -> Slide:
    """Open a TIFF file as a :class:`~gigapatch.sources.slide.Slide`.

    ``series`` picks one of the file's images by index or name; ``None``: the largest. The
    slide pickles as the absolute path (a worker in another folder reopens the same file) and
    the chosen series' index.
    """
    path = os.fspath(path)
    reader = TiffReader(path, series)
    return Slide(reader, name=Path(path).name, path=os.path.abspath(path),
                 reopen=(_reopen, (os.path.abspath(path), reader.series_index)))


def _reopen(path: str, series: int) -> Slide:
    return open_tiff(path, series=series)
