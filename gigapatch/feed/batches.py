"""Stream a patch store in batches, a whole shard at a time (the fast way to read Zarr)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np

from gigapatch.errors import InvalidArgumentError, StoreError, check_int, check_seed
from gigapatch.feed.source import check_threads
from gigapatch.store import PatchSelection, PatchStore

__all__ = ["iter_batches"]


def iter_batches(
    store: PatchStore | PatchSelection | str | os.PathLike[str],
    batch_size: int = 64,
    *,
    shuffle: bool = False,
    seed: int | None = None,
    drop_last: bool = False,
    decode_threads: int | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Yield ``(images, labels, indices)`` batches covering every patch once.

    Whole shards are read (one file each, decoded by the store's
    :class:`~gigapatch.store.ShardReader`)
    rather than patch by patch through zarr. With
    ``shuffle``, the shard order and the order within each shard are drawn
    from ``seed``: the same seed gives the same order.

    Parameters
    ----------
    store
        A `PatchStore`, a `PatchSelection` (only its patches are read: the
        selected ones of each shard) or a store path; the store must be complete.
    batch_size
        Patches per batch.
    shuffle, seed
        Shuffle shards and patches within shards, reproducibly for a seed.
    drop_last
        Drop the final short batch.
    decode_threads
        Threads decoding the JPEG chunks of a shard (a JPEG store); default:
        one per CPU this process may use.
    """
    selected: np.ndarray | None = None
    if isinstance(store, PatchSelection):
        selected = store.indices
        store = store.store
    elif not isinstance(store, PatchStore):
        store = PatchStore(store)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidArgumentError(f"batch_size must be a positive integer; got {batch_size!r}")
    batch_size = check_int("batch_size", batch_size)
    seed = check_seed(seed, allow_none=True)
    threads = check_threads(decode_threads)
    if not store.complete:
        raise StoreError(
            f"store {str(store.path)!r} is incomplete ({store.shards_done}/{store.n_shards} "
            "shards done): finish the extraction first"
        )
    if store.failed_count:  # failed patches hold no data: never fed
        selected = store.ok_indices() if selected is None else selected[
            store.status[selected] == 0]
    rng = np.random.default_rng(seed)
    labels = store.label
    reader = store.reader
    order = rng.permutation(store.n_shards) if shuffle else np.arange(store.n_shards)
    if selected is not None:  # the selected store indices of each shard (indices are sorted)
        bounds = np.searchsorted(selected, np.arange(store.n_shards + 1) * store.shard_size)
    pending_images: list[np.ndarray] = []
    pending_index: list[np.ndarray] = []
    pending = 0
    for shard in order.tolist():
        start = shard * store.shard_size
        index = np.arange(start, min(start + store.shard_size, len(store)))
        if selected is not None:
            index = selected[bounds[shard] : bounds[shard + 1]]
            if not len(index):
                continue
        images = reader.read(index, threads=threads)
        if shuffle:
            perm = rng.permutation(len(images))
            images, index = images[perm], index[perm]
        pending_images.append(images)
        pending_index.append(index)
        pending += len(images)
        while pending >= batch_size:
            images, index = np.concatenate(pending_images), np.concatenate(pending_index)
            yield images[:batch_size], labels[index[:batch_size]], index[:batch_size]
            pending_images, pending_index = [images[batch_size:]], [index[batch_size:]]
            pending -= batch_size
    if pending and not drop_last:
        index = np.concatenate(pending_index)
        yield np.concatenate(pending_images), labels[index], index
