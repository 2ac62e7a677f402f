"""Which patch arrays :class:`~gigapatch.store.shards.ShardLayout` codes itself, and how.

The only module that reads zarr-python's codec objects. :func:`patch_codec`
takes an ``images`` array and says whether it is laid out as gigapatch writes
it — a local folder; one patch per inner chunk; the shard index at the end, as
little-endian ``bytes`` + ``crc32c``; inner codecs little-endian ``bytes`` and
at most one compressor (or ``gigapatch.jpeg`` alone), then ``crc32c`` in
format 2 — and if so gives the encode and decode of one patch equal to those
codecs (numcodecs, as zarr uses them; the GIL is released while compressing),
whether each chunk ends with its CRC32C, and the JPEG quality.
``tests/store/test_shards.py`` fails loudly if a zarr upgrade changes them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final, NamedTuple

import numcodecs
import numpy as np
import numpy.typing as npt
import zarr
from zarr.codecs import (
    BloscCodec,
    BytesCodec,
    Crc32cCodec,
    ShardingCodec,
    ShardingCodecIndexLocation,
    ZstdCodec,
)
from zarr.core.metadata import ArrayV3Metadata
from zarr.storage import LocalStore

from gigapatch.store.jpegcodec import JpegCodec, Quality, decode_jpeg, encode_jpeg

__all__ = ["Array", "Decode", "Encode", "PatchCodec", "patch_codec"]

_BLOSC_SHUFFLE: Final = {"noshuffle": 0, "shuffle": 1, "bitshuffle": 2}

Array = npt.NDArray[Any]
Encode = Callable[[Array], bytes | memoryview]
Decode = Callable[[bytes | memoryview, Array], None]


class PatchCodec(NamedTuple):
    """How the patches of a shard layout are coded (see :func:`patch_codec`).

    Attributes
    ----------
    encode, decode
        One patch to its bytes, and bytes into one patch (``decode(data, out)``),
        without the checksum.
    checksum
        Whether every chunk ends with its CRC32C (format 2).
    jpeg
        The quality of a JPEG ``images`` (1-100, or ``"source"``); None for a lossless codec.
    """

    encode: Encode
    decode: Decode
    checksum: bool
    jpeg: Quality | None


def patch_codec(images: zarr.Array[Any]) -> PatchCodec | None:
    """The coding of the patches of ``images``, or None when gigapatch does not read and write
    its shard files itself (another layout, codec or store)."""
    sharding = _patch_sharding(images)
    if sharding is None or images.shards is None:
        return None
    checksum = _checksummed(sharding.codecs)
    inner = sharding.codecs[:-1] if checksum else sharding.codecs
    if isinstance(inner[0], JpegCodec):
        codec: tuple[Encode, Decode] | None = _jpeg(inner[0].quality)
    else:
        codec = _codec(inner[1]) if len(inner) == 2 else (_raw_encode, _raw_decode)
    if codec is None:
        return None
    jpeg = inner[0].quality if isinstance(inner[0], JpegCodec) else None
    return PatchCodec(encode=codec[0], decode=codec[1], checksum=checksum, jpeg=jpeg)


def _raw_encode(patch: Array) -> memoryview:
    return patch.data.cast("B")


def _raw_decode(data: bytes | memoryview, out: Array) -> None:
    out.reshape(-1).view(np.uint8)[:] = np.frombuffer(data, np.uint8)


def _codec(codec: object) -> tuple[Encode, Decode] | None:
    """numcodecs encode and decode equal to a zarr compressor codec, or None if unsupported."""
    if isinstance(codec, ZstdCodec):
        zstd = numcodecs.Zstd(level=codec.level, checksum=codec.checksum)
        return zstd.encode, zstd.decode
    if isinstance(codec, BloscCodec):
        blosc = numcodecs.Blosc(
            cname=codec.cname.value, clevel=codec.clevel,
            shuffle=_BLOSC_SHUFFLE[codec.shuffle.value], blocksize=codec.blocksize,
            typesize=codec.typesize,
        )
        return blosc.encode, blosc.decode
    return None


def _little_endian(codec: object) -> bool:
    return isinstance(codec, BytesCodec) and getattr(codec.endian, "value", "little") == "little"


def _jpeg(quality: Quality) -> tuple[Encode, Decode]:
    """Encode and decode of :class:`~gigapatch.store.jpegcodec.JpegCodec` at ``quality``."""

    def encode(patch: Array) -> bytes:
        return encode_jpeg(patch, quality)

    return encode, decode_jpeg


def _serializer_ok(inner: Sequence[object], checksum: bool) -> bool:
    """Whether an inner chain (without its ``crc32c``) is one ShardLayout codes itself:
    little-endian ``bytes`` and at most one compressor, or ``gigapatch.jpeg`` alone."""
    codecs = len(inner) - checksum
    if isinstance(inner[0], JpegCodec):
        return codecs == 1
    return 1 <= codecs <= 2 and _little_endian(inner[0])


def _patch_sharding(images: zarr.Array[Any]) -> ShardingCodec | None:
    """The sharding codec of ``images`` if it is laid out as gigapatch writes it, else None.

    That layout: a local folder; one patch per inner chunk; the index at the
    end, as little-endian ``bytes`` + ``crc32c``; inner codecs little-endian
    ``bytes``, at most one compressor, then ``crc32c`` (format 2; format 1 has none).
    """
    metadata = images.metadata
    if not isinstance(images.store, LocalStore) or not isinstance(metadata, ArrayV3Metadata):
        return None
    if len(metadata.codecs) != 1:
        return None
    sharding = metadata.codecs[0]
    if not isinstance(sharding, ShardingCodec):
        return None
    inner, index_codecs = sharding.codecs, sharding.index_codecs
    if (
        sharding.index_location != ShardingCodecIndexLocation.end
        or len(index_codecs) != 2
        or not _little_endian(index_codecs[0])
        or not isinstance(index_codecs[1], Crc32cCodec)
        or not _serializer_ok(inner, _checksummed(inner))
        or tuple(sharding.chunk_shape) != (1, *images.shape[1:])
    ):
        return None
    return sharding


def _checksummed(inner: Sequence[object]) -> bool:
    """Whether an inner codec chain ends with ``crc32c``."""
    return isinstance(inner[-1], Crc32cCodec)
