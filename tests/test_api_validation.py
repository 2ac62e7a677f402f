"""The Python API refuses what the command line refuses: every public entry point, fed random
bad values for one argument at a time, raises ``InvalidArgumentError`` naming the argument —
never another exception type, and never an answer (uninitialized memory, a silently truncated
coordinate, a label read from a string)."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gigapatch
from gigapatch import feed, preview
from gigapatch.engine import estimate
from gigapatch.errors import InvalidArgumentError, RegionError

# printable text without lone surrogates (some hypothesis set-ups warn about those, and
# pytest turns warnings into errors)
TEXT = st.characters(exclude_categories=("Cs",))

NAN, INF = math.nan, math.inf
HUGE = 10**30

# ------------------------------------------------------------------ bad values, by kind

_junk = st.sampled_from([None, "3", "abc", b"1", [], {}, object(), True, False])
_floats = st.floats(allow_nan=True, allow_infinity=True)
_non_integral = st.one_of(
    _floats.filter(lambda v: not (math.isfinite(v) and v.is_integer())),
    st.floats(-1e6, 1e6).map(lambda v: float(round(v))),  # 3.0: a float, not an int
    st.just(np.float64(2.0)),
)


def _bad_int(minimum: int, *, none_ok: bool = False) -> st.SearchStrategy[Any]:
    """Not an integer ≥ ``minimum``: smaller, a float, nan/inf, a bool, text, None, huge, a
    list."""
    junk = _junk.filter(lambda v: v is not None) if none_ok else _junk
    return st.one_of(
        st.integers(max_value=minimum - 1), _non_integral, junk,
        st.lists(st.integers(1, 9), min_size=1, max_size=3).filter(lambda v: len(v) != 2),
    )


def _bad_count(minimum: int = 1, *, none_ok: bool = False,
               huge: bool = True) -> st.SearchStrategy[Any]:
    return st.one_of(_bad_int(minimum, none_ok=none_ok),
                     *([st.integers(min_value=2**63, max_value=HUGE)] if huge else []))


_bad_pair = st.one_of(
    _bad_count(huge=True),
    st.lists(st.integers(1, 50), min_size=0, max_size=4).filter(lambda v: len(v) != 2).map(tuple),
    st.tuples(st.integers(1, 50), _bad_count(huge=False)),
    st.tuples(_bad_count(huge=False), st.integers(1, 50)),
)
_bad_positive_number = st.one_of(
    st.floats(max_value=0.0), st.integers(max_value=0), st.sampled_from([NAN, INF, -INF]),
    _junk.filter(lambda v: v is not None), st.floats(min_value=1e30, max_value=1e300),
)
_bad_fraction = st.one_of(
    st.floats(max_value=-1e-9), st.floats(min_value=1.0 + 1e-9), st.sampled_from([NAN, INF]),
    _junk,
)
_bad_nonnegative = st.one_of(
    st.floats(max_value=-1e-9), st.integers(max_value=-1), st.sampled_from([NAN, INF, -INF]),
    _junk, st.lists(st.floats(0, 1), max_size=2),
)
_bad_fill = st.one_of(  # for a uint8 slide
    st.sampled_from([NAN, INF, -INF, 0.5, -1, 256, 1e30]), st.integers(max_value=-1),
    st.integers(min_value=256), _floats.filter(lambda v: not (math.isfinite(v)
                                                              and v.is_integer())),
    _junk.filter(lambda v: v is not None),
)
_bad_out = st.one_of(
    _junk.filter(lambda v: v is not None), _floats, st.integers(),
    st.sampled_from([np.zeros((8, 8), np.uint8), np.zeros((8, 8, 3), np.float32),
                     np.zeros((9, 8, 3), np.uint8), [[0] * 8] * 8]),
)
_bad_seed = st.one_of(st.integers(max_value=-1), _non_integral,
                      _junk.filter(lambda v: v is not None))
_bad_coordinate = st.one_of(
    _floats.filter(lambda v: not (math.isfinite(v) and v.is_integer())),
    st.sampled_from([1.0, np.float32(2.0)]), _junk, st.integers(min_value=2**63, max_value=HUGE),
    st.integers(max_value=-(2**63) - 1, min_value=-HUGE),
)
_bad_level = st.one_of(st.integers(max_value=-1), st.integers(min_value=2, max_value=HUGE),
                       _non_integral, _junk.filter(lambda v: v is not None))
_bad_labels = st.one_of(
    st.lists(st.integers(-1, 3), max_size=4).filter(lambda v: len(v) != 1),
    st.lists(st.one_of(_non_integral, _junk, st.integers(max_value=-2)), min_size=1,
             max_size=1),
    st.sampled_from(["0", 0, 1.5, NAN]),
)
_bad_choice = st.one_of(st.text(TEXT, max_size=8).filter(lambda v: v not in CHOICES), st.integers(),
                        _junk.filter(lambda v: v is not None and not isinstance(v, str)))
CHOICES = {"valid", "same", "auto", "cpu", "gpu", "threads", "processes", "synchronous",
           "lz4", "zstd", "zstd-3", "none", "tifffile", "openslide", "slide", "label",
           "patch", "hwc", "chw", "float32", "float16", "uint8", "onehot", "sparse",
           "xception", "imagenet", "zero-one", "minus-one-one"}

BAD: dict[str, st.SearchStrategy[Any]] = {
    "location": st.one_of(
        st.lists(st.integers(0, 50), max_size=4).filter(lambda v: len(v) != 2).map(tuple),
        st.tuples(st.integers(0, 50), _bad_coordinate),
        st.tuples(_bad_coordinate, st.integers(0, 50)), _junk),
    "nonnegative": _bad_nonnegative,
    "fill": _bad_fill,
    "out": _bad_out,
    "path": st.one_of(_junk.filter(lambda v: not isinstance(v, str | bytes)), _floats,
                      st.integers()),
    "callable": st.one_of(_junk.filter(lambda v: v is not None), _floats, st.integers()),
    "fraction|None": _bad_fraction.filter(lambda v: v is not None),
    "notnone": st.one_of(_bad_coordinate.filter(lambda v: v is not None), st.integers()),
    "count": _bad_count(),
    "count0": _bad_count(0),
    "count|None": _bad_count(none_ok=True),
    "pair": _bad_pair,
    "pair|None": st.one_of(_bad_pair).filter(lambda v: v is not None),
    "positive": _bad_positive_number,
    "fraction": _bad_fraction,
    "seed": _bad_seed,
    "coordinate": _bad_coordinate,
    "level": _bad_level,
    "labels": _bad_labels,
    "choice": _bad_choice,
    "series": st.one_of(st.integers(max_value=-1), st.integers(min_value=2**63, max_value=HUGE),
                        _non_integral, st.sampled_from([True, b"1", [], object()]),
                        st.text(TEXT, min_size=1, max_size=5)),
    "key": st.one_of(_bad_coordinate.filter(lambda v: v is not None), st.text(TEXT, max_size=4),
                     st.integers(min_value=5), st.integers(max_value=-2)),
    "index": st.one_of(_bad_coordinate, st.integers(min_value=10**6, max_value=HUGE),
                       st.integers(max_value=-(10**6))),
}


# ------------------------------------------------------------------ what is called


@dataclass(frozen=True)
class Case:
    """One argument of one entry point: ``call(value)`` passes ``value`` as ``arg``."""

    name: str
    arg: str
    kind: str
    call: Callable[[Any], Any]
    allowed: tuple[type[BaseException], ...] = (InvalidArgumentError,)
    named: bool = True  # the message names the argument

    def __str__(self) -> str:
        return f"{self.name}:{self.arg}"


class World:
    """Valid objects to call the API with (made once: a small slide, a plan, a store)."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.path = gigapatch.synthesize(os.path.join(root, "s.svs"), (600, 800), seed=2,
                                         workers=1)
        self.slide = gigapatch.open(self.path)
        self.plan = gigapatch.grid(self.slide, 128, 128)
        self.store = gigapatch.extract_to_zarr(self.slide, self.plan,
                                               os.path.join(root, "s.zarr"), shard_size=4,
                                               workers=1, labels=[1])
        self.count = 0

    def out(self) -> str:
        self.count += 1
        return os.path.join(self.root, f"o{self.count}.zarr")


