"""The ``gigapatch.jpeg`` codec: each patch one baseline JPEG, read by gigapatch and by zarr.

A JPEG store's patches read back close to what was written (PSNR on tissue),
the same through gigapatch's shard reader and through plain ``zarr.open``;
gigapatch's shard files are byte for byte zarr's own; a damaged chunk is an
error, never pixels.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import zarr

from gigapatch.errors import StoreCorruptError
from gigapatch.sources.jpeg import TileDecodeError
from gigapatch.store import (
    JpegCodec,
    PatchStore,
    ShardLayout,
    StoreSpec,
    create_store,
    mark_done,
    write_shard,
)
from gigapatch.store.jpegcodec import decode_jpeg, encode_jpeg
from gigapatch.store.shards import CHUNK_CRC_NBYTES
from gigapatch.testing import sample_rgb

SIZE = (48, 56)


def tissue(n: int, size: tuple[int, int] = SIZE, channels: int = 3, seed: int = 0) -> np.ndarray:
    """``n`` patches of synthetic H&E tissue (grey: its first channel)."""
    h, w = size
    image = sample_rgb(h * n, w, seed=seed)
    return np.ascontiguousarray(image.reshape(n, h, w, 3)[..., :channels])


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    return 10 * np.log10(255**2 / mse)


def jpeg_store(path, patches: np.ndarray, codec: str = "jpeg", shard_size: int = 4,
               write: bool = True) -> PatchStore:
    n, h, w, c = patches.shape
    group = create_store(path, StoreSpec(
        patch_shape=(h, w, c), dtype=np.uint8, coords=np.zeros((n, 2)), slide=np.zeros(n),
        label=np.zeros(n), sources=[{"path": "s"}], plan={}, shard_size=shard_size, codec=codec,
    ))
    if write:
        shards = -(-n // shard_size)
        for k in range(shards):
            write_shard(group["images"], k, patches[k * shard_size : (k + 1) * shard_size])
        mark_done(group, range(shards))
    return PatchStore(path)


@pytest.mark.parametrize("channels", [3, 1])
def test_a_jpeg_store_reads_back_close_to_what_was_written(tmp_path, channels):
    patches = tissue(10, channels=channels)
    store = jpeg_store(tmp_path / "j.zarr", patches)
    assert store.attrs["codec"] == "jpeg:90"
    assert store.layout is not None and store.layout.jpeg == 90
    back = store[:]
    assert back.shape == patches.shape and back.dtype == np.uint8
    assert psnr(back, patches) > 33  # q90 on tissue: lossy, but close
    assert not np.array_equal(back, patches)
    order = [9, 0, 3, 3]
    assert np.array_equal(store[order], back[order])


def test_plain_zarr_reads_a_jpeg_store_after_importing_gigapatch(tmp_path):
    patches = tissue(6)
    store = jpeg_store(tmp_path / "j.zarr", patches)
    images = zarr.open(tmp_path / "j.zarr", mode="r")["images"]
    meta = json.loads((tmp_path / "j.zarr" / "images" / "zarr.json").read_text())
    codecs = meta["codecs"][0]["configuration"]["codecs"]
    assert codecs == [{"name": "gigapatch.jpeg", "configuration": {"quality": 90}},
                      {"name": "crc32c"}]
    assert np.array_equal(images[:], store[:])
    assert np.array_equal(images[4], store[4])


@pytest.mark.parametrize("quality", [90, 50])
def test_our_jpeg_shard_files_equal_zarrs_byte_for_byte(tmp_path, quality):
    patches = tissue(7)
    arrays = [
        zarr.create_array(tmp_path / f"{name}.zarr", shape=patches.shape, dtype=np.uint8,
                          chunks=(1, *SIZE, 3), shards=(4, *SIZE, 3),
                          serializer=JpegCodec(quality=quality), compressors=[
                              zarr.codecs.Crc32cCodec()], fill_value=0)
        for name in ("ours", "theirs")
    ]
    arrays[1][:] = patches
    ours, theirs = (ShardLayout.of(a) for a in arrays)
    assert ours is not None and theirs is not None and ours.jpeg == quality
    for i in range(ours.n_shards):
        ours.write(i, patches[ours.patches(i).start : ours.patches(i).stop])
        assert ours.path(i).read_bytes() == theirs.path(i).read_bytes(), f"shard {i}"


def test_a_chunk_is_one_complete_baseline_jpeg(tmp_path):
    patches = tissue(4)
    store = jpeg_store(tmp_path / "j.zarr", patches)
    layout = store.layout
    raw = layout.path(0).read_bytes()
    offsets = np.frombuffer(raw[-layout.index_nbytes : -4], "<u8").reshape(-1, 2)
    offset, nbytes = (int(v) for v in offsets[2])
    stream = raw[offset : offset + nbytes - CHUNK_CRC_NBYTES]
    assert stream[:2] == b"\xff\xd8" and stream[-2:] == b"\xff\xd9"
    assert b"\xff\xc0" in stream and b"\xff\xc2" not in stream  # baseline, not progressive
    assert b"\xff\xdb" in stream and b"\xff\xc4" in stream  # its own tables
    out = np.empty((*SIZE, 3), np.uint8)
    decode_jpeg(stream, out)
    assert np.array_equal(out, store[2])


def test_a_damaged_jpeg_chunk_is_an_error_never_pixels(tmp_path):
    patches = tissue(4)
    store = jpeg_store(tmp_path / "j.zarr", patches)
    path = store.layout.path(0)
    raw = bytearray(path.read_bytes())
    raw[300] ^= 0x55  # inside patch 0: its CRC32C no longer matches
    path.write_bytes(bytes(raw))
    with pytest.raises(StoreCorruptError, match=r"patch 0 fails its checksum"):
        PatchStore(tmp_path / "j.zarr")[0]
    with pytest.raises(ValueError, match="checksum"):
        zarr.open(tmp_path / "j.zarr", mode="r")["images"][0]


def test_a_chunk_with_a_valid_checksum_that_is_no_jpeg_is_an_error(tmp_path):
    patches = tissue(4)
    store = jpeg_store(tmp_path / "j.zarr", patches, write=False)
    layout = store.layout
    blobs = [encode_jpeg(p, 90) for p in patches]
    blobs[1] = blobs[1][: len(blobs[1]) // 2]  # cut short: libjpeg warns, strict decode fails
    blobs[2] = bytes(100)  # not a JPEG at all
    layout.path(0).parent.mkdir(parents=True, exist_ok=True)
    layout.path(0).write_bytes(b"".join(layout.shard_parts(blobs)))
    mark_done(zarr.open_group(tmp_path / "j.zarr", mode="r+"), [0])
    store = PatchStore(tmp_path / "j.zarr")
    assert np.array_equal(store[[0, 3]], [store[0], store[3]])
    for k in (1, 2):
        with pytest.raises(StoreCorruptError, match=rf"patch {k} does not decode"):
            store[k]
    assert store.layout.problem(0, deep=True) is not None


def test_decode_checks_the_patch_size():
    blob = encode_jpeg(tissue(1)[0], 90)
    with pytest.raises(TileDecodeError, match="decodes to 48x56 pixels, expected 56x64"):
        decode_jpeg(blob, np.empty((56, 64, 3), np.uint8))
    with pytest.raises(TileDecodeError, match="too small"):
        decode_jpeg(blob, np.empty((40, 56, 3), np.uint8))


def test_a_jpeg_source_store_is_created_and_reads_copied_streams(tmp_path):
    patches = tissue(6)
    store = jpeg_store(tmp_path / "s.zarr", patches, codec="jpeg:source", write=False)
    assert store.attrs["codec"] == "jpeg:source" and store.layout.jpeg == "source"
    with pytest.raises(ValueError, match="never encoded from pixels"):
        write_shard(store.images, 0, patches[:4])
    layout = store.layout
    blobs = [encode_jpeg(p, 75) for p in patches]  # stand-ins for a source's tiles
    for shard in range(layout.n_shards):
        rows = layout.patches(shard)
        layout.path(shard).parent.mkdir(parents=True, exist_ok=True)
        layout.path(shard).write_bytes(b"".join(layout.shard_parts(blobs[rows.start:rows.stop])))
    mark_done(zarr.open_group(tmp_path / "s.zarr", mode="r+"), range(layout.n_shards))
    store = PatchStore(tmp_path / "s.zarr")
    expected = np.empty_like(patches)
    for k, blob in enumerate(blobs):
        decode_jpeg(blob, expected[k])
    assert np.array_equal(store[:], expected)
    assert np.array_equal(zarr.open(tmp_path / "s.zarr", mode="r")["images"][:], expected)
