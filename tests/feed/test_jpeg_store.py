"""Every loader reads a JPEG store: the same pixels as PatchStore, decoded on a thread pool."""

from __future__ import annotations

import os

import numpy as np
import pytest

import gigapatch
from gigapatch.errors import InvalidArgumentError, StoreCorruptError
from gigapatch.feed import iter_batches
from gigapatch.feed.source import FeedSource
from gigapatch.store import PatchStore

os.environ.setdefault("KERAS_BACKEND", "torch")


@pytest.fixture(scope="module")
def jpeg(tmp_path_factory, square_path):
    """A JPEG store of ~100 tissue patches in shards of 16, and its patches as PatchStore
    reads them on one thread."""
    plan = gigapatch.grid(square_path, 96, min_tissue=0.3)
    out = tmp_path_factory.mktemp("jpegfeed") / "j.zarr"
    store = gigapatch.extract_to_zarr(square_path, plan, out, codec="jpeg:85", shard_size=16,
                                      labels=[1], workers=1)
    assert store.layout.jpeg == 85 and len(store) > 40
    return store, store.reader.read(np.arange(len(store)), threads=1)


@pytest.mark.parametrize("threads", [1, 3])
def test_a_threaded_read_equals_a_serial_one_in_any_order(jpeg, threads):
    store, patches = jpeg
    order = np.random.default_rng(2).permutation(len(store))
    assert np.array_equal(store.reader.read(order, threads=threads), patches[order])
    out = np.zeros((9, *store.patch_shape), np.uint8)
    store.reader.read(order[:9], out, threads=threads)
    assert np.array_equal(out, patches[order[:9]])


@pytest.mark.parametrize("decode_threads", [None, 1, 4])
def test_iter_batches_reads_a_jpeg_store(jpeg, decode_threads):
    store, patches = jpeg
    seen = []
    for images, labels, index in iter_batches(store, 10, shuffle=True, seed=3,
                                              decode_threads=decode_threads):
        assert np.array_equal(images, patches[index]) and (labels == 1).all()
        seen += index.tolist()
    assert sorted(seen) == list(range(len(store)))


def test_a_damaged_chunk_in_a_threaded_read_is_an_error(jpeg, tmp_path):
    import shutil

    store, _ = jpeg
    out = tmp_path / "d.zarr"
    shutil.copytree(store.path, out)
    damaged = PatchStore(out)
    path = damaged.layout.path(1)
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 3] ^= 0x20
    path.write_bytes(bytes(raw))
    with pytest.raises(StoreCorruptError, match=r"shard 1 \(patches 16-31.*fails its checksum"):
        damaged.reader.read(np.arange(48), threads=4)
    with pytest.raises(StoreCorruptError):
        list(iter_batches(damaged, 8, decode_threads=2))


def test_decode_threads_must_be_a_positive_integer(jpeg):
    store, _ = jpeg
    with pytest.raises(InvalidArgumentError, match="decode_threads must be at least 1; got 0"):
        FeedSource(store, decode_threads=0)
    with pytest.raises(InvalidArgumentError, match="decode_threads"):
        next(iter_batches(store, 8, decode_threads=-1))


@pytest.mark.parametrize("num_workers", [0, 2])
def test_torch_loaders_read_a_jpeg_store(jpeg, num_workers):
    pytest.importorskip("torch")
    from torch.utils.data import DataLoader

    from gigapatch.feed.torch import PatchDataset, ShardIterableDataset, ShardSampler

    store, patches = jpeg
    store.reader.read(np.arange(32), threads=2)  # the parent's pool exists before the fork
    data = ShardIterableDataset(store, 12, seed=1, with_index=True)
    seen = []
    for x, _, _, index in DataLoader(data, batch_size=None, num_workers=num_workers, timeout=120
                                     if num_workers else 0):
        assert np.array_equal(x.numpy(), patches[index.numpy()])
        seen += index.tolist()
    assert sorted(seen) == list(range(len(store)))
    mapped = PatchDataset(store, with_index=True, decode_threads=2)
    loader = DataLoader(mapped, batch_size=12, sampler=ShardSampler(mapped, seed=2),
                        num_workers=num_workers, timeout=120 if num_workers else 0)
    seen = []
    for x, _, _, index in loader:
        assert np.array_equal(x.numpy(), patches[index.numpy()])
        seen += index.tolist()
    assert sorted(seen) == list(range(len(store)))


def test_the_keras_sequence_reads_a_jpeg_store(jpeg):
    pytest.importorskip("torch")
    pytest.importorskip("keras")
    from gigapatch.feed.keras import PatchSequence

    store, patches = jpeg
    seq = PatchSequence(store, 16, labels="int", num_classes=2, preprocess=None, workers=2)
    for i in range(len(seq)):
        x, y = seq[i]
        assert np.array_equal(x, patches[seq.batch_indices(i)]) and (y == 1).all()


def test_preview_shows_a_jpeg_store(jpeg, tmp_path):
    from gigapatch.preview import sheet

    store, patches = jpeg
    image = sheet(store, n=6, seed=0, tile=96)  # patches of 96²: drawn unscaled
    top, left = image.info["cells"][0]
    first = image.info["patches"][0]
    cell = np.asarray(image)[top : top + 96, left : left + 96]
    assert np.array_equal(cell, patches[first])
