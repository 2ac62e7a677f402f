"""ShardReader: patches decoded straight from the shard files equal zarr's, in any order."""

import numpy as np
import pytest
import zarr

from gigapatch.errors import StoreError
from gigapatch.feed import ShardReader as FeedShardReader
from gigapatch.store import ShardReader
from tests.store.sample import make_store


def test_the_feed_re_exports_the_store_reader():
    assert FeedShardReader is ShardReader


@pytest.mark.parametrize("codec", ["lz4", "zstd", "none"])
def test_shard_reader_equals_zarr_in_any_order(tmp_path, codec):
    store, images = make_store(tmp_path / "c.zarr", n=40, shard_size=16, codec=codec)
    reader = ShardReader(store.images)
    assert reader.direct
    order = np.random.default_rng(3).permutation(40)
    assert np.array_equal(reader.read(order), images[order])
    assert np.array_equal(reader.read(np.array([5, 5, 39])), images[[5, 5, 39]])
    assert reader.read(np.zeros(0, np.int64)).shape == (0, 6, 5, 3)
    out = np.zeros((3, 6, 5, 3), np.uint8)
    assert reader.read([7, 1, 20], out=out) is out and np.array_equal(out, images[[7, 1, 20]])


@pytest.mark.parametrize("kind", ["big-endian", "strided"])
def test_outputs_unlike_the_stored_patches_are_filled_through_one_patch(tmp_path, kind):
    store, images = make_store(tmp_path / "b.zarr", n=20, dtype=np.uint16, codec="zstd")
    reader = ShardReader(store.images)
    order = np.random.default_rng(5).permutation(20)
    if kind == "big-endian":
        out = np.zeros((20, 6, 5, 3), ">u2")
    else:
        out = np.zeros((20, 6, 5, 6), np.uint16)[..., ::2]
    assert reader.read(order, out=out) is out
    assert np.array_equal(out, images[order])


def test_an_array_without_a_layout_is_read_through_zarr(tmp_path):
    data = np.random.default_rng(0).integers(0, 255, (10, 4, 3, 1), dtype=np.uint8)
    memory = zarr.create_array(zarr.storage.MemoryStore(), shape=data.shape, dtype="u1",
                               chunks=(1, 4, 3, 1), shards=(4, 4, 3, 1))
    memory[:] = data
    reader = ShardReader(memory)
    assert not reader.direct
    order = np.random.default_rng(4).permutation(10)
    assert np.array_equal(reader.read(order), data[order])


def test_missing_shards_read_as_fill_and_damage_is_an_error(tmp_path):
    store, _ = make_store(tmp_path / "d.zarr", n=20, shard_size=16, codec="zstd")
    layout = store.layout
    raw = layout.path(0).read_bytes()
    layout.path(1).unlink()  # a shard never written reads as the fill value, like zarr
    assert (ShardReader(store.images).read([17]) == 0).all()
    damaged = bytearray(raw)
    damaged[-10] ^= 0xFF
    layout.path(0).write_bytes(bytes(damaged))
    with pytest.raises(StoreError, match=r"shard 0 \(patches 0-15, file '.*'\) is damaged: its "
                                         r"index is damaged \(checksum mismatch\)"):
        ShardReader(store.images).read(np.array([0]))
    garbled = bytearray(raw)
    garbled[:4] = b"\0\0\0\0"  # patch 0's zstd frame loses its magic number
    layout.path(0).write_bytes(bytes(garbled))
    with pytest.raises(StoreError, match=r"patch 0 fails its checksum \(CRC32C\)"):
        ShardReader(store.images).read(np.array([0]))


def test_a_cached_index_is_read_again_when_its_shard_is_rewritten(tmp_path):
    store, images = make_store(tmp_path / "r.zarr", n=16, shard_size=16, codec="zstd")
    reader = ShardReader(store.images)
    assert np.array_equal(reader.read([3]), images[[3]])
    other = images[::-1].copy()
    other[:8] = 0  # compress to a few bytes: the old index would point elsewhere
    store.layout.write(0, other)
    assert np.array_equal(reader.read([3, 15]), other[[3, 15]])


def test_threads_must_be_a_positive_integer(tmp_path):
    from gigapatch.errors import InvalidArgumentError
    from gigapatch.store.shardreader import default_threads

    store, _ = make_store(tmp_path / "t.zarr", n=20, codec="jpeg", size=(16, 16))
    with pytest.raises(InvalidArgumentError, match="threads must be at least 1; got 0"):
        ShardReader(store.images, threads=0)
    reader = ShardReader(store.images, threads=3)
    with pytest.raises(InvalidArgumentError, match="threads must be at least 1; got -2"):
        reader.read([1, 2], threads=-2)
    assert np.array_equal(reader.read(np.arange(20)), reader.read(np.arange(20), threads=1))
    assert default_threads() >= 1 and default_threads(share=10**6) == 1
