"""The nodes of a format-2 store and how each is encoded: the one place that creates them.

Every array carries Zarr v3's ``crc32c`` codec last in its chunk codec chain
(inside the shards of ``images``, whose index has its own CRC32C), so
zarr-python, gigapatch's own shard reader and any other Zarr v3 reader check
every chunk they decode. ``images`` writes every chunk, all-zero ones
included, so a chunk absent from a finished shard is damage, never a blank
patch. ``done`` holds one small file per shard: 0 while the shard is not
written, else the shard's digest (:meth:`~gigapatch.store.ShardLayout.digest`),
set by the driver once the shard's file is on disk.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import zarr
from zarr.codecs import Crc32cCodec, ZstdCodec

from gigapatch.store.codecs import codec_chain, parse_codec
from gigapatch.store.format import META_ROWS
from gigapatch.store.spec import StoreSpec
from gigapatch.store.status import create_status

__all__ = ["DONE_DTYPE", "create_nodes"]

#: dtype of ``done``: 0 = not done, else the digest of the finished shard (never 0).
DONE_DTYPE = np.dtype(np.uint32)


def create_nodes(group: zarr.Group, spec: StoreSpec) -> None:
    """Create every array of a store of ``spec`` in the empty ``group`` (no shard done).

    Writes the per-patch arrays (``coords``, ``slide``, ``label`` and
    ``tissue`` when given) and ``status`` (all 0: ok); ``images`` and ``done``
    start empty.
    """
    arrays = spec.arrays()
    n = len(arrays["coords"])
    h, w, c = spec.patch_shape
    serializer, compressors = codec_chain(parse_codec(spec.codec))  # crc32c last
    group.create_array(
        "images",
        shape=(n, h, w, c),
        dtype=np.dtype(spec.dtype),
        chunks=(1, h, w, c),
        shards=(spec.shard_size, h, w, c),
        serializer=serializer,
        compressors=compressors,
        fill_value=0,
        config={"write_empty_chunks": True},
        dimension_names=["patch", "y", "x", "channel"],
    )
    meta_rows = min(n, META_ROWS)
    for name, data in arrays.items():  # coords, slide, label, and tissue if any
        node: zarr.Array[Any] = group.create_array(
            name,
            shape=data.shape,
            dtype=data.dtype,
            chunks=(meta_rows, *data.shape[1:]),
            compressors=[ZstdCodec(level=3), Crc32cCodec()],
            fill_value=0,
            config={"write_empty_chunks": True},
            dimension_names=["patch", "yx"] if name == "coords" else ["patch"],
        )
        node[...] = data
    create_status(group, n)  # every patch ok until the driver records a failure
    # one tiny file per flag: setting a flag rewrites no other flag, so a run killed while
    # marking a shard done cannot damage the flags of finished shards
    group.create_array(
        "done",
        shape=(-(-n // spec.shard_size),),
        dtype=DONE_DTYPE,
        fill_value=0,
        chunks=(1,),
        compressors=[Crc32cCodec()],
        dimension_names=["shard"],
    )
