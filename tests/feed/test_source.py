"""PatchStore for training: select, tissue, pickling, and the direct shard-file reader."""

import pickle

import numpy as np
import pytest

from gigapatch.errors import InvalidArgumentError, StoreError
from gigapatch.feed import ShardReader
from gigapatch.feed.source import FeedSource
from gigapatch.store import PatchSelection, PatchStore, create_store, mark_done, write_shard


def make_store(path, n=75, shard_size=16, size=(6, 5), codec="lz4", seed=0, tissue=True):
    """A complete store of ``n`` random patches, 3 slides, labels 0..2, known tissue fractions.

    Patch ``i``'s first pixel holds ``i % 256`` in channel 0, so reads can be told apart.
    """
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, *size, 3), dtype=np.uint8)
    images[:, 0, 0, 0] = np.arange(n) % 256
    slide = np.arange(n) % 3
    label = (np.arange(n) // 7) % 3
    group = create_store(
        path, patch_shape=(*size, 3), dtype=np.uint8, coords=np.stack([np.arange(n)] * 2, 1),
        slide=slide, label=label, sources=[{"path": f"s{k}"} for k in range(3)], plan={},
        shard_size=shard_size, codec=codec,
        tissue=rng.uniform(0, 1, n).astype(np.float32) if tissue else None,
    )
    n_shards = -(-n // shard_size)
    for k in range(n_shards):
        write_shard(group["images"], k, images[k * shard_size : (k + 1) * shard_size])
    mark_done(group, range(n_shards))
    return PatchStore(path), images


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    return make_store(tmp_path_factory.mktemp("feedstore") / "s.zarr")


def test_tissue_and_select_filter_without_reading_pixels(made):
    store, images = made
    tissue = store.tissue
    assert tissue.dtype == np.float32 and tissue.shape == (len(store),)
    sel = store.select(slide=[0, 2], label=1, min_tissue=0.5)
    want = np.flatnonzero(np.isin(store.slide, [0, 2]) & (store.label == 1) & (tissue >= 0.5))
    assert isinstance(sel, PatchSelection) and np.array_equal(sel.indices, want)
    assert np.array_equal(sel.label, store.label[want]) and np.array_equal(sel.tissue, tissue[want])
    assert np.array_equal(sel.slide, store.slide[want])
    assert np.array_equal(sel.coords, store.coords[want])
    assert np.array_equal(sel[0], images[want[0]]) and np.array_equal(sel[1:3], images[want[1:3]])
    assert np.array_equal(sel.select(slide=0).indices, want[store.slide[want] == 0])
    assert len(store.select()) == len(store)


def test_select_errors(made, tmp_path):
    store, _ = made
    with pytest.raises(InvalidArgumentError, match=r"min_tissue must be a number in \[0, 1\]"):
        store.select(min_tissue=1.5)
    with pytest.raises(InvalidArgumentError, match="slide must be an integer or a sequence"):
        store.select(slide="a")
    bare, _ = make_store(tmp_path / "bare.zarr", n=5, tissue=False)
    assert bare.tissue is None
    with pytest.raises(InvalidArgumentError, match="min_tissue needs tissue fractions"):
        bare.select(min_tissue=0.1)


def test_store_selection_and_source_pickle_as_paths(made):
    store, _ = made
    again = pickle.loads(pickle.dumps(store))
    assert again.path == store.path and len(again) == len(store)
    assert len(pickle.dumps(store)) < 500
    sel = pickle.loads(pickle.dumps(store.select(label=2)))
    assert np.array_equal(sel.indices, store.select(label=2).indices)
    source = FeedSource(store.select(label=0))
    state = source.__getstate__()
    assert set(state) == {"path", "indices"}
    copy = pickle.loads(pickle.dumps(source))
    assert np.array_equal(copy.indices, source.indices) and copy.store.path == store.path


@pytest.mark.parametrize("codec", ["lz4", "zstd", "none"])
def test_shard_reader_equals_zarr_in_any_order(tmp_path, codec):
    store, images = make_store(tmp_path / "c.zarr", n=40, shard_size=16, codec=codec)
    reader = ShardReader(store.images)
    assert reader.direct
    order = np.random.default_rng(3).permutation(40)
    assert np.array_equal(reader.read(order), images[order])
    assert np.array_equal(reader.read(np.array([5, 5, 39])), images[[5, 5, 39]])
    assert reader.read(np.zeros(0, np.int64)).shape == (0, 6, 5, 3)


def test_shard_reader_falls_back_to_zarr_and_finds_damage(made, tmp_path, monkeypatch):
    store, images = made
    reader = ShardReader(store.images)
    monkeypatch.setattr(reader, "_decode", None)
    assert not reader.direct
    order = np.random.default_rng(4).permutation(len(store))
    assert np.array_equal(reader.read(order), images[order])
    damaged, _ = make_store(tmp_path / "d.zarr", n=20, shard_size=16)
    shard = next(p for p in (tmp_path / "d.zarr" / "images").rglob("*") if p.is_file()
                 and p.name == "0" and p.parent.name == "0" and p.stat().st_size > 100)
    raw = bytearray(shard.read_bytes())
    raw[-10] ^= 0xFF
    shard.write_bytes(bytes(raw))
    with pytest.raises(StoreError, match="has a damaged index"):
        ShardReader(damaged.images).read(np.array([0]))


def test_feed_source_refuses_incomplete_stores_and_other_objects(tmp_path):
    create_store(
        tmp_path / "x.zarr", patch_shape=(2, 2, 1), dtype=np.uint8, coords=np.zeros((3, 2)),
        slide=np.zeros(3), label=np.zeros(3), sources=[], plan={}, shard_size=2,
    )
    with pytest.raises(StoreError, match=r"is incomplete \(0/2 shards done\)"):
        FeedSource(tmp_path / "x.zarr")
    with pytest.raises(InvalidArgumentError, match="source must be a PatchStore, a Patch"):
        FeedSource(3)