def _cases(w: World) -> list[Case]:
    s, p, store = w.slide, w.plan, w.store
    C = Case
    cases = [
        # sources
        C("open", "series", "series", lambda v: gigapatch.open(w.path, series=v)),
        C("open", "reader", "choice", lambda v: gigapatch.open(w.path, reader=v)),
        C("read", "y", "coordinate", lambda v: s.read(v, 0, 8, 8), (InvalidArgumentError,
                                                                    RegionError)),
        C("read", "x", "coordinate", lambda v: s.read(0, v, 8, 8), (InvalidArgumentError,
                                                                    RegionError)),
        C("read", "height", "count", lambda v: s.read(0, 0, v, 8, fill=0)),
        C("read", "width", "count", lambda v: s.read(0, 0, 8, v, fill=0)),
        C("read", "level", "level", lambda v: s.read(0, 0, 8, 8, v)),
        C("read", "fill", "fill", lambda v: s.read(-4, 0, 8, 8, fill=v)),
        C("read", "mpp", "positive", lambda v: s.read(0, 0, 8, 8, mpp=v)),
        C("read", "magnification", "positive", lambda v: s.read(0, 0, 8, 8, magnification=v)),
        C("read", "out", "out", lambda v: s.read(0, 0, 8, 8, out=v)),
        C("read_regions", "ys", "coordinate", lambda v: s.read_regions([0, v], [0, 0], 8, 8),
          (InvalidArgumentError, RegionError)),
        C("read_regions", "xs", "coordinate", lambda v: s.read_regions([0], [v], 8, 8),
          (InvalidArgumentError, RegionError)),
        C("read_regions", "height", "count", lambda v: s.read_regions([0], [0], v, 8, fill=0)),
        C("read_regions", "level", "level", lambda v: s.read_regions([0], [0], 8, 8, v)),
        C("read_region", "location", "location", lambda v: s.read_region(v, 0, (8, 8))),
        C("read_region", "level", "level", lambda v: s.read_region((0, 0), v, (8, 8))),
        C("read_region", "size", "pair", lambda v: s.read_region((0, 0), 0, v)),
        C("resolution", "mpp", "positive", lambda v: s.resolution(mpp=v)),
        C("resolution", "level", "level", lambda v: s.resolution(level=v)),
        C("resolution", "tolerance", "fraction", lambda v: s.resolution(mpp=0.5, tolerance=v)),
        C("level_for_mpp", "mpp", "positive", lambda v: s.level_for_mpp(v)),
        C("level_for_mpp", "tolerance", "fraction", lambda v: s.level_for_mpp(0.25, tolerance=v)),
        # plans
        C("grid", "size", "pair", lambda v: gigapatch.grid(s, v)),
        C("grid", "stride", "pair|None", lambda v: gigapatch.grid(s, 64, v)),
        C("grid", "dilation", "pair", lambda v: gigapatch.grid(s, 16, dilation=v)),
        C("grid", "padding", "choice", lambda v: gigapatch.grid(s, 64, padding=v)),
        C("grid", "level", "level", lambda v: gigapatch.grid(s, 64, level=v)),
        C("grid", "mpp", "positive", lambda v: gigapatch.grid(s, 64, mpp=v)),
        C("grid", "magnification", "positive", lambda v: gigapatch.grid(s, 64, magnification=v)),
        C("grid", "mpp_tolerance", "fraction", lambda v: gigapatch.grid(s, 64, mpp=0.5,
                                                                        mpp_tolerance=v)),
        C("grid", "fill", "fill", lambda v: gigapatch.grid(s, 64, padding="same", fill=v)),
        C("grid", "min_tissue", "fraction", lambda v: gigapatch.grid(s, 64, min_tissue=v)),
        C("grid", "labels", "labels", lambda v: gigapatch.grid(s, 64, labels=v)),
        C("random", "size", "pair", lambda v: gigapatch.random(s, v, 4, seed=0)),
        C("random", "n", "count", lambda v: gigapatch.random(s, 64, v, seed=0)),
        C("random", "seed", "seed", lambda v: gigapatch.random(s, 64, 4, seed=v)),
        C("random", "mpp", "positive", lambda v: gigapatch.random(s, 64, 4, seed=0, mpp=v)),
        C("random", "level", "level", lambda v: gigapatch.random(s, 64, 4, seed=0, level=v)),
        C("random", "min_tissue", "fraction",
          lambda v: gigapatch.random(s, 64, 4, seed=0, min_tissue=v)),
        C("random", "labels", "labels", lambda v: gigapatch.random(s, 64, 4, seed=0, labels=v)),
        C("weighted", "weights", "notnone",
          lambda v: gigapatch.random(s, 64, 4, seed=0, weights=v)),
        C("balanced", "labels", "labels",
          lambda v: gigapatch.random(s, 64, 4, seed=0, labels=v, balance=True)),
        # engine
        C("extract", "block_size", "count", lambda v: gigapatch.extract(s, p, block_size=v)),
        C("extract", "workers", "count|None", lambda v: gigapatch.extract(s, p, workers=v)),
        C("extract", "device", "choice", lambda v: gigapatch.extract(s, p, device=v)),
        C("extract", "scheduler", "choice", lambda v: gigapatch.extract(s, p, scheduler=v)),
        C("extract", "plan", "coordinate", lambda v: gigapatch.extract(s, v)),
        C("extract", "out", "out", lambda v: gigapatch.extract(s, p, out=v)),
        C("extract_to_zarr", "shard_size", "count",
          lambda v: gigapatch.extract_to_zarr(s, p, w.out(), shard_size=v)),
        C("extract_to_zarr", "labels", "labels",
          lambda v: gigapatch.extract_to_zarr(s, p, w.out(), labels=v)),
        C("extract_to_zarr", "codec", "choice",
          lambda v: gigapatch.extract_to_zarr(s, p, w.out(), codec=v)),
        C("extract_to_zarr", "workers", "count|None",
          lambda v: gigapatch.extract_to_zarr(s, p, w.out(), workers=v)),
        C("extract_to_zarr", "out", "path",
          lambda v: gigapatch.extract_to_zarr(s, p, v)),
        C("extract_to_zarr", "progress", "callable",
          lambda v: gigapatch.extract_to_zarr(s, p, w.out(), progress=v)),
        C("estimate", "sample", "count", lambda v: estimate(s, p, sample=v)),
        C("estimate", "shard_size", "count", lambda v: estimate(s, p, shard_size=v)),
        C("estimate", "seed", "seed", lambda v: estimate(s, p, seed=v)),
        C("estimate", "workers", "count|None", lambda v: estimate(s, p, workers=v)),
        # store
        C("PatchStore", "index", "index", lambda v: store[v], (InvalidArgumentError, IndexError),
          named=False),
        C("PatchStore.shard", "index", "index", lambda v: store.shard(v)),
        C("select", "slide", "key", lambda v: store.select(slide=v)),
        C("select", "label", "key", lambda v: store.select(label=v)),
        C("select", "min_tissue", "fraction|None", lambda v: store.select(min_tissue=v)),
        C("split", "fractions", "coordinate", lambda v: store.split(v)),
        C("split", "seed", "seed", lambda v: store.split(seed=v)),
        C("split", "by", "choice", lambda v: store.split(by=v)),
        # feed
        C("iter_batches", "batch_size", "count", lambda v: next(feed.iter_batches(store, v))),
        C("iter_batches", "seed", "seed",
          lambda v: next(feed.iter_batches(store, 2, shuffle=True, seed=v))),
        C("epoch_groups", "shard_size", "count", lambda v: feed.epoch_groups(np.arange(8), v)),
        C("epoch_groups", "seed", "seed", lambda v: feed.epoch_groups(np.arange(8), 4, seed=v)),
        C("epoch_groups", "epoch", "count0",
          lambda v: feed.epoch_groups(np.arange(8), 4, epoch=v)),
        C("epoch_groups", "buffer_shards", "count",
          lambda v: feed.epoch_groups(np.arange(8), 4, buffer_shards=v)),
        C("epoch_order", "world_size", "count",
          lambda v: feed.epoch_order(np.arange(8), 4, world_size=v)),
        C("epoch_order", "rank", "count0", lambda v: feed.epoch_order(np.arange(8), 4, rank=v)),
        C("split_groups", "num_workers", "count",
          lambda v: feed.split_groups([np.arange(4)], num_workers=v)),
        C("split_groups", "worker", "count0",
          lambda v: feed.split_groups([np.arange(4)], worker=v)),
        C("Preprocess", "brightness", "nonnegative",
          lambda v: feed.Preprocess(normalize="unit", brightness=v)),
        C("Preprocess", "rotation", "nonnegative", lambda v: feed.Preprocess(rotation=v)),
        C("Preprocess", "zoom", "pair", lambda v: feed.Preprocess(zoom=v)),
        C("Preprocess", "layout", "choice", lambda v: feed.Preprocess(layout=v)),
        C("Preprocess", "dtype", "choice", lambda v: feed.Preprocess(dtype=v)),
        C("PatchDataset", "seed", "seed", lambda v: ft().PatchDataset(store, seed=v)),
        C("PatchDataset", "preprocess", "callable",
          lambda v: ft().PatchDataset(store, preprocess=v)),
        C("ShardSampler", "buffer_shards", "count",
          lambda v: ft().ShardSampler(ft().PatchDataset(store), buffer_shards=v)),
        C("ShardSampler", "rank", "count0",
          lambda v: ft().ShardSampler(ft().PatchDataset(store), rank=v, world_size=1)),
        C("ShardSampler", "world_size", "count",
          lambda v: ft().ShardSampler(ft().PatchDataset(store), rank=0, world_size=v)),
        C("ShardIterableDataset", "batch_size", "count",
          lambda v: ft().ShardIterableDataset(store, v)),
        C("ShardIterableDataset", "seed", "seed",
          lambda v: ft().ShardIterableDataset(store, 2, seed=v)),
        C("ShardIterableDataset", "preprocess", "callable",
          lambda v: ft().ShardIterableDataset(store, 2, preprocess=v)),
        C("PatchSequence", "batch_size", "count", lambda v: fk().PatchSequence(store, v)),
        C("PatchSequence", "labels", "choice",
          lambda v: fk().PatchSequence(store, 2, labels=v)),
        C("PatchSequence", "num_classes", "count|None",
          lambda v: fk().PatchSequence(store, 2, num_classes=v)),
        C("PatchSequence", "seed", "seed", lambda v: fk().PatchSequence(store, 2, seed=v)),
        C("PatchSequence", "preprocess", "callable",
          lambda v: fk().PatchSequence(store, 2, preprocess=v)),
        C("open", "axes", "choice", lambda v: gigapatch.open(np.zeros((4, 5, 3), np.uint8),
                                                             axes=v)),
        C("find_slides", "sources", "path", lambda v: gigapatch.find_slides(v)),
        C("estimate", "codec", "choice", lambda v: estimate(s, p, codec=v)),
        # preview
        C("preview.plan", "width", "count", lambda v: preview.plan(s, p, width=v)),
        C("preview.plan", "max_boxes", "count0", lambda v: preview.plan(s, p, max_boxes=v)),
        C("preview.plan", "slide_index", "count0", lambda v: preview.plan(s, p, slide_index=v)),
        C("preview.sheet", "n", "count", lambda v: preview.sheet(store, n=v)),
        C("preview.sheet", "tile", "count", lambda v: preview.sheet(store, tile=v)),
        C("preview.sheet", "columns", "count|None", lambda v: preview.sheet(store, columns=v)),
        C("preview.sheet", "seed", "seed", lambda v: preview.sheet(store, seed=v)),
        C("preview.store_boxes", "width", "count", lambda v: preview.store_boxes(store, width=v)),
        # synth
        C("synthesize", "size", "pair", lambda v: gigapatch.synthesize(w.out(), v)),
        C("synthesize", "tile", "count", lambda v: gigapatch.synthesize(w.out(), 512, tile=v)),
        C("synthesize", "mpp", "positive", lambda v: gigapatch.synthesize(w.out(), 512, mpp=v)),
        C("synthesize", "seed", "seed", lambda v: gigapatch.synthesize(w.out(), 512, seed=v)),
    ]
    return cases


