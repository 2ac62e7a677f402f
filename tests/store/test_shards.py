"""The whole-shard writer produces shards zarr reads back exactly."""

import numpy as np
import pytest
import zarr
from zarr.codecs import BloscCodec, ZstdCodec

from gigapatch.store.shards import shard_writer


def _array(store, dtype, codec, n=10, shard=4, shape=(5, 6, 3)):
    compressors = {"zstd": [ZstdCodec(level=1)], "zstd-checksum": [ZstdCodec(level=3,
                   checksum=True)], "blosc": [BloscCodec(cname="lz4", shuffle="shuffle")],
                   "none": None}[codec]
    return zarr.create_array(store, shape=(n, *shape), dtype=dtype, chunks=(1, *shape),
                             shards=(shard, *shape), compressors=compressors, fill_value=0)


@pytest.mark.parametrize("codec", ["zstd", "zstd-checksum", "blosc", "none"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_shards_read_back_through_zarr(tmp_path, codec, dtype):
    arr = _array(tmp_path / "a.zarr", dtype, codec)
    write = shard_writer(arr)
    assert write is not None
    rng = np.random.default_rng(0)
    data = (rng.random((10, 5, 6, 3)) * 1000).astype(dtype)
    data[5] = 0  # a patch equal to the fill value is stored too
    for i in range(3):  # the last shard holds 2 of its 4 patches
        write(i, data[i * 4 : i * 4 + 4])
    back = zarr.open_array(tmp_path / "a.zarr", mode="r")
    assert np.array_equal(back[:], data)
    assert np.array_equal(back[[9, 0, 5]], data[[9, 0, 5]])
    assert not list((tmp_path / "a.zarr").rglob("*.tmp"))


def test_a_rewritten_shard_replaces_the_old_one_whole(tmp_path):
    arr = _array(tmp_path / "a.zarr", np.uint8, "zstd")
    write = shard_writer(arr)
    write(0, np.full((4, 5, 6, 3), 7, np.uint8))
    write(0, np.full((4, 5, 6, 3), 9, np.uint8))
    assert (zarr.open_array(tmp_path / "a.zarr", mode="r")[:4] == 9).all()


def test_other_layouts_fall_back_to_zarr(tmp_path):
    assert shard_writer(_array(zarr.storage.MemoryStore(), np.uint8, "zstd")) is None
    unsharded = zarr.create_array(tmp_path / "u.zarr", shape=(4, 2), dtype="u1", chunks=(1, 2))
    assert shard_writer(unsharded) is None
    start_index = zarr.create_array(
        tmp_path / "s.zarr", shape=(4, 2), dtype="u1", chunks=(1, 2),
        shards={"shape": (2, 2), "index_location": "start"},
    )
    assert shard_writer(start_index) is None
