"""ShardLayout: the shard files gigapatch writes and reads itself are exactly zarr's.

These tests pin what ``gigapatch.store.shards`` and ``gigapatch.store.shardcodecs``
assume of zarr-python (codec objects, sharding codec fields, chunk key
encoding) and of the Zarr v3 sharding spec. If a zarr upgrade changes any of
it they fail, rather than gigapatch silently falling back to its slow path or
writing files zarr cannot read.
"""

import os
import struct

import google_crc32c
import numpy as np
import pytest
import zarr
from zarr.codecs import BloscCodec, Crc32cCodec, GzipCodec, ZstdCodec

from gigapatch.store import CODECS, ShardLayout, ShardReader, StoreSpec, create_store
from gigapatch.store.shards import EMPTY

SHAPE = (5, 6, 3)
ALL_CODECS = ["zstd", "zstd-checksum", "blosc", "none", "zstd-crc32c", "crc32c"]


def _array(store, dtype, codec, n=10, shard=4, shape=SHAPE):
    compressors = {"zstd": [ZstdCodec(level=1)], "zstd-checksum": [ZstdCodec(level=3,
                   checksum=True)], "blosc": [BloscCodec(cname="lz4", shuffle="shuffle")],
                   "none": None, "zstd-crc32c": [ZstdCodec(level=1), Crc32cCodec()],
                   "crc32c": [Crc32cCodec()]}[codec]
    return zarr.create_array(store, shape=(n, *shape), dtype=dtype, chunks=(1, *shape),
                             shards=(shard, *shape), compressors=compressors, fill_value=0)


def _data(dtype, n=10, shape=SHAPE, seed=0):
    """Random patches, none equal to the fill value (zarr does not store those)."""
    return (np.random.default_rng(seed).random((n, *shape)) * 1000 + 1).astype(dtype)


def _store_images(path, codec, dtype=np.uint8, n=10, shard=4):
    spec = StoreSpec(patch_shape=SHAPE, dtype=dtype, coords=np.zeros((n, 2)), slide=np.zeros(n),
                     label=np.zeros(n), sources=[], plan={}, shard_size=shard, codec=codec)
    return create_store(path, spec)["images"]


def _spec_index(raw: bytes, chunks: int) -> list[tuple[int, int]]:
    """The index at the end of a shard file, parsed as the Zarr v3 sharding spec says:
    (offset, nbytes) little-endian uint64 per chunk, then the CRC32C of those bytes as a
    little-endian uint32."""
    tail = raw[-(16 * chunks + 4) :]
    body, (crc,) = tail[:-4], struct.unpack("<I", tail[-4:])
    assert crc == google_crc32c.value(body)
    return [struct.unpack_from("<QQ", body, 16 * k) for k in range(chunks)]


@pytest.mark.parametrize("codec", list(CODECS))
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_every_store_codec_has_a_layout_and_writes_zarrs_exact_bytes(tmp_path, codec, dtype):
    ours = _store_images(tmp_path / "ours.zarr", codec, dtype)
    theirs = _store_images(tmp_path / "theirs.zarr", codec, dtype)
    layout = ShardLayout.of(ours)
    assert layout is not None, f"codec {codec}: zarr changed, gigapatch fell back to zarr"
    assert ShardReader(ours).direct
    data = _data(dtype)
    theirs[:] = data
    for i in range(layout.n_shards):
        layout.write(i, data[layout.patches(i).start : layout.patches(i).stop])
    zarr_files = sorted(p for p in (tmp_path / "theirs.zarr" / "images").rglob("*") if p.is_file()
                        and p.name != "zarr.json")
    other = ShardLayout.of(theirs)
    assert zarr_files == sorted(other.path(i) for i in range(other.n_shards))
    for i in range(layout.n_shards):
        assert layout.path(i).read_bytes() == other.path(i).read_bytes(), f"shard {i}"
    assert np.array_equal(zarr.open_array(tmp_path / "ours.zarr" / "images")[:], data)


@pytest.mark.parametrize("codec", ALL_CODECS)
@pytest.mark.parametrize("dtype", [np.uint16, ">u2"])
def test_our_shard_files_equal_zarrs_byte_for_byte(tmp_path, codec, dtype):
    ours, theirs = (_array(tmp_path / f"{name}.zarr", dtype, codec) for name in ("a", "b"))
    data = _data(dtype)
    theirs[:] = data
    layout, other = ShardLayout.of(ours), ShardLayout.of(theirs)
    for i in range(layout.n_shards):
        layout.write(i, data[layout.patches(i).start : layout.patches(i).stop])
        assert layout.path(i).read_bytes() == other.path(i).read_bytes(), f"shard {i}"