def ft() -> Any:
    from gigapatch.feed import torch

    return torch


def fk() -> Any:
    from gigapatch.feed import keras

    return keras


_WORLD: dict[str, World] = {}


def _world(tmp_path_factory: pytest.TempPathFactory) -> World:
    if "w" not in _WORLD:
        _WORLD["w"] = World(str(tmp_path_factory.mktemp("api")))
    return _WORLD["w"]


def _case_names() -> list[str]:
    class Stub:
        def __getattr__(self, name: str) -> Any:
            return None

    return [str(c) for c in _cases(Stub())]  # type: ignore[arg-type]


@pytest.mark.parametrize("case_name", _case_names())
def test_bad_values_raise_invalid_argument_naming_it(case_name, tmp_path_factory):
    world = _world(tmp_path_factory)
    case = next(c for c in _cases(world) if str(c) == case_name)

    @settings(max_examples=30, deadline=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(value=BAD[case.kind])
    def check(value: Any) -> None:
        try:
            result = case.call(value)
        except case.allowed as exc:
            message = str(exc)
            assert not case.named or case.arg in message or case.arg.rstrip("s") in message, (
                f"{case}: {value!r}: the message does not name {case.arg!r}: {message}")
            return
        except Exception as exc:  # the point of the test: no other type
            raise AssertionError(f"{case}: {value!r} raised {type(exc).__name__}: {exc}") from exc
        # a huge but well-typed value may be a valid request (2**63 workers, a batch of every
        # patch); anything else that returns is a hole
        assert _huge(value), f"{case}: {value!r} was accepted (returned {type(result)})"

    check()


def _huge(value: Any) -> bool:
    if isinstance(value, tuple):
        return any(_huge(v) for v in value)
    return (isinstance(value, int) and not isinstance(value, bool) and value >= 2**63) or (
        isinstance(value, float) and math.isfinite(value) and value >= 1e30)


def test_the_holes_the_issue_names(slide_path):
    slide = gigapatch.open(slide_path)
    plan = gigapatch.grid(slide, 256)
    with pytest.raises(InvalidArgumentError, match="block_size must be at least 1; got -256"):
        gigapatch.extract(slide, plan, block_size=-256)  # was: uninitialized memory
    with pytest.raises(InvalidArgumentError, match="mpp must be a positive finite number; got inf"):
        slide.read(0, 0, 8, 8, mpp=INF)
    with pytest.raises(InvalidArgumentError, match="mpp must be a positive finite number; got inf"):
        slide.level_for_mpp(INF)
    with pytest.raises(InvalidArgumentError, match=r"y must be an integer \(pixels\); got 10.5"):
        slide.read(10.5, 0, 8, 8)  # was: read at y=10
    with pytest.raises(InvalidArgumentError, match="xs must be a 1-d sequence of integers"):
        slide.read_regions([0], [3.7], 8, 8)  # was: read at x=3
    with pytest.raises(InvalidArgumentError, match="fill must be representable as uint8"):
        slide.read(-4, 0, 8, 8, fill=-0.5)  # was: a fill of 0
    with pytest.raises(InvalidArgumentError, match="labels must give one integer label"):
        gigapatch.extract_to_zarr(slide, plan, "unused.zarr", labels=["1"])  # was: label 1
