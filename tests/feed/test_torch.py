"""PyTorch loaders: every patch once per epoch (0 and 2 workers, 2 ranks), seeded orders."""

import numpy as np
import pytest

from gigapatch.errors import InvalidArgumentError
from gigapatch.feed import Preprocess
from gigapatch.kernels import augment, draw_params
from tests.store.sample import make_class_store, make_store

torch = pytest.importorskip("torch")
from torch.utils.data import DataLoader  # noqa: E402

from gigapatch.feed.source import batch_seed  # noqa: E402
from gigapatch.feed.torch import PatchDataset, ShardIterableDataset, ShardSampler  # noqa: E402


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    return make_store(tmp_path_factory.mktemp("feedtorch") / "s.zarr", n=75, shard_size=16)


def check_batch(store, images, x, y, s, index):
    index = np.asarray(index)
    assert np.array_equal(np.asarray(x), images[index])
    assert np.array_equal(np.asarray(y), store.label[index])
    assert np.array_equal(np.asarray(s), store.slide[index])


@pytest.mark.parametrize("num_workers", [0, 2])
@pytest.mark.parametrize("world_size", [1, 2])
def test_iterable_epoch_sees_every_patch_once(made, num_workers, world_size):
    store, images = made
    seen, per_rank = [], []
    for rank in range(world_size):
        data = ShardIterableDataset(store, 8, seed=5, rank=rank, world_size=world_size,
                                    with_index=True)
        loader = DataLoader(data, batch_size=None, num_workers=num_workers)
        count = 0
        for x, y, s, index in loader:
            assert x.dtype == torch.uint8 and x.shape[1:] == (6, 5, 3) and len(x) <= 8
            check_batch(store, images, x, y, s, index)
            seen.extend(index.tolist())
            count += len(index)
        per_rank.append(count)
    assert sorted(seen) == list(range(len(store)))
    assert seen != sorted(seen)
    assert max(per_rank) - min(per_rank) <= 1


def test_iterable_same_seed_same_order_and_epochs_differ(made):
    store, _ = made

    def order(seed, epoch=0):
        data = ShardIterableDataset(store, 10, seed=seed, with_index=True)
        data.set_epoch(epoch)
        return np.concatenate([b[3].numpy() for b in data])

    assert np.array_equal(order(1), order(1))
    assert not np.array_equal(order(1), order(2))
    assert not np.array_equal(order(1), order(1, epoch=1))
    unshuffled = ShardIterableDataset(store, 10, shuffle=False, with_index=True)
    assert np.concatenate([b[3].numpy() for b in unshuffled]).tolist() == list(range(len(store)))


@pytest.mark.parametrize("num_workers", [0, 2])
def test_iterable_drop_last_selection_and_preprocess(made, num_workers):
    store, images = made
    sel = store.select(label=[0, 2])
    prep = Preprocess(normalize="xception", layout="chw", dihedral=True, brightness=10)
    data = ShardIterableDataset(sel, 4, seed=2, drop_last=True, preprocess=prep, with_index=True)
    seen = []
    for x, y, _, index in DataLoader(data, batch_size=None, num_workers=num_workers):
        assert x.dtype == torch.float32 and x.shape == (4, 3, 6, 5)
        params = draw_params(4, batch_seed(2, 0, index[0]), dihedral=True, brightness=10)
        flips = params.dihedral & ~np.int32(1)  # 6x5 patches: no quarter turns
        want = augment(images[index.numpy()], dihedral=flips, jitter=params.jitter,
                       normalize="xception", layout="chw")
        assert np.array_equal(x.numpy(), want)
        assert np.array_equal(y.numpy(), store.label[index.numpy()])
        seen.extend(index.tolist())
    assert len(seen) % 4 == 0 and len(set(seen)) == len(seen)
    assert set(seen) <= set(sel.indices.tolist()) and len(sel) - len(seen) < 4 * num_workers + 4


@pytest.mark.parametrize("num_workers", [0, 2])
def test_map_style_items_and_shard_sampler(made, num_workers):
    store, images = made
    data = PatchDataset(store, with_index=True)
    x, y, s, i = data[17]
    assert np.array_equal(x.numpy(), images[17]) and (y, s, i) == (
        store.label[17], store.slide[17], 17)
    seen, per_rank = [], []
    for rank in range(2):
        sampler = ShardSampler(data, seed=3, rank=rank, world_size=2)
        loader = DataLoader(data, batch_size=8, sampler=sampler, num_workers=num_workers)
        count = 0
        for x, y, s, index in loader:
            check_batch(store, images, x, y, s, index)
            seen.extend(index.tolist())
            count += len(index)
        assert count == len(sampler)
        per_rank.append(count)
    assert sorted(seen) == list(range(len(store))) and seen != sorted(seen)
    assert max(per_rank) - min(per_rank) <= 1


def test_map_style_random_sampler_selection_and_seeded_order(made):
    store, images = made
    sel = store.select(slide=1)
    data = PatchDataset(sel, preprocess=Preprocess(normalize="unit"), with_index=True)
    loader = DataLoader(data, batch_size=5, shuffle=True)
    seen = []
    for x, _, s, index in loader:
        assert x.dtype == torch.float32
        assert np.array_equal(x.numpy(), images[index.numpy()].astype(np.float32) / 255)
        assert (s == 1).all()
        seen.extend(index.tolist())
    assert sorted(seen) == sel.indices.tolist()
    sampler = ShardSampler(data, seed=4)
    first = list(sampler)
    assert first == list(ShardSampler(data, seed=4))
    sampler.set_epoch(1)
    assert sorted(first) == sorted(sampler) and first != list(sampler)


def test_argument_errors(made):
    store, _ = made
    with pytest.raises(InvalidArgumentError, match="batch_size must be at least 1; got 0"):
        ShardIterableDataset(store, 0)
    with pytest.raises(InvalidArgumentError, match="seed must be a non-negative integer"):
        ShardIterableDataset(store, 4, seed=-1)
    with pytest.raises(InvalidArgumentError, match="brightness/contrast jitter needs normalize"):
        Preprocess(brightness=3)
    with pytest.raises(InvalidArgumentError, match="device must be one of auto, cpu, gpu"):
        Preprocess(device="tpu")
    with pytest.raises(InvalidArgumentError, match="rotation must be a finite number >= 0"):
        Preprocess(rotation=-1)


def test_datasets_name_their_classes_as_image_folder(made, tmp_path):
    classed, _ = make_class_store(tmp_path)
    for data in (PatchDataset(classed), ShardIterableDataset(classed.select(label="tumor"))):
        assert data.classes == ["benign", "tumor"]
        assert data.class_to_idx == {"benign": 0, "tumor": 1}
    train, _ = classed.split((0.5, 0.5), seed=0)
    assert PatchDataset(train).classes == ["benign", "tumor"]
    store, _ = made  # labels without names
    assert PatchDataset(store).classes == [] and ShardIterableDataset(store).class_to_idx == {}
