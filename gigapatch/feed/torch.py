"""PyTorch datasets over a patch store (extra ``torch``: ``pip install 'gigapatch[torch]'``).

* :class:`PatchDataset`: map-style, one ``(patch, label, source)`` per index;
  a DataLoader's batches are fetched together (``__getitems__``), and
  :class:`ShardSampler` orders them so each batch touches few shard files.
* :class:`ShardIterableDataset`: reads whole groups of shards, shuffles
  within them, splits the epoch across DataLoader workers and distributed
  ranks without overlap, and yields ready batches (use ``batch_size=None``).

Both are safe with ``num_workers > 0``: they pickle as the store's path and
each worker opens the store itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt

from gigapatch.errors import check_int, check_seed
from gigapatch.feed.preprocess import Preprocess, check_preprocess
from gigapatch.feed.sampling import epoch_groups, epoch_order, split_groups
from gigapatch.feed.source import ClassNames, FeedSource, Source, batch_seed

try:
    import torch
    from torch.utils.data import Dataset, IterableDataset, Sampler, get_worker_info
    from torch.utils.dlpack import from_dlpack
except ImportError as exc:  # pragma: no cover - exercised only without torch
    raise ImportError(
        "gigapatch.feed.torch needs PyTorch: pip install 'gigapatch[torch]'"
    ) from exc

__all__ = ["PatchDataset", "ShardIterableDataset", "ShardSampler", "distributed_rank"]

#: An item of :class:`PatchDataset`: (patch, label, source index[, store index]).
Item = tuple[torch.Tensor, int, int] | tuple[torch.Tensor, int, int, int]
#: A batch of :class:`ShardIterableDataset`: (images, labels, sources[, store indices]).
Batch = tuple[torch.Tensor, ...]


def distributed_rank() -> tuple[int, int]:
    """(rank, world_size) of ``torch.distributed`` when it is initialized, else (0, 1)."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def to_torch(array: Any) -> torch.Tensor:
    """A NumPy array (no copy) or a CuPy array (DLPack, stays on its device) as a tensor."""
    if isinstance(array, np.ndarray):
        return torch.from_numpy(array)
    return from_dlpack(array)


def _readers() -> int:
    """Processes reading at once: the DataLoader's workers, or 1 outside a worker."""
    info = get_worker_info()
    return 1 if info is None else max(1, info.num_workers)


def _ranks(rank: int | None, world_size: int | None) -> tuple[int, int]:
    auto_rank, auto_world = distributed_rank()
    world = auto_world if world_size is None else check_int("world_size", world_size)
    return (auto_rank if rank is None else check_int("rank", rank, minimum=0)), world


class PatchDataset(ClassNames, Dataset[Item]):
    """Map-style dataset: item ``i`` is ``(patch, label, source index)`` of the ``i``-th patch.

    Parameters
    ----------
    source
        A store, a selection (``store.select(...)``) or a store path.
    preprocess
        A :class:`~gigapatch.feed.Preprocess` (default: none, uint8 HWC tensors).
    seed
        Seeds the augmentation of each fetched batch (with the epoch and its
        first patch).
    with_index
        Append the store index to each item.
    decode_threads
        Threads decoding the JPEG chunks of a batch (a JPEG store). Default:
        the CPUs divided among the DataLoader's workers (all of them without
        workers).

    Attributes
    ----------
    classes, class_to_idx
        Class names (label k is ``classes[k]``) and name to label, as
        torchvision's ``ImageFolder``; empty when the store records none.
    """

    def __init__(
        self,
        source: Source,
        *,
        preprocess: Preprocess | None = None,
        seed: int = 0,
        with_index: bool = False,
        decode_threads: int | None = None,
    ) -> None:
        self.source = FeedSource(source, decode_threads=decode_threads)
        self.preprocess = check_preprocess(preprocess)
        self.seed = check_seed(seed)
        self.with_index = with_index
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.source)

    def set_epoch(self, epoch: int) -> None:
        """Use the augmentations of ``epoch`` (call before creating the epoch's iterator)."""
        self.epoch = check_int("epoch", epoch, minimum=0)

    def __getitem__(self, index: int) -> Item:
        return self.__getitems__([index])[0]

    def __getitems__(self, positions: list[int]) -> list[Item]:
        """Fetch a DataLoader batch in one read (patches grouped by shard file)."""
        store_indices = self.source.indices[np.asarray(positions, dtype=np.int64)]
        images = self.source.read(store_indices, share=_readers())
        if self.preprocess is not None and len(store_indices):
            rng = batch_seed(self.seed, self.epoch, store_indices[0])
            images = self.preprocess(images, rng)
        tensors = to_torch(images)
        labels = self.source.labels(store_indices).tolist()
        slides = self.source.slides(store_indices).tolist()
        items: list[Item] = []
        for k, index in enumerate(store_indices.tolist()):
            item = (tensors[k], labels[k], slides[k])
            items.append((*item, index) if self.with_index else item)
        return items


