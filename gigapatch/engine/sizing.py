"""Bytes a store will take, found without writing it: patches encoded as the store encodes them,
shard indexes, and the small arrays and metadata built by zarr in memory."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Sequence
from typing import Any

import numcodecs
import numpy as np
import numpy.typing as npt
import zarr
from zarr.codecs import BloscCodec, ZstdCodec
from zarr.storage import MemoryStore

from gigapatch import __version__
from gigapatch.errors import InvalidArgumentError
from gigapatch.plan import PatchPlan
from gigapatch.sources import Slide
from gigapatch.store.codecs import check_codec, parse_codec
from gigapatch.store.format import ATTRS_KEY, CODECS, FORMAT_VERSION, Codec
from gigapatch.store.jpegcodec import JPEG_QUALITY, encode_jpeg
from gigapatch.store.nodes import DONE_DTYPE, create_nodes
from gigapatch.store.shards import CHUNK_CRC_NBYTES, index_nbytes
from gigapatch.store.spec import StoreSpec

__all__ = ["encoder", "metadata_bytes", "shard_index_bytes"]

Encoder = Callable[[npt.NDArray[Any]], bytes]
_BLOSC_SHUFFLE = {"noshuffle": 0, "shuffle": 1, "bitshuffle": 2}


def encoder(codec: Codec, dtype: npt.DTypeLike, channels: int | None = None) -> Encoder:
    """A function giving the bytes one patch of ``dtype`` takes in a shard with ``codec``.

    The store's own codec as the shard writer runs it: for a lossless codec
    (:data:`~gigapatch.store.format.CODECS`) as numcodecs runs it inside
    zarr — the ``bytes`` codec (little-endian), then the compressor, if any
    (Blosc learns the item size from the dtype, as zarr sets it); for
    ``jpeg:QUALITY`` one baseline JPEG (:func:`~gigapatch.store.jpegcodec.encode_jpeg`);
    then the room of the chunk's CRC32C. ``jpeg:source`` chunks are the
    source's own tiles, not encoded (:func:`~gigapatch.engine.estimate.estimate` measures
    their sizes as stored): here they stand in as JPEG at quality 90, about what
    whole-slide scanners write (Aperio: 70-90).

    Raises
    ------
    InvalidArgumentError
        ``codec`` is no codec spec, or a JPEG one for patches that are not uint8
        with 1 or 3 ``channels`` (when given).
    """
    spec = parse_codec(codec)
    if channels is not None:
        check_codec(spec, dtype, channels)
    if spec.jpeg:
        quality = JPEG_QUALITY if spec.quality == "source" else spec.quality
        assert isinstance(quality, int)  # a jpeg spec has a quality

        def encode_jpeg_patch(patch: npt.NDArray[Any]) -> bytes:
            return encode_jpeg(np.ascontiguousarray(patch), quality) + bytes(CHUNK_CRC_NBYTES)

        return encode_jpeg_patch
    compressor = CODECS[spec.name]()  # type: ignore[index]  # a lossless name
    dtype = np.dtype(dtype)
    little = dtype.newbyteorder("<") if dtype.itemsize > 1 else dtype
    compress: Callable[[Any], Any]
    if compressor is None:
        compress = bytes
    elif isinstance(compressor, ZstdCodec):
        compress = numcodecs.Zstd(level=compressor.level, checksum=compressor.checksum).encode
    elif isinstance(compressor, BloscCodec):
        compress = numcodecs.Blosc(
            cname=compressor.cname.value, clevel=compressor.clevel,
            shuffle=_BLOSC_SHUFFLE[compressor.shuffle.value], blocksize=compressor.blocksize,
            typesize=compressor.typesize or dtype.itemsize,
        ).encode
    else:
        raise InvalidArgumentError(
            f"codec {codec!r} ({type(compressor).__name__}) cannot be estimated yet"
        )

    def encode(patch: npt.NDArray[Any]) -> bytes:
        data = np.ascontiguousarray(patch, dtype=little)
        return bytes(compress(data)) + bytes(CHUNK_CRC_NBYTES)  # + the chunk's CRC32C

    return encode


def shard_index_bytes(n: int, shard_size: int) -> int:
    """Bytes of the shard indexes of ``n`` patches: each shard file ends in an (offset,
    length) pair of uint64 per patch slot, then a CRC32C."""
    return -(-n // shard_size) * index_nbytes(shard_size)


def _source_record(slide: Slide, plan: PatchPlan, k: int) -> dict[str, Any]:
    """About what a store records of a source (its exact fields are the writer's)."""
    lvl = slide.levels[plan.level_of(k)]
    return {
        "path": slide.path, "size": 0, "mtime": 0.0, "name": slide.name,
        "format": slide.format, "level": plan.level_of(k), "downsample": list(lvl.downsample),
        "mpp": slide.mpp, "magnification": slide.magnification, "level_mpp": None,
        "target_mpp": None, "factor": plan.factor_of(k), "resampling": "none",
        "read_size": list(plan.read_size(k)), "shape": list(slide.shape), "label": -1,
    }


def metadata_bytes(slides: Sequence[Slide], plan: PatchPlan, *, shard_size: int = 256,
                   codec: Codec = "lz4") -> int:
    """Bytes of a store of ``plan`` other than the patches: the per-patch arrays (``coords``,
    ``slide``, ``label``, ``tissue``) encoded by zarr as the store lays them out, the ``done``
    flags (a digest and its checksum each) and every ``zarr.json``."""
    n = len(plan)
    if n == 0:
        return 0
    found: dict[str, Any] = {}
    group = zarr.open_group(MemoryStore(found), mode="w", zarr_format=3)
    h, w = plan.size
    spec = StoreSpec(
        patch_shape=(h, w, slides[0].channels), dtype=slides[0].dtype,
        coords=np.stack([plan.y, plan.x], axis=1), slide=plan.slide, label=plan.label,
        sources=[_source_record(s, plan, k) for k, s in enumerate(slides)],
        plan=plan.params(), shard_size=shard_size, codec=codec, tissue=plan.tissue,
    )
    create_nodes(group, spec)
    group.attrs[ATTRS_KEY] = {
        "format": FORMAT_VERSION, "version": __version__,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "shard_size": shard_size, "codec": spec.codec, "sources": list(spec.sources),
        "plan": spec.plan,
    }
    flags = -(-n // shard_size) * (DONE_DTYPE.itemsize + CHUNK_CRC_NBYTES)  # one file each
    return sum(len(value) for value in found.values()) + flags
