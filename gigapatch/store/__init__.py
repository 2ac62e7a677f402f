"""The patch store: a Zarr v3 group in gigapatch's format version 2.

=============  ====================  ==============================================
node           shape / dtype         meaning
=============  ====================  ==============================================
``images``     (N, h, w, C), source  the patches; chunk = 1 patch, shard = S patches
``coords``     (N, 2) int64          (y, x) level-0 top-left of each patch
``slide``      (N,) int32            index into ``attrs["gigapatch"]["sources"]``
``label``      (N,) int32            class label, -1 where none
``done``       (ceil(N/S),) uint32   0: shard not written; else the shard's digest
``tissue``     (N,) float32          optional: tissue fraction of each patch's footprint
``status``     (N,) uint8            0: extracted; 1: failed (``on_error="skip"``)
attrs          ``gigapatch``         format, version, codec, sources, plan, created
=============  ====================  ==============================================

``images`` is lossless (``lz4``, ``zstd``, ``zstd-3``, ``none``) or one baseline
JPEG per patch (``jpeg:QUALITY``, ``jpeg:source``: :mod:`gigapatch.store.codecs`,
:class:`JpegCodec`, registered with zarr when gigapatch is imported); a JPEG
store records the quality and PSNR of a sample of its patches in its attrs.

Every chunk of every array ends with its CRC32C (Zarr v3's ``crc32c`` codec),
so any Zarr v3 reader checks it. A shard of ``images`` is written whole by one
task and synced; only then does the single process that drives the run set
its ``done`` value to the digest of the file on disk. Readers hand out
patches of done shards only, every chunk checked, and raise
:class:`~gigapatch.errors.StoreCorruptError` for damage and
:class:`~gigapatch.errors.StoreIncompleteError` for patches not written — never
a fill value. :func:`verify_store` reads everything; :func:`repair_store`
makes damage resumable. The layout of a shard file is known to
:class:`ShardLayout` alone.
"""

from gigapatch.store.codecs import CodecSpec, parse_codec
from gigapatch.store.format import ATTRS_KEY, CODECS, FORMAT_VERSION, READABLE_FORMATS, Codec
from gigapatch.store.jpegcodec import JpegCodec  # registers "gigapatch.jpeg" with zarr
from gigapatch.store.reader import PatchStore, read_done
from gigapatch.store.selection import PatchSelection
from gigapatch.store.shardreader import ShardReader
from gigapatch.store.shards import ShardLayout
from gigapatch.store.spec import StoreSpec
from gigapatch.store.summary import describe_plan, is_store, patches_done, recorded_seed, summarize
from gigapatch.store.verify import Verification, repair_store, verify_store
from gigapatch.store.writer import create_store, mark_done, open_for_resume, write_shard

__all__ = [
    "ATTRS_KEY",
    "CODECS",
    "FORMAT_VERSION",
    "Codec",
    "CodecSpec",
    "JpegCodec",
    "PatchSelection",
    "PatchStore",
    "READABLE_FORMATS",
    "ShardLayout",
    "ShardReader",
    "StoreSpec",
    "Verification",
    "create_store",
    "describe_plan",
    "is_store",
    "parse_codec",
    "mark_done",
    "open_for_resume",
    "patches_done",
    "read_done",
    "recorded_seed",
    "repair_store",
    "summarize",
    "verify_store",
    "write_shard",
]
