"""Constants of the store format: version, attribute key, codecs."""

from __future__ import annotations

from typing import Any

from zarr.codecs import BloscCodec, ZstdCodec

__all__ = ["ATTRS_KEY", "CODECS", "FORMAT_VERSION", "META_ROWS"]

FORMAT_VERSION = 1
ATTRS_KEY = "gigapatch"
META_ROWS = 1 << 16  # chunk length of the small per-patch arrays

#: Lossless codecs for ``images``; patches of decoded JPEG tissue gain only 1.3-1.8x.
CODECS: dict[str, Any] = {
    "lz4": lambda: BloscCodec(cname="lz4", clevel=5, shuffle="noshuffle"),
    "zstd": lambda: ZstdCodec(level=1),
    "zstd-3": lambda: ZstdCodec(level=3),
    "none": lambda: None,
}
