"""Shard-aware epoch orders: shuffled, seeded per epoch, split across ranks and workers.

An epoch's order is pure data computed from ``(seed, epoch)`` before any read:

1. the patches are grouped by shard, and the shards are put in a random order;
2. consecutive shards are joined into groups of ``buffer_shards`` (the
   shuffle buffer), and the patches of each group are permuted;
3. the concatenated order is cut into ``world_size`` contiguous parts of equal
   length (±1), one per distributed rank;
4. the groups of a rank are dealt round-robin to its DataLoader workers.

Every process computes the same order from the same seed, so the parts never
overlap and together hold every patch exactly once. A group touches at most
``buffer_shards`` shard files, which is what makes reads fast.
"""

from __future__ import annotations

from typing import TypedDict, Unpack

import numpy as np
import numpy.typing as npt

from gigapatch.errors import InvalidArgumentError, check_int, check_seed

__all__ = ["EpochOptions", "epoch_groups", "epoch_order", "split_groups"]

Indices = npt.NDArray[np.int64]


class EpochOptions(TypedDict, total=False):
    """The keyword arguments of :func:`epoch_groups` (also taken by :func:`epoch_order`)."""

    shuffle: bool
    seed: int
    epoch: int
    buffer_shards: int


def epoch_groups(
    indices: npt.ArrayLike,
    shard_size: int,
    *,
    shuffle: bool = True,
    seed: int = 0,
    epoch: int = 0,
    buffer_shards: int = 2,
) -> list[Indices]:
    """The groups of store indices of one epoch, each spanning at most ``buffer_shards`` shards.

    Parameters
    ----------
    indices
        Sorted store indices to cover (all of a store, or a selection).
    shard_size
        Patches per shard of the store.
    shuffle
        Randomize the shard order and the order within each group; otherwise
        the groups follow the store order.
    seed, epoch
        The order is a function of both: the same pair gives the same order.
    buffer_shards
        Shards whose patches are mixed together.
    """
    check_int("shard_size", shard_size)
    check_int("buffer_shards", buffer_shards)
    check_int("epoch", epoch, minimum=0)
    seed = check_seed(seed)
    wanted = np.asarray(indices, dtype=np.int64)
    if not len(wanted):
        return []
    shards = wanted // shard_size
    cuts = np.flatnonzero(np.diff(shards)) + 1
    per_shard = np.split(wanted, cuts)
    rng = np.random.default_rng([seed, epoch])
    if shuffle:
        per_shard = [per_shard[k] for k in rng.permutation(len(per_shard))]
    groups = []
    for start in range(0, len(per_shard), buffer_shards):
        group = np.concatenate(per_shard[start : start + buffer_shards])
        groups.append(rng.permutation(group) if shuffle else group)
    return groups


def split_groups(
    groups: list[Indices],
    *,
    rank: int = 0,
    world_size: int = 1,
    worker: int = 0,
    num_workers: int = 1,
) -> list[Indices]:
    """The part of an epoch's ``groups`` that one worker of one rank reads.

    Ranks get contiguous, equal (±1) runs of the order, cut inside a group if
    need be; workers get every ``num_workers``-th group of their rank's run.
    """
    check_int("world_size", world_size)
    check_int("num_workers", num_workers)
    check_int("rank", rank, minimum=0)
    check_int("worker", worker, minimum=0)
    if not 0 <= rank < world_size:
        raise InvalidArgumentError(f"rank must be in [0, {world_size - 1}]; got {rank!r}")
    if not 0 <= worker < num_workers:
        raise InvalidArgumentError(f"worker must be in [0, {num_workers - 1}]; got {worker!r}")
    sizes = np.array([len(g) for g in groups], dtype=np.int64)
    ends = np.cumsum(sizes)
    starts = ends - sizes
    total = int(ends[-1]) if len(ends) else 0
    lo, hi = rank * total // world_size, (rank + 1) * total // world_size
    mine = []
    for group, start, end in zip(groups, starts.tolist(), ends.tolist(), strict=True):
        if end <= lo or start >= hi:
            continue
        part = group[max(lo - start, 0) : min(hi, end) - start]
        if len(part):
            mine.append(part)
    return mine[worker::num_workers]


def epoch_order(
    indices: npt.ArrayLike,
    shard_size: int,
    *,
    rank: int = 0,
    world_size: int = 1,
    **options: Unpack[EpochOptions],
) -> Indices:
    """One rank's order of store indices for an epoch (all its groups, concatenated).

    Takes the arguments of :func:`epoch_groups` (``shuffle``, ``seed``,
    ``epoch``, ``buffer_shards``) and the ``rank`` and ``world_size`` of
    :func:`split_groups`.
    """
    groups = epoch_groups(indices, shard_size, **options)
    mine = split_groups(groups, rank=rank, world_size=world_size)
    return np.concatenate(mine) if mine else np.zeros(0, np.int64)
