"""What every loader reads from: a store or a selection of it, reopened in each process."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import numpy.typing as npt

from gigapatch.errors import InvalidArgumentError, StoreError, check_int
from gigapatch.store import PatchSelection, PatchStore
from gigapatch.store.shardreader import default_threads

__all__ = ["ClassNames", "FeedSource", "Source", "batch_seed", "check_threads"]

Source = PatchStore | PatchSelection | str | os.PathLike[str]
Indices = npt.NDArray[np.int64]


class FeedSource:
    """A complete store (or a selection of it) with its per-patch arrays loaded once.

    It pickles as the store's path and the selected indices; a DataLoader
    worker or a Keras worker process that unpickles it opens the store and
    its files itself.

    Parameters
    ----------
    source
        A :class:`~gigapatch.PatchStore`, a :class:`~gigapatch.store.PatchSelection`
        (from ``store.select(...)``) or a store's path.
    decode_threads
        Threads decoding the JPEG chunks of a read (a JPEG store; lossless
        chunks are decoded on the reading thread). Default: the CPUs this
        process may use, shared among the readers running at once (see
        :meth:`read`).
    """

    def __init__(self, source: Source, *, decode_threads: int | None = None) -> None:
        self.decode_threads = check_threads(decode_threads)
        if isinstance(source, PatchSelection):
            store, indices = source.store, source.indices
        elif isinstance(source, PatchStore):
            store, indices = source, None
        elif isinstance(source, str | os.PathLike):
            store, indices = PatchStore(source), None
        else:
            raise InvalidArgumentError(
                "source must be a PatchStore, a PatchSelection or a store path; got "
                f"{type(source).__name__}"
            )
        if not store.complete:
            raise StoreError(
                f"store {str(store.path)!r} is incomplete ({store.shards_done}/{store.n_shards} "
                "shards done): finish the extraction first"
            )
        self._open(store, indices)

    def _open(self, store: PatchStore, indices: npt.ArrayLike | None) -> None:
        self.store = store
        self.selected = indices is not None
        # patches that failed to extract (their slots hold no data) are never fed
        self.indices = store.ok_indices() if indices is None else np.asarray(indices, np.int64)
        if indices is not None and store.failed_count:  # even from select(include_failed=True)
            self.indices = self.indices[store.status[self.indices] == 0]
        self.all_labels = store.label
        self.all_slides = store.slide
        self.shard_size = store.shard_size

    def __getstate__(self) -> dict[str, Any]:
        return {"path": str(self.store.path), "indices": self.indices if self.selected else None,
                "decode_threads": self.decode_threads}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.decode_threads = state.get("decode_threads")
        self._open(PatchStore(state["path"]), state["indices"])

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def num_classes(self) -> int:
        """Largest label in the store + 1 (labels are 0..k-1; -1 means none)."""
        return int(self.all_labels.max()) + 1 if len(self.all_labels) else 0

    @property
    def classes(self) -> list[str]:
        """Class names, label k being ``classes[k]`` (as torchvision's ``ImageFolder``);
        empty when the store records none."""
        return list(self.store.class_names)

    @property
    def class_to_idx(self) -> dict[str, int]:
        """Class name to label (as torchvision's ``ImageFolder``)."""
        return {name: k for k, name in enumerate(self.store.class_names)}

    @property
    def dtype(self) -> np.dtype[Any]:
        """dtype of the patches."""
        return np.dtype(self.store.images.dtype)

    def read(
        self, store_indices: Indices, out: npt.NDArray[Any] | None = None, *, share: int = 1
    ) -> npt.NDArray[Any]:
        """The patches at ``store_indices`` (in that order), (n, h, w, C) on the host.

        JPEG chunks are decoded by ``decode_threads`` threads, by default the
        CPUs divided by ``share``: the readers running at once (DataLoader
        workers, Keras workers), so that together they use each CPU once.
        """
        threads = self.decode_threads or default_threads(share)
        return self.store.reader.read(store_indices, out, threads=threads)

    def labels(self, store_indices: Indices) -> Indices:
        """Labels of ``store_indices`` as int64."""
        return self.all_labels[store_indices].astype(np.int64)

    def slides(self, store_indices: Indices) -> Indices:
        """Source indices of ``store_indices`` as int64."""
        return self.all_slides[store_indices].astype(np.int64)


def check_threads(decode_threads: int | None) -> int | None:
    """``decode_threads`` checked: None (the default) or a positive integer."""
    return None if decode_threads is None else check_int("decode_threads", decode_threads)


class ClassNames:
    """``classes`` and ``class_to_idx`` of a loader, as torchvision's ``ImageFolder`` has them."""

    source: FeedSource

    @property
    def classes(self) -> list[str]:
        """Class names, label k being ``classes[k]``; empty when the store records none."""
        return self.source.classes

    @property
    def class_to_idx(self) -> dict[str, int]:
        """Class name to label."""
        return self.source.class_to_idx


def batch_seed(seed: int, epoch: int, first: int) -> np.random.Generator:
    """The augmentation generator of a batch: a function of seed, epoch and its first patch."""
    return np.random.default_rng([seed, epoch, int(first)])
