"""Stores in words: ``gigapatch.store.summary`` (what ``info`` and ``extract --resume`` print)."""

import numpy as np
import pytest
import zarr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gigapatch.errors import StoreError
from gigapatch.store import (
    PatchStore,
    StoreSpec,
    create_store,
    describe_plan,
    is_store,
    mark_done,
    patches_done,
    recorded_seed,
    summarize,
    write_shard,
)
from gigapatch.store.summary import human_bytes

SOURCES = [
    {"path": "/data/a.svs", "name": "a.svs", "level": 1, "downsample": [4.0, 4.0],
     "shape": [4000, 4000], "label": 0},
    {"name": "array", "level": 0, "downsample": [1.0, 1.0], "shape": [500, 500], "label": 1},
]


def make_store(path, n=5, shard_size=2, plan=None, overwrite=False):
    group = create_store(path, StoreSpec(
        patch_shape=(4, 3, 1),
        dtype=np.uint8,
        coords=np.zeros((n, 2), np.int64),
        slide=np.arange(n) % 2,
        label=np.arange(n) % 2,
        sources=SOURCES,
        plan=plan if plan is not None else {"kind": "grid", "size": [4, 3], "level": 0,
                                            "stride": [4, 3]},
        shard_size=shard_size,
        codec="zstd",
    ), overwrite=overwrite)
    return group


@pytest.mark.parametrize(
    ("n", "text"),
    [(0, "0 B"), (999, "999 B"), (1000, "1.0 KB"), (1536, "1.5 KB"), (999_949, "999.9 KB"),
     (2_500_000, "2.5 MB"), (7_000_000_000, "7.0 GB"), (5e12, "5000.0 GB")],
)
def test_human_bytes(n, text):
    assert human_bytes(n) == text


@pytest.mark.parametrize(
    ("plan", "text"),
    [
        ({"kind": "random", "size": [64, 64], "level": 0, "seed": 3},
         "random of 64x64, at level 0, seed 3"),
        ({"kind": "grid", "size": [299, 299], "stride": [299, 299], "mpp": 0.5, "level": 0,
          "min_tissue": 0.5}, "grid of 299x299, at 0.5 um/px, stride 299x299, min tissue 0.5"),
        ({"kind": "grid", "size": [50, 50], "stride": [60, 60], "level": 1, "padding": "same",
          "dilation": [2, 2]},
         "grid of 50x50, at level 1, stride 60x60, padding same, dilation 2x2"),
        ({"kind": "weighted", "size": [32, 32], "seed": 0, "weights": "tissue",
          "classes": ["neg", "pos"]},
         "weighted of 32x32, seed 0, weights tissue, classes neg, pos"),
        ({"kind": "grid", "size": [8, 8], "stride": [8, 8], "level": 0, "padding": "valid",
          "dilation": [1, 1], "min_tissue": 0.0}, "grid of 8x8, at level 0, stride 8x8"),
        ({}, "None of , seed None"),
    ],
)
def test_describe_plan(plan, text):
    assert describe_plan(plan) == text


def test_describe_plan_says_the_magnification_a_plan_was_asked_at(square_path):
    import gigapatch

    slide = gigapatch.open(square_path)
    plan = gigapatch.random(slide, 32, 4, seed=0, magnification=20)
    assert describe_plan(plan.params()) == "random of 32x32, at 20x, seed 0"
    plan = gigapatch.grid(slide, 32, mpp=0.5)
    assert describe_plan(plan.params()).startswith("grid of 32x32, at 0.5 um/px,")


def test_summarize_says_what_info_prints(tmp_path):
    make_store(tmp_path / "s.zarr")
    store = PatchStore(tmp_path / "s.zarr")
    lines = summarize(store)
    assert [key for key, _ in lines] == ["store", "format", "patches", "shards", "plan",
                                         "label 0  ", "label 1  ", "source 0  ", "source 1  "]
    values = dict(lines)
    assert values["store"].startswith(f"{tmp_path / 's.zarr'} (")
    assert values["store"][-11:] in (" B on disk)", "KB on disk)")
    assert values["format"].startswith("gigapatch store format 2 (Zarr v3), written by gigapatch ")
    assert values["patches"] == "5 of 4x3x1 uint8"
    assert values["shards"] == "0/3 done, 2 patches each, codec zstd"
    assert values["plan"] == "grid of 4x3, at level 0, stride 4x3"
    assert values["label 0  "] == "3 patches from 1 slide"  # no class names: bare labels
    assert values["label 1  "] == "2 patches from 1 slide"
    assert values["source 0  "] == "/data/a.svs (level 1, label 0, 3 patches)"
    assert values["source 1  "] == "array (level 0, label 1, 2 patches)"  # no path: its name


