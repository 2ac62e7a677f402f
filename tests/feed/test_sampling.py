"""Shard-aware epoch orders: a permutation, few shards per group, disjoint rank/worker parts."""

import numpy as np
import pytest

from gigapatch.errors import InvalidArgumentError
from gigapatch.feed import epoch_groups, epoch_order, split_groups


@pytest.mark.parametrize("buffer_shards", [1, 2, 5])
def test_groups_are_a_permutation_touching_few_shards(buffer_shards):
    indices = np.sort(np.random.default_rng(0).choice(1000, 700, replace=False))
    groups = epoch_groups(indices, 64, seed=3, epoch=1, buffer_shards=buffer_shards)
    assert np.array_equal(np.sort(np.concatenate(groups)), indices)
    assert all(len(np.unique(g // 64)) <= buffer_shards for g in groups)
    assert not np.array_equal(np.concatenate(groups), indices)


def test_same_seed_and_epoch_same_order_else_another():
    idx = np.arange(500)
    a = epoch_order(idx, 32, seed=1, epoch=0)
    assert np.array_equal(a, epoch_order(idx, 32, seed=1, epoch=0))
    assert not np.array_equal(a, epoch_order(idx, 32, seed=1, epoch=1))
    assert not np.array_equal(a, epoch_order(idx, 32, seed=2, epoch=0))
    assert np.array_equal(epoch_order(idx, 32, shuffle=False), idx)


@pytest.mark.parametrize("world_size", [1, 2, 3])
@pytest.mark.parametrize("num_workers", [1, 2, 4])
def test_ranks_and_workers_split_an_epoch_without_overlap(world_size, num_workers):
    indices = np.arange(203)
    groups = epoch_groups(indices, 16, seed=7, buffer_shards=2)
    parts, per_rank = [], []
    for rank in range(world_size):
        rank_parts = [
            split_groups(groups, rank=rank, world_size=world_size, worker=w,
                         num_workers=num_workers)
            for w in range(num_workers)
        ]
        flat = [np.concatenate(p) for p in rank_parts if p]
        per_rank.append(sum(len(f) for f in flat))
        parts.extend(flat)
    seen = np.concatenate(parts)
    assert np.array_equal(np.sort(seen), indices)
    assert max(per_rank) - min(per_rank) <= 1


def test_argument_errors():
    with pytest.raises(InvalidArgumentError, match="seed must be a non-negative integer"):
        epoch_groups(np.arange(4), 2, seed=None)
    with pytest.raises(InvalidArgumentError, match="buffer_shards must be at least 1; got 0"):
        epoch_groups(np.arange(4), 2, buffer_shards=0)
    with pytest.raises(InvalidArgumentError, match=r"rank must be in \[0, 1\]; got 2"):
        split_groups([np.arange(4)], rank=2, world_size=2)
    with pytest.raises(InvalidArgumentError, match=r"worker must be in \[0, 2\]; got 3"):
        split_groups([np.arange(4)], worker=3, num_workers=3)
    assert epoch_groups(np.zeros(0, np.int64), 4) == []
    assert len(epoch_order(np.zeros(0, np.int64), 4)) == 0
