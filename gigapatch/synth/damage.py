"""Damaging one tile of a TIFF slide in place, the ways real files break — for tests.

A scanner or a copy can leave a slide readable except for a tile: bytes changed inside
its JPEG data, a stream cut short, a tile table entry that is zero or points past the
end of a truncated file. :func:`damage_tile` makes each of these in a file written by
:func:`~gigapatch.synthesize` (or any tiled TIFF), so readers can be tested on them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, TypeAlias

import tifffile

from gigapatch.errors import InvalidArgumentError, check_int

__all__ = ["DAMAGES", "Damage", "damage_tile"]

#: How a tile can be damaged (see :func:`damage_tile`).
Damage: TypeAlias = Literal["entropy", "flip", "truncate", "past-eof", "zero-count"]
DAMAGES: tuple[Damage, ...] = ("entropy", "flip", "truncate", "past-eof", "zero-count")


def _entropy_span(raw: bytes) -> tuple[int, int]:
    """First and past-last byte of a JPEG stream's entropy-coded data (before EOI)."""
    sos = raw.find(b"\xff\xda")
    if sos < 0 or not raw.endswith(b"\xff\xd9"):
        raise InvalidArgumentError("the tile is not a complete JPEG stream; use how='truncate'")
    start = sos + 2 + int.from_bytes(raw[sos + 2 : sos + 4], "big")
    return start, len(raw) - 2


def _damaged_bytes(raw: bytes, how: Damage) -> bytes:
    start, end = _entropy_span(raw)
    data = bytearray(raw)
    if how == "entropy":  # an end marker halfway through the data, zeros after: same length
        cut = start + (end - start) // 2
        data[cut:] = b"\xff\xd9" + bytes(len(data) - cut - 2)
        return bytes(data)
    pos = start + (end - start) // 4  # "flip": change 64 bytes, making no marker
    for i in range(pos, min(pos + 64, end - 1)):
        new = data[i] ^ 0x5A
        if data[i] != 0xFF and data[i - 1] != 0xFF and new != 0xFF:
            data[i] = new
    return bytes(data)


def damage_tile(
    path: str | os.PathLike[str], level: int = 0, row: int = 0, column: int = 0, *,
    how: Damage = "entropy",
) -> Path:
    """Damage tile (``row``, ``column``) of pyramid ``level`` of a TIFF file, in place.

    Parameters
    ----------
    path
        A tiled TIFF (a slide from :func:`~gigapatch.synthesize`).
    level, row, column
        The tile: level of the file's main image, row and column in its tile grid.
    how
        ``"entropy"``: the second half of the tile's JPEG entropy-coded data becomes an
        end-of-image marker and zeros (same length): libjpeg decodes it with only a
        warning ("premature end of data segment") and grey where the data stops.
        ``"flip"``: 64 bytes a quarter into the entropy-coded data are changed (no marker
        made): libjpeg warns for most tiles ("extraneous bytes before marker", "bad
        Huffman code") but not all — some changes are valid codes, wrong pixels that no
        reader can tell. ``"truncate"``: the tile's byte count is halved (the stream
        loses its end). ``"past-eof"``: its byte count runs 4 kB past the end of the
        file. ``"zero-count"``: its byte count is 0.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    if how not in DAMAGES:
        raise InvalidArgumentError(f"how must be one of {', '.join(DAMAGES)}; got {how!r}")
    level, row, column = (check_int(n, v, 0) for n, v in
                          (("level", level), ("row", row), ("column", column)))
    with tifffile.TiffFile(path, mode="r+") as tif:
        levels = tif.series[0].levels
        if level >= len(levels):
            raise InvalidArgumentError(f"level must be below {len(levels)}; got {level}")
        page = levels[level].keyframe
        if not page.is_tiled:
            raise InvalidArgumentError(f"level {level} of {os.fspath(path)!r} is not tiled")
        down, across = -(-page.imagelength // page.tilelength), -(-page.imagewidth //
                                                                 page.tilewidth)
        if row >= down or column >= across:
            raise InvalidArgumentError(f"tile (row {row}, column {column}) is outside level "
                                       f"{level}'s {down}x{across} tiles")
        index = row * across + column
        offset, count = int(page.dataoffsets[index]), int(page.databytecounts[index])
        if how in ("entropy", "flip"):
            tif.filehandle.seek(offset)
            raw = tif.filehandle.read(count)
            tif.filehandle.seek(offset)
            tif.filehandle.write(_damaged_bytes(raw, how))
            return Path(path)
        counts = [int(c) for c in page.databytecounts]
        size = os.path.getsize(path)
        counts[index] = {"truncate": count // 2, "zero-count": 0,
                         "past-eof": size - offset + 4096}[how]
        page.tags["TileByteCounts"].overwrite(counts)
    return Path(path)
