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

Corruption that libjpeg cannot see (bytes changed into other valid Huffman codes) decodes
to wrong pixels here as in every JPEG reader; only a checksum of the tile would catch it,
and TIFF has none.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import simplejpeg

__all__ = ["JpegTiles", "TileDecodeError"]

_SOI = b"\xff\xd8"
_EOI = b"\xff\xd9"
#: APP14 "Adobe", version 100, no flags, transform 0: the components are RGB, not YCbCr.
_ADOBE_RGB = b"\xff\xee\x00\x0eAdobe\x00\x64\x00\x00\x00\x00\x00"


class TileDecodeError(Exception):
    """A tile's bytes are not a complete, valid JPEG stream; the message says why."""


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

    def stream(self, raw: bytes) -> bytes:
        """The complete JPEG stream of one tile's bytes (tables and colour marker spliced in)."""
        if not raw.startswith(_SOI):
            raise TileDecodeError("it does not start with a JPEG start-of-image marker")
        return self._prefix + raw[2:] if self._splice else raw

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
