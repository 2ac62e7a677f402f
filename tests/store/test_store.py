import json
import pickle
import typing

import numpy as np
import pytest
import zarr

from gigapatch.errors import InvalidArgumentError, StoreError, StoreExistsError
from gigapatch.store import (
    CODECS,
    FORMAT_VERSION,
    PatchStore,
    StoreSpec,
    create_store,
    mark_done,
    write_shard,
)
from gigapatch.store.codecs import CodecName
from gigapatch.store.format import Lossless


def _make(path, n=10, shard_size=4, overwrite=False, codec="zstd"):
    coords = np.stack([np.arange(n) * 8, np.arange(n) * 4], axis=1)
    spec = StoreSpec(
        patch_shape=(6, 5, 3),
        dtype=np.uint8,
        coords=coords,
        slide=np.zeros(n, np.int32),
        label=np.full(n, 2, np.int32),
        sources=[
            {
                "path": "/x.svs",
                "name": "x.svs",
                "level": 0,
                "downsample": [1.0, 1.0],
                "shape": [100, 100],
                "mpp": 0.25,
                "label": 2,
            }
        ],
        plan={"kind": "grid", "level": 0, "size": [6, 5], "padding": "valid"},
        shard_size=shard_size,
        codec=codec,
    )
    return create_store(path, spec, overwrite=overwrite)


def _fill(group, n=10, shard_size=4):
    data = np.random.default_rng(0).integers(0, 255, (n, 6, 5, 3), dtype=np.uint8)
    for i in range(-(-n // shard_size)):
        write_shard(group["images"], i, data[i * shard_size : (i + 1) * shard_size])
        mark_done(group, [i])
    return data


def test_nodes_and_attrs_of_format_2(tmp_path):
    group = _make(tmp_path / "s.zarr")
    opened = zarr.open_group(tmp_path / "s.zarr", mode="r")
    assert opened.metadata.zarr_format == 3
    images = opened["images"]
    assert images.shape == (10, 6, 5, 3) and images.dtype == np.uint8
    assert images.chunks == (1, 6, 5, 3) and images.shards == (4, 6, 5, 3)
    assert opened["coords"].shape == (10, 2) and opened["coords"].dtype == np.int64
    assert opened["slide"].dtype == np.int32 and opened["label"].dtype == np.int32
    assert opened["done"].shape == (3,) and opened["done"].dtype == np.uint32
    assert not opened["done"][:].any()
    for name in ("images", "coords", "slide", "label", "done"):  # a checksum on every chunk
        codecs = opened[name].metadata.codecs
        inner = codecs[0].codecs if name == "images" else codecs
        assert type(inner[-1]).__name__ == "Crc32cCodec", name
    attrs = opened.attrs["gigapatch"]
    assert attrs["format"] == FORMAT_VERSION
    assert {"version", "created", "sources", "plan", "shard_size", "codec"} <= set(attrs)
    assert group["label"][:].tolist() == [2] * 10


def test_written_shards_read_back_and_verify(tmp_path):
    group = _make(tmp_path / "s.zarr")
    data = _fill(group)
    store = PatchStore(tmp_path / "s.zarr")
    assert len(store) == 10 and store.n_shards == 3 and store.shard_size == 4
    assert store.complete and store.verify() == []
    assert np.array_equal(store[:], data)
    assert np.array_equal(store[[1, 7]], data[[1, 7]])
    assert np.array_equal(store.shard(2), data[8:])
    assert store.coords[3].tolist() == [24, 12] and store.label.tolist() == [2] * 10
    assert store.sources[0]["name"] == "x.svs" and store.plan["kind"] == "grid"
    # one file per shard, not one per patch
    files = [f for f in (tmp_path / "s.zarr" / "images" / "c").rglob("*") if f.is_file()]
    assert len(files) == 3


def test_an_unfinished_store_is_not_complete(tmp_path):
    group = _make(tmp_path / "s.zarr")
    write_shard(group["images"], 0, np.zeros((4, 6, 5, 3), np.uint8))
    mark_done(group, [0])
    store = PatchStore(tmp_path / "s.zarr")
    assert not store.complete and store.shards_done == 1
    assert store.verify() == [
        "2 of 3 shards not done (first: [1, 2]); the extraction did not finish"
    ]


def test_verify_finds_patches_outside_their_source(tmp_path):
    group = _make(tmp_path / "s.zarr")
    _fill(group)
    group["coords"][9] = [97, 0]  # 97 + 6 > 100
    assert PatchStore(tmp_path / "s.zarr").verify() == [
        "1 patches of source 0 (x.svs) lie outside its 100x100 level"
    ]


def test_existing_output_needs_overwrite(tmp_path):
    _make(tmp_path / "s.zarr")
    with pytest.raises(StoreExistsError, match="already exists; pass overwrite=True"):
        _make(tmp_path / "s.zarr")
    _fill(_make(tmp_path / "s.zarr", overwrite=True))
    assert PatchStore(tmp_path / "s.zarr").complete


def test_overwrite_never_deletes_what_is_not_a_store(tmp_path):
    folder = tmp_path / "precious"
    folder.mkdir()
    (folder / "thesis.txt").write_text("keep me")
    with pytest.raises(StoreExistsError, match="is not a gigapatch store; refusing to overwrite"):
        _make(folder, overwrite=True)
    assert (folder / "thesis.txt").read_text() == "keep me"
    (tmp_path / "file.zarr").write_text("x")
    with pytest.raises(StoreExistsError, match="not a gigapatch store"):
        _make(tmp_path / "file.zarr", overwrite=True)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n": 0}, "the plan holds no patches"),
        ({"shard_size": 0}, "shard_size must be a positive integer; got 0"),
        ({"codec": "gzip"}, r"codec must be one of lz4, zstd, zstd-3, none, jpeg, .*; got 'gzip'"),
    ],
)
def test_create_checks_arguments(tmp_path, kwargs, match):
    with pytest.raises(InvalidArgumentError, match=match):
        _make(tmp_path / "s.zarr", **kwargs)
    assert not (tmp_path / "s.zarr").exists()


