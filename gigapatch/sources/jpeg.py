"""Decoding the 8-bit JPEG tiles of a TIFF level, where a corrupt tile is an error, not pixels.

libjpeg *warns* about much of what goes wrong inside a tile — "Corrupt JPEG data: premature
end of data segment", "… extraneous bytes before marker", "bad Huffman code", "Premature
end of JPEG file" — and then returns pixels anyway (zeros or noise where the data broke).
imagecodecs swallows those warnings; TurboJPEG's strict mode (``TJPARAM_STOPONWARNING``,
through :mod:`simplejpeg`) turns each of them into an error, as OpenSlide does. The decode
is the same libjpeg-turbo code (the same pixels, bit for bit) at the same speed, straight
into the caller's buffer.

TIFF tiles may leave out what TurboJPEG needs in the stream itself:

* the shared quantization and Huffman tables (the ``JPEGTables`` tag: abbreviated streams,
  as Aperio writes) are spliced in after the tile's start-of-image marker;
* RGB tiles without a JFIF or Adobe marker (Aperio: the TIFF says RGB, the stream does
  not) get an Adobe marker saying "no colour transform", so libjpeg does not read them
  as YCbCr — what tifffile and OpenSlide do by setting the colour space directly.

The same splice gives a tile's *standalone* stream (:meth:`JpegTiles.standalone`): what tile
pass-through copies into a JPEG store chunk, which any JPEG decoder decodes to the pixels
tifffile decodes from the file. :func:`header` reads what a stream says of itself (frame,
size, components, colour markers) without decoding it; :func:`split_tables` makes an
abbreviated stream and its tables from a complete one (how :func:`gigapatch.synthesize`
writes ``JPEGTables``).

Corruption that libjpeg cannot see (bytes changed into other valid Huffman codes) decodes
to wrong pixels here as in every JPEG reader; only a checksum of the tile would catch it,
and TIFF has none.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import simplejpeg

__all__ = ["JpegHeader", "JpegTiles", "TileDecodeError", "header", "splice_tables",
           "split_tables"]

_SOI = b"\xff\xd8"
_EOI = b"\xff\xd9"
#: APP14 "Adobe", version 100, no flags, transform 0: the components are RGB, not YCbCr.
_ADOBE_RGB = b"\xff\xee\x00\x0eAdobe\x00\x64\x00\x00\x00\x00\x00"


class TileDecodeError(Exception):
    """A tile's bytes are not a complete, valid JPEG stream; the message says why."""


@dataclass(frozen=True)
class JpegHeader:
    """What a JPEG stream says of itself before its first scan.

    Attributes
    ----------
    frame
        The start-of-frame marker's code: 0xC0 baseline, 0xC1 extended, 0xC2 progressive…
    precision
        Bits per sample (8 or 12).
    height, width
        Pixels of the frame.
    components
        The component identifiers, in order (1, 2, 3 or ``R``, ``G``, ``B``…).
    jfif
        The stream has a JFIF (APP0) marker: 3 components are YCbCr.
    adobe
        The colour transform of its Adobe (APP14) marker (0: none, RGB; 1: YCbCr), or
        None without one.
    tables
        The stream defines quantization and Huffman tables (DQT, DHT) itself.
    """

    frame: int
    precision: int
    height: int
    width: int
    components: tuple[int, ...]
    jfif: bool
    adobe: int | None
    tables: bool


def _segments(stream: bytes) -> list[tuple[int, int, int]]:
    """(marker, start, end) of every marker segment after SOI, up to and including SOS.

    Raises
    ------
    TileDecodeError
        The stream does not start with SOI, or a segment runs past its end.
    """
    if not stream.startswith(_SOI):
        raise TileDecodeError("it does not start with a JPEG start-of-image marker")
    found, pos = [], 2
    while True:
        while pos < len(stream) and stream[pos + 1 : pos + 2] == b"\xff":  # fill bytes
            pos += 1
        if pos + 4 > len(stream) or stream[pos] != 0xFF:
            raise TileDecodeError(f"its marker segments are broken at byte {pos}")
        marker = stream[pos + 1]
        end = pos + 2 + int.from_bytes(stream[pos + 2 : pos + 4], "big")
        if end > len(stream):
            raise TileDecodeError(f"its marker segment at byte {pos} runs past its end")
        found.append((marker, pos, end))
        if marker == 0xDA:  # start of scan: entropy-coded data follows
            return found
        pos = end


def header(stream: bytes) -> JpegHeader:
    """Read the header of a complete or abbreviated JPEG stream (no decoding).

    Raises
    ------
    TileDecodeError
        The stream is not a JPEG stream, or has no frame header before its scan.
    """
    frame = jfif = tables = False
    adobe: int | None = None
    info: tuple[int, int, int, int, tuple[int, ...]] | None = None
    for marker, start, end in _segments(stream):
        body = stream[start + 4 : end]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC) and len(body) >= 6:
            frame = True
            count = body[5]
            info = (marker, body[0], int.from_bytes(body[1:3], "big"),
                    int.from_bytes(body[3:5], "big"), tuple(body[6 : 6 + 3 * count : 3]))
        elif marker == 0xE0 and body.startswith(b"JFIF\x00"):
            jfif = True
        elif marker == 0xEE and body.startswith(b"Adobe") and len(body) >= 12:
            adobe = body[11]
        elif marker in (0xDB, 0xC4):
            tables = True
    if not frame or info is None:
        raise TileDecodeError("it has no frame header before its scan")
    code, precision, height, width, components = info
    return JpegHeader(frame=code, precision=precision, height=height, width=width,
                      components=components, jfif=jfif, adobe=adobe, tables=tables)