def test_summarize_names_classes_and_skipped_slides(tmp_path):
    plan = {"kind": "grid", "size": [4, 3], "level": 0, "stride": [4, 3],
            "classes": ["neg", "pos"]}
    group = make_store(tmp_path / "s.zarr", n=6, plan=plan)
    values = dict(summarize(PatchStore(tmp_path / "s.zarr")))
    assert values["label 0  "] == "neg: 3 patches from 1 slide"
    assert values["source 1  "] == "array (level 0, label 1 (pos), 3 patches)"
    assert "skipped" not in values
    attrs = dict(group.attrs["gigapatch"])
    attrs["skipped"] = [{"path": "/data/c.svs", "reason": "unreadable"}, "d.svs"]
    group.attrs["gigapatch"] = attrs
    values = dict(summarize(PatchStore(tmp_path / "s.zarr")))
    assert values["skipped"] == "2 slides: /data/c.svs (unreadable), d.svs"


def test_summarize_counts_unlabelled_patches(tmp_path):
    create_store(tmp_path / "u.zarr", StoreSpec(
        patch_shape=(2, 2, 1), dtype=np.uint8, coords=np.zeros((4, 2)), slide=np.zeros(4),
        label=np.full(4, -1), sources=[{"name": "x.tif", "label": -1}], plan={}, shard_size=2,
    ))
    values = dict(summarize(PatchStore(tmp_path / "u.zarr")))
    assert values["label -1 "] == "none: 4 patches from 1 slide"
    assert values["source 0  "] == "x.tif (level None, label none, 4 patches)"


def test_is_store(tmp_path, square_path):
    make_store(tmp_path / "s.zarr")
    zarr.open_group(tmp_path / "plain.zarr", mode="w")
    zarr.create_array(tmp_path / "array.zarr", shape=(4,), dtype="u1")
    (tmp_path / "empty").mkdir()
    assert is_store(tmp_path / "s.zarr") and is_store(str(tmp_path / "s.zarr"))
    for other in ("plain.zarr", "array.zarr", "empty", "missing"):
        assert not is_store(tmp_path / other), other
    assert not is_store(square_path)


def test_recorded_seed(tmp_path, square_path):
    assert recorded_seed(tmp_path / "missing.zarr") is None
    make_store(tmp_path / "g.zarr")
    assert recorded_seed(tmp_path / "g.zarr") is None  # a grid has no seed
    make_store(tmp_path / "r.zarr", plan={"kind": "random", "size": [4, 3], "seed": 17})
    assert recorded_seed(tmp_path / "r.zarr") == 17
    with pytest.raises(StoreError, match="is not a Zarr group"):
        recorded_seed(square_path)


def test_patches_done_of_paths_that_are_no_store(tmp_path, square_path):
    assert patches_done(tmp_path / "missing.zarr") == 0
    assert patches_done(square_path) == 0
    zarr.open_group(tmp_path / "plain.zarr", mode="w")
    assert patches_done(tmp_path / "plain.zarr") == 0


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(1, 12), shard_size=st.integers(1, 5), data=st.data())
def test_patches_done_counts_the_patches_of_done_shards(tmp_path, n, shard_size, data):
    n_shards = -(-n // shard_size)
    done = data.draw(st.lists(st.booleans(), min_size=n_shards, max_size=n_shards))
    group = make_store(tmp_path / "s.zarr", n=n, shard_size=shard_size, overwrite=True)
    for i in range(n_shards):
        rows = len(range(i * shard_size, min(n, (i + 1) * shard_size)))
        write_shard(group["images"], i, np.zeros((rows, 4, 3, 1), np.uint8))
    mark_done(group, [i for i, d in enumerate(done) if d])
    expected = sum(done[i // shard_size] for i in range(n))  # patch i lies in shard i // S
    assert patches_done(PatchStore(tmp_path / "s.zarr")) == expected
    assert patches_done(tmp_path / "s.zarr") == expected