@pytest.mark.parametrize("codec", ALL_CODECS)
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, ">u2"])
def test_shards_we_write_read_back_through_zarr(tmp_path, codec, dtype):
    arr = _array(tmp_path / "a.zarr", dtype, codec)
    layout = ShardLayout.of(arr)
    assert layout is not None
    data = _data(dtype)
    data[5] = 0  # a patch equal to the fill value is stored too
    for i in range(3):  # the last shard holds 2 of its 4 patches
        layout.write(i, data[i * 4 : i * 4 + 4])
    back = zarr.open_array(tmp_path / "a.zarr", mode="r")
    assert np.array_equal(back[:], data)
    assert np.array_equal(back[[9, 0, 5]], data[[9, 0, 5]])
    assert not list((tmp_path / "a.zarr").rglob("*.tmp"))


@pytest.mark.parametrize("codec", ALL_CODECS)
@pytest.mark.parametrize("dtype", [np.uint8, np.float32, ">u2"])
def test_shards_zarr_writes_read_back_through_our_reader(tmp_path, codec, dtype):
    arr = _array(tmp_path / "a.zarr", dtype, codec)
    data = _data(dtype)
    data[[2, 9]] = 0  # zarr stores no chunk for these: their index entries are empty
    arr[:] = data
    reader = ShardReader(arr)
    assert reader.direct
    order = np.random.default_rng(1).permutation(10)
    assert np.array_equal(reader.read(order), data[order])


def test_the_index_is_laid_out_as_the_sharding_spec_says(tmp_path):
    arr = _array(tmp_path / "a.zarr", np.uint16, "none")
    data = _data(np.uint16, n=10)
    data[1] = 0  # not stored by zarr
    arr[:] = data
    layout = ShardLayout.of(arr)
    raw = layout.path(0).read_bytes()
    entries = _spec_index(raw, 4)
    assert entries[1] == (2**64 - 1, 2**64 - 1) and EMPTY == 2**64 - 1
    stored = [k for k in range(4) if k != 1]
    patch_nbytes = int(np.prod(SHAPE)) * 2
    # chunks back to back from the start of the file, in order, then the index
    assert [entries[k] for k in stored] == [(j * patch_nbytes, patch_nbytes) for j in range(3)]
    assert len(raw) == 3 * patch_nbytes + layout.index_nbytes == 3 * patch_nbytes + 16 * 4 + 4
    for k in stored:
        offset, nbytes = entries[k]
        assert raw[offset : offset + nbytes] == data[k].astype("<u2").tobytes()
    fd = os.open(layout.path(0), os.O_RDONLY)
    try:
        table = layout.read_index(fd, 0)
    finally:
        os.close(fd)
    assert [tuple(int(v) for v in row) for row in table] == entries
    assert layout.encode_index(table) == raw[-layout.index_nbytes :]


def test_a_rewritten_shard_replaces_the_old_one_whole(tmp_path):
    layout = ShardLayout.of(_array(tmp_path / "a.zarr", np.uint8, "zstd"))
    layout.write(0, np.full((4, *SHAPE), 7, np.uint8))
    layout.write(0, np.full((4, *SHAPE), 9, np.uint8))
    assert (zarr.open_array(tmp_path / "a.zarr", mode="r")[:4] == 9).all()


def test_other_layouts_have_none(tmp_path):
    assert ShardLayout.of(_array(zarr.storage.MemoryStore(), np.uint8, "zstd")) is None
    unsharded = zarr.create_array(tmp_path / "u.zarr", shape=(4, 2), dtype="u1", chunks=(1, 2))
    assert ShardLayout.of(unsharded) is None
    start_index = zarr.create_array(
        tmp_path / "s.zarr", shape=(4, 2), dtype="u1", chunks=(1, 2),
        shards={"shape": (2, 2), "index_location": "start"},
    )
    assert ShardLayout.of(start_index) is None
    gzip = zarr.create_array(tmp_path / "g.zarr", shape=(4, 2), dtype="u1", chunks=(1, 2),
                             shards=(2, 2), compressors=[GzipCodec()])
    assert ShardLayout.of(gzip) is None
    two_per_chunk = zarr.create_array(tmp_path / "t.zarr", shape=(4, 2), dtype="u1",
                                      chunks=(2, 2), shards=(4, 2))
    assert ShardLayout.of(two_per_chunk) is None


def test_problem_names_what_is_wrong_with_a_shard_file(tmp_path):
    arr = _array(tmp_path / "a.zarr", np.uint8, "none", n=12)
    layout = ShardLayout.of(arr)
    data = _data(np.uint8, n=12)
    for i in range(3):
        layout.write(i, data[i * 4 : i * 4 + 4])
    assert [layout.problem(i) for i in range(3)] == [None, None, None]
    raw = layout.path(0).read_bytes()
    layout.path(0).unlink()
    assert layout.problem(0) == "its file is missing"
    layout.path(0).write_bytes(raw[:30])
    assert layout.problem(0) == "its file is truncated (30 bytes)"
    damaged = bytearray(raw)
    damaged[-10] ^= 0xFF
    layout.path(0).write_bytes(bytes(damaged))
    assert layout.problem(0) == "its index is damaged (checksum mismatch)"
    layout.path(0).write_bytes(raw[:20] + raw[-layout.index_nbytes :])  # chunks cut, index whole
    assert layout.problem(0) == "its file is truncated (chunks past the end)"