def splice_tables(tables: bytes, tile: bytes) -> bytes:
    """The complete stream of an abbreviated ``tile`` and the ``tables`` it was written with.

    ``tables`` is a table specification (SOI, DQT/DHT segments, EOI: the TIFF
    ``JPEGTables`` tag); the result is SOI, the tables' segments, then the tile's
    segments after its own SOI.

    Raises
    ------
    TileDecodeError
        ``tables`` is not a table specification, or ``tile`` does not start with SOI.
    """
    if not (tables.startswith(_SOI) and tables.endswith(_EOI)):
        raise TileDecodeError("the JPEGTables tag is not a JPEG table specification")
    if not tile.startswith(_SOI):
        raise TileDecodeError("it does not start with a JPEG start-of-image marker")
    return tables[:-2] + tile[2:]


def split_tables(stream: bytes) -> tuple[bytes, bytes]:
    """(tables, abbreviated stream) of a complete JPEG stream, as Aperio writes its tiles.

    The DQT and DHT segments before the scan move to a table specification (SOI, tables,
    EOI); the APP segments (JFIF, Adobe…) are dropped, as Aperio's tiles have none;
    every other segment stays. ``splice_tables(*split_tables(s))`` decodes as ``s``
    when ``s`` had no colour marker that mattered (YCbCr with component ids 1, 2, 3, or
    grey).

    Raises
    ------
    TileDecodeError
        ``stream`` is not a JPEG stream.
    """
    tables, image = [_SOI], [_SOI]
    segments = _segments(stream)
    for marker, start, end in segments:
        if marker in (0xDB, 0xC4):
            tables.append(stream[start:end])
        elif not 0xE0 <= marker <= 0xEF:
            image.append(stream[start:end])
    image.append(stream[segments[-1][2] :])  # the entropy-coded data and EOI
    return b"".join(tables) + _EOI, b"".join(image)


class JpegTiles:
    """How the JPEG tiles of one TIFF level decode.

    Parameters
    ----------
    tables
        The level's ``JPEGTables`` (an abbreviated table specification), or None.
    force_rgb
        The TIFF says RGB but the streams carry no JFIF marker: decode without the
        YCbCr → RGB transform.
    samples
        Samples per pixel: 3 (RGB) or 1 (grey).
    """

    def __init__(self, tables: bytes | None, *, force_rgb: bool, samples: int) -> None:
        body = b""
        if tables:
            if not (tables.startswith(_SOI) and tables.endswith(_EOI)):
                raise TileDecodeError("the JPEGTables tag is not a JPEG table specification")
            body = tables[2:-2]
        self._prefix = _SOI + (_ADOBE_RGB if force_rgb else b"") + body
        self._splice = len(self._prefix) > 2
        self._colorspace = "GRAY" if samples == 1 else "RGB"
        self.samples = samples
        self.force_rgb = force_rgb

    def stream(self, raw: bytes) -> bytes:
        """The complete JPEG stream of one tile's bytes (tables and colour marker spliced in)."""
        if not raw.startswith(_SOI):
            raise TileDecodeError("it does not start with a JPEG start-of-image marker")
        return self._prefix + raw[2:] if self._splice else raw

    def standalone(self, raw: bytes | memoryview) -> bytes:
        """:meth:`stream`, checked to end with its end-of-image marker (trailing zero
        padding, which some writers add, is cut): what tile pass-through stores.

        Raises
        ------
        TileDecodeError
            ``raw`` does not start with SOI or does not end with EOI (a truncated tile).
        """
        end = len(raw)
        while end and raw[end - 1] == 0:
            end -= 1
        if end < 4 or raw[0] != 0xFF or raw[1] != 0xD8:
            raise TileDecodeError("it does not start with a JPEG start-of-image marker")
        if raw[end - 2] != 0xFF or raw[end - 1] != 0xD9:
            raise TileDecodeError("its JPEG stream has no end marker (truncated)")
        if self._splice:
            return b"".join((self._prefix, raw[2:end]))  # one copy
        return bytes(raw[:end])

    def decode(self, raw: bytes, out: npt.NDArray[Any] | None = None,
               shape: tuple[int, int] | None = None) -> npt.NDArray[Any]:
        """Decode one tile into ``out`` (``(h, w, samples)`` uint8, C-contiguous) or a new array.

        ``shape`` (or ``out``'s) is the (height, width) the tile must have.

        Raises
        ------
        TileDecodeError
            libjpeg failed or warned, or the stream's size is not the tile's.
        """
        data = self.stream(raw)
        try:
            pixels = simplejpeg.decode_jpeg(data, colorspace=self._colorspace,
                                            buffer=out, strict=True)
        except ValueError as exc:  # simplejpeg raises ValueError for errors and warnings alike
            raise TileDecodeError(str(exc).strip() or "libjpeg reports corrupt data") from None
        want = out.shape[:2] if out is not None else shape
        if want is not None and tuple(pixels.shape[:2]) != tuple(want):
            raise TileDecodeError(
                f"it decodes to {pixels.shape[0]}x{pixels.shape[1]} pixels, expected "
                f"{want[0]}x{want[1]}"
            )
        result: npt.NDArray[Any] = np.asarray(pixels)
        return result
