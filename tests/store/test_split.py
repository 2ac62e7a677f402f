"""Class names, slides and classes by name, patient-level splits (store.keys, store.split)."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gigapatch.errors import InvalidArgumentError
from gigapatch.store import PatchSelection, PatchStore, StoreSpec, create_store
from gigapatch.store.split import deal, split_positions
from tests.store.sample import make_class_store


def named_store(path, sizes=(5, 3, 4, 2), labels=(0, 1, 0, 1), classes=("neg", "pos"),
                overwrite=False):
    """A store (pixels never written) of slides of ``sizes`` patches, slide k labelled
    ``labels[k]``, named ``s{k}.svs`` and found at ``/data/<class>/s{k}.svs``."""
    slide = np.repeat(np.arange(len(sizes)), sizes)
    label = np.asarray(labels)[slide]
    folders = [classes[v] if classes else "x" for v in labels]
    sources = [{"path": f"/data/{folders[k]}/s{k}.svs", "name": f"s{k}.svs", "label": labels[k]}
               for k in range(len(sizes))]
    create_store(path, StoreSpec(
        patch_shape=(2, 2, 1), dtype=np.uint8, coords=np.zeros((len(slide), 2)), slide=slide,
        label=label, sources=sources, plan={"kind": "grid", "classes": list(classes)},
        shard_size=4,
    ), overwrite=overwrite)
    return PatchStore(path)


@pytest.fixture
def store(tmp_path):
    return named_store(tmp_path / "s.zarr")


def test_class_names(store, tmp_path):
    assert store.class_names == ("neg", "pos")
    assert store.select(slide=0).class_names == ("neg", "pos")
    bare = named_store(tmp_path / "bare.zarr", classes=())
    assert bare.class_names == ()


def test_select_slides_by_index_name_or_path(store):
    by_index = store.select(slide=[1, 3]).indices
    assert np.array_equal(store.select(slide=["s1.svs", "s3.svs"]).indices, by_index)
    assert np.array_equal(store.select(slide=["/data/pos/s1.svs", 3]).indices, by_index)
    assert np.array_equal(store.select(slide="s2.svs").indices, np.arange(8, 12))
    sel = store.select(label="neg")
    assert np.array_equal(sel.select(slide="s0.svs").indices, np.arange(5))
    assert len(sel.select(slide="s1.svs")) == 0  # known slide, none of its patches selected


def test_select_labels_by_class_name(store):
    assert np.array_equal(store.select(label="pos").indices, store.select(label=1).indices)
    assert np.array_equal(store.select(label=["neg", 1]).indices, np.arange(len(store)))


@pytest.mark.parametrize(
    ("filters", "match"),
    [
        ({"slide": 4}, r"slide 4 names no source of the store; sources: 0 's0.svs', 1 's1.svs'"),
        ({"slide": -1}, "slide -1 names no source"),
        ({"slide": "nope.svs"}, r"slide 'nope.svs' names no source.*3 's3.svs'"),
        ({"slide": [0, "b"]}, r"slide 'b' names no source"),
        ({"slide": 1.5}, "slide must be an integer, a name or a sequence of them; got 1.5"),
        ({"slide": True}, "slide must be an integer, a name"),
        ({"label": "tumour"}, r"label 'tumour' is not a label or class name of the store; "
                              r"labels: 0 'neg', 1 'pos'"),
        ({"label": 2}, r"label 2 is not a label or class name.*labels: 0 'neg', 1 'pos'"),
        ({"label": [0, None]}, "label must be an integer, a name"),
    ],
)
def test_unknown_slides_and_labels_are_errors_listing_the_known_ones(store, filters, match):
    with pytest.raises(InvalidArgumentError, match=match):
        store.select(**filters)
    with pytest.raises(InvalidArgumentError, match=match):
        store.select(min_tissue=None).select(**filters)


def test_labels_without_class_names_list_the_labels_present(tmp_path):
    bare = named_store(tmp_path / "bare.zarr", sizes=(2, 2, 2), labels=(0, 3, 3), classes=())
    assert len(bare.select(label=3)) == 4
    with pytest.raises(InvalidArgumentError, match=r"label 1 is not .*labels: 0, 3$"):
        bare.select(label=1)
    with pytest.raises(InvalidArgumentError, match=r"label 'neg' is not"):
        bare.select(label="neg")


def test_long_listings_are_cut(tmp_path):
    many = named_store(tmp_path / "m.zarr", sizes=[1] * 30, labels=[0] * 30, classes=("a",))
    with pytest.raises(InvalidArgumentError, match=r"19 's19.svs', \.\.\. \(30 in all\)"):
        many.select(slide="s30.svs")


def test_split_parts_share_no_slide_and_cover_everything(store):
    train, val = store.split((0.5, 0.5), seed=0)
    assert isinstance(train, PatchSelection) and isinstance(val, PatchSelection)
    assert not set(train.slide.tolist()) & set(val.slide.tolist())
    assert np.array_equal(np.sort(np.concatenate([train.indices, val.indices])),
                          np.arange(len(store)))
    # each label's slides split 1:1: neg (5, 4) and pos (3, 2) give one slide of each per part
    for part in (train, val):
        assert sorted(set(part.label.tolist())) == [0, 1]
    again = store.split((0.5, 0.5), seed=0)
    pairs = zip(again, (train, val), strict=True)
    assert all(np.array_equal(a.indices, b.indices) for a, b in pairs)


def test_split_of_a_selection_stays_inside_it(store):
    sel = store.select(slide=[0, 1, 2])
    parts = sel.split((0.6, 0.4), stratify=None, seed=3)
    assert np.array_equal(np.sort(np.concatenate([p.indices for p in parts])), sel.indices)
    assert sum(len(p) for p in parts) == len(sel) and all(len(p) for p in parts)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"fractions": (0.8, 0.3)}, r"fractions must be two or more positive numbers summing "
                                    r"to 1; got \(0.8, 0.3\)"),
        ({"fractions": (1.0,)}, "two or more positive numbers"),
        ({"fractions": (1.2, -0.2)}, "two or more positive numbers"),
        ({"fractions": (0.5, 0.0, 0.5)}, "two or more positive numbers"),
        ({"fractions": "ab"}, "fractions must be a sequence of numbers"),
        ({"fractions": 0.5}, "fractions must be a sequence of numbers"),
        ({"by": "patch"}, "by must be 'slide'; got 'patch'"),
        ({"stratify": "slide"}, "stratify must be 'label' or None; got 'slide'"),
        ({"seed": -1}, "seed must be a non-negative integer"),
        ({"fractions": (0.2,) * 5}, "a split into 5 parts needs at least 5 slides; the "
                                     "patches come from 4"),
    ],
)
def test_split_errors(store, kwargs, match):
    with pytest.raises(InvalidArgumentError, match=match):
        store.split(**kwargs)


def test_deal_balances_two_parts_to_one_item():
    part = deal(np.array([10, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]), (0.5, 0.5),
                np.random.default_rng(0))
    sizes = np.array([10] + [1] * 10)
    assert sorted([sizes[part == 0].sum(), sizes[part == 1].sum()]) == [10, 10]


@settings(max_examples=200, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 40), min_size=3, max_size=25),
    data=st.data(),
    seed=st.integers(0, 2**32),
)
def test_split_is_patient_level_and_keeps_label_proportions(sizes, data, seed):
    labels = data.draw(st.lists(st.integers(0, 2), min_size=len(sizes), max_size=len(sizes)))
    k = data.draw(st.integers(2, min(4, len(sizes))))
    raw = data.draw(st.lists(st.integers(1, 10), min_size=k, max_size=k))
    fractions = [r / sum(raw) for r in raw]
    stratify = data.draw(st.sampled_from(["label", None]))
    slide = np.repeat(np.arange(len(sizes)), sizes)
    label = np.asarray(labels)[slide]
    parts = split_positions(slide, label, fractions, stratify=stratify, seed=seed)
    assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(len(slide)))
    slide_sets = [set(slide[p].tolist()) for p in parts]
    for i in range(k):
        for j in range(i + 1, k):
            assert not slide_sets[i] & slide_sets[j]
    # per label (stratified) or over all (not), each part is within one slide of its target
    strata = sorted(set(labels)) if stratify == "label" else [None]
    for stratum in strata:
        mine = np.ones(len(slide), bool) if stratum is None else label == stratum
        biggest = max(s for s, v in zip(sizes, labels, strict=True)
                      if stratum is None or v == stratum)
        for f, p in zip(fractions, parts, strict=True):
            assert abs(mine[p].sum() - f * mine.sum()) <= biggest + 1e-9
    again = split_positions(slide, label, fractions, stratify=stratify, seed=seed)
    assert all(np.array_equal(a, b) for a, b in zip(again, parts, strict=True))


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 1000))
def test_store_split_equals_split_positions(tmp_path, seed):
    store = named_store(tmp_path / "h.zarr", overwrite=True)
    parts = store.split((0.7, 0.3), seed=seed)
    want = split_positions(store.slide, store.label, (0.7, 0.3), seed=seed)
    assert all(np.array_equal(p.indices, w) for p, w in zip(parts, want, strict=True))


def test_an_extracted_store_knows_its_class_folders(tmp_path):
    store, slides = make_class_store(tmp_path)
    assert store.class_names == ("benign", "tumor")
    assert np.array_equal(store.select(label="tumor").indices, np.flatnonzero(store.label == 1))
    by_name = store.select(slide="b.tif").indices
    assert len(by_name) == 20 and (store.slide[by_name] == 1).all()
    assert np.array_equal(store.select(slide=slides / "benign" / "b.tif").indices, by_name)
    assert np.array_equal(store.select(slide=str(slides / "benign" / "b.tif")).indices, by_name)
    with pytest.raises(InvalidArgumentError, match=r"sources: 0 'a.tif', 1 'b.tif', 2 'c.tif'"):
        store.select(slide="d.tif")
    # one tumour slide: stratified, it goes whole to one part; benign's two slides go one each
    train, val = store.split((0.5, 0.5), seed=1)
    assert not set(train.slide.tolist()) & set(val.slide.tolist())
    assert sorted([len(train), len(val)]) == [20, 40]