class ShardSampler(Sampler[int]):
    """Positions of a :class:`PatchDataset` in a shard-aware shuffled order, per rank.

    A drop-in for ``DistributedSampler`` (``set_epoch`` included): each rank
    gets an equal (±1), disjoint part of the epoch; consecutive positions
    come from the same ``buffer_shards`` shards, so batches read few files.
    """

    def __init__(
        self,
        dataset: PatchDataset,
        *,
        shuffle: bool = True,
        seed: int = 0,
        buffer_shards: int = 2,
        rank: int | None = None,
        world_size: int | None = None,
    ) -> None:
        self.source = dataset.source
        self.shuffle, self.seed = shuffle, check_seed(seed)
        self.buffer_shards = check_int("buffer_shards", buffer_shards)
        self.rank, self.world_size = _ranks(rank, world_size)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Draw the order of ``epoch``."""
        self.epoch = check_int("epoch", epoch, minimum=0)

    def _order(self) -> np.ndarray:
        return epoch_order(
            self.source.indices, self.source.shard_size, shuffle=self.shuffle, seed=self.seed,
            epoch=self.epoch, buffer_shards=self.buffer_shards, rank=self.rank,
            world_size=self.world_size,
        )

    def __iter__(self) -> Iterator[int]:
        # the selection's indices are sorted: a store index's position is a binary search away
        return iter(np.searchsorted(self.source.indices, self._order()).tolist())

    def __len__(self) -> int:
        n = len(self.source)
        return (self.rank + 1) * n // self.world_size - self.rank * n // self.world_size


class ShardIterableDataset(ClassNames, IterableDataset[Batch]):
    """Batches read a shuffle buffer of whole shards at a time; use ``DataLoader(batch_size=None)``.

    Yields ``(images, labels, sources)`` tensors (and store indices with
    ``with_index``). The epoch's order comes from ``(seed, epoch)`` (see
    :mod:`gigapatch.feed.sampling`); ranks and DataLoader workers read
    disjoint parts of it, which together hold every patch once.

    Parameters
    ----------
    source
        A store, a selection (``store.select(...)``) or a store path.
    batch_size
        Patches per batch (each worker's last batch may be smaller).
    shuffle, seed
        Shuffle shards and patches within each buffer, reproducibly.
    buffer_shards
        Shards mixed together (memory: this many shards of decoded patches).
    drop_last
        Drop each worker's final short batch.
    preprocess
        A :class:`~gigapatch.feed.Preprocess` run on every batch (in the worker).
    rank, world_size
        Distributed rank; default: from ``torch.distributed`` if initialized.
    with_index
        Also yield the store indices of each batch.
    decode_threads
        As for :class:`PatchDataset`.

    Attributes
    ----------
    classes, class_to_idx
        As for :class:`PatchDataset`.
    """

    def __init__(
        self,
        source: Source,
        batch_size: int = 64,
        *,
        shuffle: bool = True,
        seed: int = 0,
        buffer_shards: int = 2,
        drop_last: bool = False,
        preprocess: Preprocess | None = None,
        rank: int | None = None,
        world_size: int | None = None,
        with_index: bool = False,
        decode_threads: int | None = None,
    ) -> None:
        self.source = FeedSource(source, decode_threads=decode_threads)
        self.batch_size = check_int("batch_size", batch_size)
        self.shuffle, self.seed = shuffle, check_seed(seed)
        self.buffer_shards = check_int("buffer_shards", buffer_shards)
        self.drop_last, self.with_index = drop_last, with_index
        self.preprocess = check_preprocess(preprocess)
        self.rank, self.world_size = _ranks(rank, world_size)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Use the order of ``epoch`` (call before iterating; workers get it when they start)."""
        self.epoch = check_int("epoch", epoch, minimum=0)

    def groups(self, worker: int = 0, num_workers: int = 1) -> list[np.ndarray]:
        """The store-index groups one worker of this rank reads this epoch."""
        groups = epoch_groups(
            self.source.indices, self.source.shard_size, shuffle=self.shuffle, seed=self.seed,
            epoch=self.epoch, buffer_shards=self.buffer_shards,
        )
        return split_groups(
            groups, rank=self.rank, world_size=self.world_size, worker=worker,
            num_workers=num_workers,
        )

    def __iter__(self) -> Iterator[Batch]:
        info = get_worker_info()
        worker, num_workers = (0, 1) if info is None else (info.id, info.num_workers)
        pending = np.zeros(0, np.int64)
        size = self.batch_size
        for group in self.groups(worker, num_workers):
            pending = np.concatenate([pending, group])
            while len(pending) >= size:
                yield self._batch(pending[:size], info is not None)
                pending = pending[size:]
        if len(pending) and not self.drop_last:
            yield self._batch(pending, info is not None)

    def _batch(self, indices: npt.NDArray[np.int64], in_worker: bool) -> Batch:
        # in a DataLoader worker, batches are made in shared memory: sending them to the
        # main process then costs no copy
        shape, dtype = (len(indices), *self.source.store.patch_shape), self.source.dtype
        images = self.source.read(indices, out=_buffer(shape, dtype, in_worker),
                                  share=_readers())
        if self.preprocess is not None:
            rng = batch_seed(self.seed, self.epoch, indices[0])
            out = _buffer(*self.preprocess.output_spec(shape, dtype), in_worker)
            images = self.preprocess(images, rng, out=out)
        batch = (
            to_torch(images),
            torch.from_numpy(self.source.labels(indices)),
            torch.from_numpy(self.source.slides(indices)),
        )
        return (*batch, torch.from_numpy(indices.copy())) if self.with_index else batch


def _buffer(
    shape: tuple[int, ...], dtype: np.dtype[Any], shared: bool
) -> npt.NDArray[Any] | None:
    """A new host array; in shared memory (a torch tensor's) when ``shared``."""
    if not shared:
        return None
    tensor_dtype = torch.from_numpy(np.zeros(0, dtype)).dtype
    buffer: npt.NDArray[Any] = torch.empty(shape, dtype=tensor_dtype).share_memory_().numpy()
    return buffer
