"""A damaged store never hands out data: each kind of damage is found by every reader and by
``verify``, and ``verify --repair`` then ``--resume`` gives back the bytes of a clean run.

The damage cases of issue 13: a shard file deleted; chunks of ``coords``,
``slide`` or ``label`` deleted; bits flipped inside a shard's patch bytes
(with every codec); a truncated shard; a shard file copied in from another
store; a zeroed shard index; a torn ``done`` flag.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import zarr

import gigapatch
from gigapatch.errors import StoreCorruptError, StoreError, StoreIncompleteError
from gigapatch.feed import iter_batches
from gigapatch.store import CODECS, PatchStore, repair_store, verify_store
from gigapatch.store.shards import CHUNK_CRC_NBYTES


def _image(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (160, 200, 3), dtype=np.uint8)


def _extract(out: Path, codec: str = "lz4", seed: int = 0) -> PatchStore:
    image = _image(seed)
    plan = gigapatch.grid(image, 32, stride=24)
    return gigapatch.extract_to_zarr(image, plan, out, shard_size=8, codec=codec, workers=1)


def _resume(out: Path, codec: str = "lz4") -> PatchStore:
    image = _image()
    plan = gigapatch.grid(image, 32, stride=24)
    return gigapatch.extract_to_zarr(image, plan, out, shard_size=8, codec=codec, workers=1,
                                     resume=True)


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """A clean run's store (lz4), and its files' bytes by relative path."""
    out = tmp_path_factory.mktemp("clean") / "clean.zarr"
    store = _extract(out)
    assert store.verify() == []
    return out, _files(out)


def _files(root: Path) -> dict[str, bytes]:
    """Every file of a store but the attributes (they record a creation time)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.relative_to(root) != Path("zarr.json")}


def _shard_file(out: Path, shard: int) -> Path:
    return out / "images" / "c" / str(shard) / "0" / "0" / "0"


def _copy(clean, tmp_path) -> Path:
    out = tmp_path / "s.zarr"
    shutil.copytree(clean[0], out)
    return out


def _damage_is_found_then_repaired(out: Path, clean_files, shard: int | None, array: str,
                                   patches: list[int]) -> None:
    """Every reader refuses the damaged patches, verify names the damage, repair and resume
    restore the clean bytes."""
    store = PatchStore(out)
    if array == "images":
        for i in patches:
            with pytest.raises(StoreCorruptError, match=rf"shard {shard} \(patches"):
                store[i]
        with pytest.raises(StoreCorruptError):
            store.shard(shard)
    else:
        with pytest.raises(StoreCorruptError, match=rf"array '{array}', chunk c/0"):
            getattr(store, array)
    found = verify_store(store)
    assert not found.ok
    if shard is not None:
        assert found.damaged == [shard]
        assert any(p.startswith(f"shard {shard} ") for p in found.problems)
    else:
        assert [c.array for c in found.chunks] == [array]
    actions = repair_store(PatchStore(out), found)
    assert actions
    after = verify_store(PatchStore(out))
    # left: shards not done and per-patch chunks removed, which --resume writes again
    assert after.damaged == [] and all(c.reason == "is missing" for c in after.chunks)
    _resume(out)
    assert verify_store(PatchStore(out)).ok
    assert _files(out) == clean_files


def test_a_deleted_shard_file(clean, tmp_path):
    out = _copy(clean, tmp_path)
    _shard_file(out, 2).unlink()
    _damage_is_found_then_repaired(out, clean[1], 2, "images", [16, 23])


@pytest.mark.parametrize("array", ["coords", "slide", "label"])
def test_a_deleted_chunk_of_a_per_patch_array(clean, tmp_path, array):
    out = _copy(clean, tmp_path)
    chunk = next((out / array / "c").rglob("*"))
    while chunk.is_dir():
        chunk = next(chunk.iterdir())
    chunk.unlink()
    _damage_is_found_then_repaired(out, clean[1], None, array, [])


