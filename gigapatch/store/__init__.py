"""The patch store: a Zarr v3 group in gigapatch's format version 1.

=============  ====================  ==============================================
node           shape / dtype         meaning
=============  ====================  ==============================================
``images``     (N, h, w, C), source  the patches; chunk = 1 patch, shard = S patches
``coords``     (N, 2) int64          (y, x) level-0 top-left of each patch
``slide``      (N,) int32            index into ``attrs["gigapatch"]["sources"]``
``label``      (N,) int32            class label, -1 where none
``done``       (ceil(N/S),) bool     shard written completely
``tissue``     (N,) float32          optional: tissue fraction of each patch's footprint
attrs          ``gigapatch``         format, version, sources, plan, created
=============  ====================  ==============================================

A shard of ``images`` is written whole by one task; only then is its ``done``
flag set, by the single process that drives the run. A store whose flags are
not all set is incomplete, whatever its other nodes hold. The layout of a
shard file is known to :class:`ShardLayout` alone; :class:`ShardReader` reads
patches straight from the shard files.
"""

from gigapatch.store.format import ATTRS_KEY, CODECS, FORMAT_VERSION, Codec
from gigapatch.store.reader import PatchStore, read_done
from gigapatch.store.selection import PatchSelection
from gigapatch.store.shardreader import ShardReader
from gigapatch.store.shards import ShardLayout
from gigapatch.store.spec import StoreSpec
from gigapatch.store.summary import describe_plan, is_store, patches_done, recorded_seed, summarize
from gigapatch.store.writer import create_store, mark_done, open_for_resume, write_shard

__all__ = [
    "ATTRS_KEY",
    "CODECS",
    "FORMAT_VERSION",
    "Codec",
    "PatchSelection",
    "PatchStore",
    "ShardLayout",
    "ShardReader",
    "StoreSpec",
    "create_store",
    "describe_plan",
    "is_store",
    "mark_done",
    "open_for_resume",
    "patches_done",
    "read_done",
    "recorded_seed",
    "summarize",
    "write_shard",
]
