"""Constants of the store format: version, attribute key, codecs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, Literal

from zarr.codecs import BloscCodec, ZstdCodec

__all__ = [
    "ATTRS_KEY", "CODECS", "FORMAT_VERSION", "META_ROWS", "READABLE_FORMATS", "Codec", "Lossless",
]

#: The format gigapatch writes: every chunk of every array carries a CRC32C, ``done`` holds a
#: digest of each finished shard.
FORMAT_VERSION: Final = 2
#: Formats gigapatch reads; format 1 (no chunk checksums) is read-only.
READABLE_FORMATS: Final = (1, 2)
ATTRS_KEY: Final = "gigapatch"
META_ROWS: Final = 1 << 16  # chunk length of the small per-patch arrays

#: The name of a lossless codec of ``images``.
Lossless = Literal["lz4", "zstd", "zstd-3", "none"]
#: A codec spec of ``images``: a :data:`Lossless` name, ``jpeg``, ``jpeg:QUALITY`` or
#: ``jpeg:source`` (parsed by :func:`gigapatch.store.codecs.parse_codec`).
Codec = str

#: Lossless codecs for ``images``; patches of decoded JPEG tissue gain only 1.3-1.8x (JPEG: see
#: :mod:`gigapatch.store.codecs`).
CODECS: dict[Lossless, Callable[[], BloscCodec | ZstdCodec | None]] = {
    "lz4": lambda: BloscCodec(cname="lz4", clevel=5, shuffle="noshuffle"),
    "zstd": lambda: ZstdCodec(level=1),
    "zstd-3": lambda: ZstdCodec(level=3),
    "none": lambda: None,
}
