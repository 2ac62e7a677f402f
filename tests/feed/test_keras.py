"""Keras 3 PyDataset: (x, y) batches, xception preset, one-hot or integer labels, epochs."""

import os
import pickle

import numpy as np
import pytest
import zarr

from gigapatch.errors import InvalidArgumentError
from gigapatch.feed import Preprocess
from tests.store.sample import make_class_store, make_store

os.environ.setdefault("KERAS_BACKEND", "torch")  # keras 3 here has no tensorflow to default to
pytest.importorskip("torch")
keras = pytest.importorskip("keras")
from gigapatch.feed.keras import PatchSequence  # noqa: E402


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    return make_store(tmp_path_factory.mktemp("feedkeras") / "s.zarr", n=75, shard_size=16)


def test_batches_cover_the_epoch_with_xception_inputs_and_one_hot_labels(made):
    store, images = made
    seq = PatchSequence(store, 8, seed=1)
    assert isinstance(seq, keras.utils.PyDataset) and len(seq) == 10
    seen = []
    for i in range(len(seq)):
        x, y = seq[i]
        index = seq.batch_indices(i)
        assert x.dtype == np.float32 and x.shape == (len(index), 6, 5, 3)
        assert np.array_equal(x, images[index].astype(np.float32) / np.float32(127.5) - 1)
        assert y.dtype == np.float32 and y.shape == (len(index), 3)
        assert np.array_equal(y.argmax(1), store.label[index]) and (y.sum(1) == 1).all()
        seen.extend(index.tolist())
    assert sorted(seen) == list(range(len(store))) and seen != sorted(seen)
    with pytest.raises(IndexError, match=r"batch index must be in \[0, 9\]; got 10"):
        seq[10]


def test_epochs_seeds_int_labels_and_selection(made):
    store, images = made
    a, b = PatchSequence(store, 8, seed=1), PatchSequence(store, 8, seed=1)
    assert np.array_equal(a.batch_indices(0), b.batch_indices(0))
    first = np.concatenate([a.batch_indices(i) for i in range(len(a))])
    a.on_epoch_end()
    second = np.concatenate([a.batch_indices(i) for i in range(len(a))])
    assert sorted(first) == sorted(second) and not np.array_equal(first, second)
    sel = store.select(slide=2)
    seq = PatchSequence(sel, 4, labels="int", preprocess=None, drop_last=True, shuffle=False)
    assert len(seq) == len(sel) // 4
    x, y = seq[0]
    assert x.dtype == np.uint8 and np.array_equal(x, images[sel.indices[:4]])
    assert y.dtype == np.int32 and np.array_equal(y, store.label[sel.indices[:4]])
    copy = pickle.loads(pickle.dumps(seq))
    assert np.array_equal(copy[1][0], seq[1][0])


def test_augmented_batches_and_errors(made, tmp_path):
    store, _ = made
    seq = PatchSequence(store, 8, preprocess=Preprocess(normalize="xception", dihedral=True))
    x, _ = seq[0]
    assert x.shape == (8, 6, 5, 3) and x.min() >= -1 and x.max() <= 1
    with pytest.raises(InvalidArgumentError, match="labels must be one of onehot, int; got 'x'"):
        PatchSequence(store, labels="x")
    with pytest.raises(InvalidArgumentError, match=r"labels of the patches must be in \[0, 1\]"):
        PatchSequence(store, num_classes=2)
    unlabeled, _ = make_store(tmp_path / "u.zarr", n=10, tissue=False)
    zarr.open_group(tmp_path / "u.zarr", mode="r+")["label"][:] = -1
    with pytest.raises(InvalidArgumentError, match="-1: the store has no labels"):
        PatchSequence(unlabeled)


@pytest.mark.parametrize("multiprocessing", [False, True])
def test_fit_with_two_workers(made, multiprocessing):
    store, _ = made
    data = PatchSequence(store, 16, workers=2, use_multiprocessing=multiprocessing)
    model = keras.Sequential([keras.Input(store.patch_shape), keras.layers.Flatten(),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    history = model.fit(data, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2 and np.isfinite(history.history["loss"]).all()
    assert data.epoch >= 2  # keras calls on_epoch_end after every epoch (and once more)


def test_sequence_names_its_classes(made, tmp_path):
    classed, _ = make_class_store(tmp_path)
    seq = PatchSequence(classed.select(slide=["a.tif", "c.tif"]), 4)
    assert seq.classes == ["benign", "tumor"] and seq.class_to_idx == {"benign": 0, "tumor": 1}
    assert PatchSequence(made[0], 4).classes == []