@pytest.mark.parametrize("codec", ["zstd", "zstd-3", "lz4", "none"])
def test_every_codec_round_trips(tmp_path, codec):
    data = _fill(_make(tmp_path / "s.zarr", codec=codec))
    assert np.array_equal(PatchStore(tmp_path / "s.zarr")[:], data)


def test_opening_something_else_is_a_clear_error(tmp_path):
    with pytest.raises(StoreError, match="does not exist"):
        PatchStore(tmp_path / "nope.zarr")
    (tmp_path / "plain.txt").write_text("x")
    with pytest.raises(StoreError, match="is not a Zarr group"):
        PatchStore(tmp_path / "plain.txt")
    zarr.open_group(tmp_path / "other.zarr", mode="w")
    with pytest.raises(StoreError, match="is not a gigapatch store"):
        PatchStore(tmp_path / "other.zarr")


def test_attrs_are_plain_json(tmp_path):
    _make(tmp_path / "s.zarr")
    meta = json.loads((tmp_path / "s.zarr" / "zarr.json").read_text())
    assert meta["attributes"]["gigapatch"]["plan"]["kind"] == "grid"


def test_the_codec_types_name_every_codec():
    assert tuple(CODECS) == typing.get_args(Lossless)
    assert typing.get_args(CodecName) == (*CODECS, "jpeg")


def test_per_patch_arrays_are_read_once_and_shared_read_only(tmp_path):
    _fill(_make(tmp_path / "s.zarr"))
    store = PatchStore(tmp_path / "s.zarr")
    coords = store.coords
    assert store.coords is coords and store.slide is store.slide and store.label is store.label
    assert store.tissue is None
    with pytest.raises(ValueError, match="read-only"):
        coords[0, 0] = 1
    selection = store.select(label=2)
    assert np.array_equal(selection.coords, coords) and selection.coords is not coords
    again = pickle.loads(pickle.dumps(store))  # as its path: the cached arrays stay behind
    assert len(pickle.dumps(store)) < 300 and np.array_equal(again.coords, coords)


@pytest.mark.parametrize(
    ("index", "direct"),
    [
        (3, True), (-1, True), (np.int64(9), True), (slice(2, 7), True), (slice(None), True),
        (slice(8, 2), True), ([1, 7, 1], True), (np.array([9, 0, -2]), True),
        (slice(1, 9, 3), True), ((slice(0, 2), 1), True), (Ellipsis, True),
        (np.array([[1, 2], [3, 4]]), True), (np.arange(10) % 3 == 0, True),
    ],
)
def test_indexing_equals_zarr_and_every_read_goes_through_the_checked_reader(
    tmp_path, monkeypatch, index, direct
):
    data = _fill(_make(tmp_path / "s.zarr"))
    store = PatchStore(tmp_path / "s.zarr")
    calls = []
    read = store.reader.read
    monkeypatch.setattr(store.reader, "read", lambda *a, **k: calls.append(a) or read(*a, **k))
    got = store[index]
    assert np.array_equal(got, data[index])
    if np.ndim(index) < 2 and not (isinstance(index, np.ndarray) and index.dtype == bool):
        assert np.array_equal(got, store.images[index])  # zarr's answer where zarr has one
    assert bool(calls) == direct
    with pytest.raises(IndexError):
        store[10]