@pytest.mark.parametrize("array", ["coords", "label", "tissue"])
def test_a_flipped_byte_in_a_per_patch_array(tmp_path, array):
    image = _image()
    plan = gigapatch.grid(image, 32, stride=24, mask=np.ones((4, 4), bool))
    out = tmp_path / "t.zarr"
    gigapatch.extract_to_zarr(image, plan, out, shard_size=8, workers=1)
    chunk = next(p for p in (out / array).rglob("*") if p.is_file() and p.name != "zarr.json")
    raw = bytearray(chunk.read_bytes())
    raw[len(raw) // 2] ^= 0x10
    chunk.write_bytes(bytes(raw))
    with pytest.raises(StoreCorruptError, match=rf"array '{array}', chunk .* fails its checksum"):
        getattr(PatchStore(out), array)
    with pytest.raises(ValueError, match="checksum"):  # zarr-python checks it too
        zarr.open_array(out / array, mode="r")[:]


@pytest.mark.parametrize("codec", [*CODECS, "jpeg:90"])
def test_flipped_bits_in_patch_bytes_are_never_data(tmp_path, codec):
    out = tmp_path / "f.zarr"
    _extract(out, codec=codec)
    reference = _files(out)
    path = _shard_file(out, 1)
    raw = path.read_bytes()
    rng = np.random.default_rng(7)
    for trial in range(25):  # a flipped bit anywhere in the chunks' bytes, never the index
        flipped = bytearray(raw)
        at = int(rng.integers(0, len(raw) - PatchStore(out).layout.index_nbytes))
        flipped[at] ^= 1 << int(rng.integers(0, 8))
        path.write_bytes(bytes(flipped))
        store = PatchStore(out)
        with pytest.raises(StoreCorruptError, match=r"shard 1 \(patches 8-15"):
            store[8:16]
        with pytest.raises(ValueError):  # zarr-python refuses it as well, whatever the codec
            zarr.open_array(out / "images", mode="r")[8:16]
        assert verify_store(store).damaged == [1], trial
    path.write_bytes(raw)
    assert _files(out) == reference and verify_store(PatchStore(out)).ok


def test_a_bit_flip_in_patch_bytes_is_repaired(clean, tmp_path):
    out = _copy(clean, tmp_path)
    path = _shard_file(out, 3)
    raw = bytearray(path.read_bytes())
    raw[100] ^= 0x04
    path.write_bytes(bytes(raw))
    _damage_is_found_then_repaired(out, clean[1], 3, "images", [24])


def test_a_bit_flip_in_a_jpeg_store_is_found_repaired_and_resumed_to_the_same_bytes(tmp_path):
    out = tmp_path / "j.zarr"
    _extract(out, codec="jpeg")
    clean_files = _files(out)
    path = _shard_file(out, 3)
    raw = bytearray(path.read_bytes())
    raw[100] ^= 0x04
    path.write_bytes(bytes(raw))
    store = PatchStore(out)
    with pytest.raises(StoreCorruptError, match=r"shard 3 \(patches 24-31.*patch 24 fails its "
                       r"checksum"):
        store[24]
    found = verify_store(store)
    assert found.damaged == [3]
    repair_store(store, found)
    _resume(out, codec="jpeg:90")  # the canonical spec of "jpeg": the same request
    assert verify_store(PatchStore(out)).ok
    assert _files(out) == clean_files  # JPEG encoding is deterministic


def test_a_truncated_shard(clean, tmp_path):
    out = _copy(clean, tmp_path)
    with open(_shard_file(out, 0), "r+b") as fh:
        fh.truncate(1000)
    _damage_is_found_then_repaired(out, clean[1], 0, "images", [0, 7])


def test_a_zeroed_index(clean, tmp_path):
    out = _copy(clean, tmp_path)
    path = _shard_file(out, 4)
    raw = bytearray(path.read_bytes())
    tail = PatchStore(out).layout.index_nbytes
    raw[-tail:] = bytes(tail)
    path.write_bytes(bytes(raw))
    _damage_is_found_then_repaired(out, clean[1], 4, "images", [32])


def test_a_shard_copied_in_from_another_store(clean, tmp_path):
    other = tmp_path / "other.zarr"
    _extract(other, seed=5)  # the same request on another image: valid shards, other pixels
    out = _copy(clean, tmp_path)
    shutil.copyfile(_shard_file(other, 2), _shard_file(out, 2))
    with pytest.raises(StoreCorruptError, match="not the one marked done"):
        PatchStore(out)[17]
    _damage_is_found_then_repaired(out, clean[1], 2, "images", [16])


def test_a_shard_whose_bytes_and_checksums_were_both_rewritten(clean, tmp_path):
    # every chunk still passes its own checksum, but the shard's digest tells it apart
    out = _copy(clean, tmp_path)
    store = PatchStore(out)
    layout = store.layout
    other = store.shard(5).copy()
    other[0] ^= 1
    layout.write(5, other)
    with pytest.raises(StoreCorruptError, match="digest mismatch"):
        PatchStore(out)[40]
    _damage_is_found_then_repaired(out, clean[1], 5, "images", [41])


def test_a_torn_done_flag_counts_as_not_done(clean, tmp_path):
    out = _copy(clean, tmp_path)
    flag = out / "done" / "c" / "1"
    flag.write_bytes(flag.read_bytes()[:3])  # a torn write: its checksum fails
    store = PatchStore(out)
    assert store.done.tolist() == [True, False] + [True] * (store.n_shards - 2)
    with pytest.raises(StoreIncompleteError, match=r"patches 8-15 \(shard 1\) .* not written"):
        store[9]
    found = verify_store(store)
    assert found.not_done == [1] and found.unreadable_flags == [1]
    repair_store(store, found)
    assert not flag.exists()
    _resume(out)
    assert _files(out) == clean[1]


def test_patches_of_shards_not_done_are_not_data(clean, tmp_path):
    out = _copy(clean, tmp_path)
    (out / "done" / "c" / "0").unlink()  # as after an interruption: the file may even be there
    store = PatchStore(out)
    with pytest.raises(StoreIncompleteError, match="run it again with --resume"):
        store[0]
    assert np.array_equal(store[8:16], PatchStore(clean[0])[8:16])  # done shards still read
    with pytest.raises(StoreError):
        next(iter_batches(store, 8))  # the feed refuses an unfinished store


def test_checksums_cost_four_bytes_a_chunk(clean):
    store = PatchStore(clean[0])
    layout = store.layout
    assert layout.checksum and CHUNK_CRC_NBYTES == 4
    fd, table = layout.open_shard(0)
    try:
        raw = np.frombuffer(layout.path(0).read_bytes(), np.uint8)
        offset, nbytes = (int(v) for v in table[0])
        chunk = raw[offset : offset + nbytes]
    finally:
        import os

        os.close(fd)
    import google_crc32c

    assert int(np.frombuffer(chunk[-4:].tobytes(), "<u4")[0]) == google_crc32c.value(
        chunk[:-4].tobytes()
    )


def _format_1_store(path: Path) -> np.ndarray:
    """A store as gigapatch wrote format 1: no crc32c anywhere, ``done`` bool."""
    from zarr.codecs import BloscCodec

    patches = np.random.default_rng(3).integers(0, 256, (10, 8, 8, 3), dtype=np.uint8)
    group = zarr.open_group(path, mode="w", zarr_format=3)
    images = group.create_array("images", shape=patches.shape, dtype="u1", chunks=(1, 8, 8, 3),
                                shards=(4, 8, 8, 3), fill_value=0,
                                compressors=[BloscCodec(cname="lz4", clevel=5,
                                                        shuffle="noshuffle")])
    images[:] = patches
    group.create_array("coords", data=np.zeros((10, 2), np.int64), chunks=(10, 2))
    group.create_array("slide", data=np.zeros(10, np.int32), chunks=(10,))
    group.create_array("label", data=np.zeros(10, np.int32), chunks=(10,))
    done = group.create_array("done", shape=(3,), dtype=bool, chunks=(1,), fill_value=False,
                              compressors=None)
    done[:] = True
    group.attrs["gigapatch"] = {
        "format": 1, "version": "0.1.0", "created": "2026-01-01T00:00:00+00:00",
        "shard_size": 4, "codec": "lz4", "plan": {},
        "sources": [{"path": None, "name": "a", "downsample": [1, 1], "shape": [64, 64]}],
    }
    return patches


def test_a_format_1_store_reads_read_only(tmp_path):
    from gigapatch.store import StoreSpec, open_for_resume, summarize

    patches = _format_1_store(tmp_path / "old.zarr")
    store = PatchStore(tmp_path / "old.zarr")
    assert store.format == 1 and not store.checksummed and store.layout is not None
    assert np.array_equal(store[:], patches) and store.verify() == []
    assert "read-only: its chunks carry no checksums" in dict(summarize(store))["format"]
    _shard_file(tmp_path / "old.zarr", 1).unlink()
    with pytest.raises(StoreCorruptError, match="its file is missing"):  # still never zeros
        store[5]
    spec = StoreSpec(patch_shape=(8, 8, 3), dtype=np.uint8, coords=np.zeros((10, 2)),
                     slide=np.zeros(10), label=np.zeros(10), sources=store.sources, plan={},
                     shard_size=4)
    with pytest.raises(StoreError, match=r"it is a store of format 1 .* pass overwrite=True"):
        open_for_resume(tmp_path / "old.zarr", spec)


def test_a_store_of_a_newer_format_is_a_clear_error(tmp_path):
    _format_1_store(tmp_path / "new.zarr")
    group = zarr.open_group(tmp_path / "new.zarr", mode="r+")
    group.attrs["gigapatch"] = {**group.attrs["gigapatch"], "format": 3}
    with pytest.raises(StoreError, match="store of format 3; this gigapatch reads formats 1, 2"):
        PatchStore(tmp_path / "new.zarr")


def test_malformed_metadata_names_the_file(clean, tmp_path):
    out = _copy(clean, tmp_path)
    (out / "label" / "zarr.json").write_text("{not json")
    with pytest.raises(StoreError, match=r"store metadata '.*label/zarr.json' is malformed"):
        PatchStore(out)
