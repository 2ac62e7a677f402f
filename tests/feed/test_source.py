"""PatchStore for training: select, tissue, pickling; FeedSource."""

import pickle

import numpy as np
import pytest

from gigapatch.errors import InvalidArgumentError, StoreError
from gigapatch.feed.source import FeedSource
from gigapatch.store import PatchSelection
from tests.store.sample import make_store, make_unfinished_store


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
    with pytest.raises(InvalidArgumentError, match=r"slide 'a' names no source of the store; "
                                                    r"sources: 0 's0', 1 's1', 2 's2'"):
        store.select(slide="a")
    with pytest.raises(InvalidArgumentError, match="slide 3 names no source"):
        store.select(slide=3)  # never an empty selection
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
    source = FeedSource(store.select(label=0), decode_threads=3)
    state = source.__getstate__()
    assert set(state) == {"path", "indices", "decode_threads"}
    copy = pickle.loads(pickle.dumps(source))
    assert np.array_equal(copy.indices, source.indices) and copy.store.path == store.path
    assert copy.decode_threads == 3


def test_feed_source_refuses_incomplete_stores_and_other_objects(tmp_path):
    make_unfinished_store(tmp_path / "x.zarr")
    with pytest.raises(StoreError, match=r"is incomplete \(0/2 shards done\)"):
        FeedSource(tmp_path / "x.zarr")
    with pytest.raises(InvalidArgumentError, match="source must be a PatchStore, a Patch"):
        FeedSource(3)
