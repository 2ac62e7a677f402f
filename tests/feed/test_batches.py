import numpy as np
import pytest

import gigapatch
from gigapatch.errors import InvalidArgumentError, StoreError
from gigapatch.feed import iter_batches
from gigapatch.store import PatchSelection
from tests.store.sample import make_unfinished_store


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    image = np.random.default_rng(0).integers(0, 255, (90, 100, 3), dtype=np.uint8)
    slides = [image, image[::-1].copy()]
    plan = gigapatch.grid(slides, 10)
    path = tmp_path_factory.mktemp("feed") / "p.zarr"
    return gigapatch.extract_to_zarr(slides, plan, path, labels=[3, 4], shard_size=16)


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("batch_size", [1, 7, 16, 64, 500])
def test_an_epoch_sees_every_patch_once(store, shuffle, batch_size):
    seen = []
    for images, labels, index in iter_batches(store, batch_size, shuffle=shuffle, seed=1):
        assert len(images) <= batch_size and len(images) == len(labels) == len(index)
        assert np.array_equal(images, store[np.sort(index)][np.argsort(np.argsort(index))])
        assert np.array_equal(labels, store.label[index])
        seen.extend(index.tolist())
    assert sorted(seen) == list(range(len(store)))
    assert (seen == sorted(seen)) != shuffle


def test_same_seed_same_order_other_seed_other_order(store):
    def order(seed):
        return np.concatenate([i for _, _, i in iter_batches(store, 32, shuffle=True, seed=seed)])

    assert np.array_equal(order(5), order(5)) and not np.array_equal(order(5), order(6))


def test_drop_last(store):
    sizes = [len(i) for _, _, i in iter_batches(store.path, 64, drop_last=True)]
    assert sizes == [64] * (len(store) // 64)


def test_incomplete_store_and_bad_batch_size(store, tmp_path):
    with pytest.raises(InvalidArgumentError, match="batch_size must be a positive integer; got 0"):
        next(iter_batches(store, 0))
    with pytest.raises(StoreError, match=r"is incomplete \(0/2 shards done\)"):
        next(iter_batches(make_unfinished_store(tmp_path / "x.zarr")))


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("batch_size", [1, 5, 64])
def test_a_selection_is_read_alone(store, shuffle, batch_size):
    # slide 1's patches and a scattered handful of slide 0's: some shards hold none of them
    picked = np.union1d(store.select(slide=1).indices, [3, 4, 40])
    sel = PatchSelection(store, picked)
    seen = []
    for images, labels, index in iter_batches(sel, batch_size, shuffle=shuffle, seed=2):
        assert np.array_equal(images, store[index.tolist()])
        assert np.array_equal(labels, store.label[index])
        seen.extend(index.tolist())
    assert sorted(seen) == picked.tolist() and len(seen) == len(picked)
    assert list(iter_batches(PatchSelection(store, []))) == []
