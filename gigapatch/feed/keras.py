"""A Keras 3 ``PyDataset`` over a patch store (extra ``keras``: ``pip install 'gigapatch[keras]'``).

Keras needs a backend: with the ``torch`` extra, set ``KERAS_BACKEND=torch``
before importing keras (or gigapatch.feed.keras).
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np

from gigapatch.errors import InvalidArgumentError, check_int, check_seed
from gigapatch.feed.preprocess import Preprocess, check_preprocess
from gigapatch.feed.sampling import epoch_order
from gigapatch.feed.source import ClassNames, FeedSource, Source, batch_seed
from gigapatch.kernels import to_host

try:
    import keras
except ImportError as exc:  # pragma: no cover - exercised only without keras
    raise ImportError(
        "gigapatch.feed.keras needs Keras 3 and a backend: pip install 'gigapatch[keras,torch]' "
        f"and set KERAS_BACKEND=torch ({exc})"
    ) from exc

__all__ = ["XCEPTION", "Labels", "PatchSequence"]

#: Xception's preprocessing: float32 in [-1, 1] (``keras.applications.xception.preprocess_input``).
XCEPTION = Preprocess(normalize="xception")
#: How labels are given to the model: one-hot float32 rows or int32 class indices.
Labels = Literal["onehot", "int"]


class PatchSequence(ClassNames, keras.utils.PyDataset):
    """``(x, y)`` batches of a store for ``model.fit``, in a shard-aware shuffled order.

    Batch ``i`` of an epoch is positions ``i·batch_size ...`` of the order of
    :func:`gigapatch.feed.sampling.epoch_order`; the order changes at every
    epoch end, reproducibly from ``seed``. Each process keeps the shard index
    it needs, so ``workers`` threads or processes (``use_multiprocessing``)
    read in parallel.

    Parameters
    ----------
    source
        A store, a selection (``store.select(...)``) or a store path.
    batch_size
        Patches per batch (the last may be smaller unless ``drop_last``).
    labels
        ``"onehot"`` (float32 (n, k), for ``categorical_crossentropy``) or
        ``"int"`` (int32 (n,), for ``sparse_categorical_crossentropy``).
    num_classes
        k for one-hot labels (default: largest label in the store + 1).
    preprocess
        Default :data:`XCEPTION`: float32 HWC in [-1, 1]. Any
        :class:`~gigapatch.feed.Preprocess` (augmentation included).
    shuffle, seed, buffer_shards
        As for :class:`gigapatch.feed.torch.ShardIterableDataset`.
    drop_last
        Leave out the final short batch.
    workers, use_multiprocessing, max_queue_size
        Passed to ``keras.utils.PyDataset``.
    decode_threads
        Threads decoding the JPEG chunks of a batch (a JPEG store); default:
        the CPUs divided among the ``workers``.

    Attributes
    ----------
    classes, class_to_idx
        Class names (label k is ``classes[k]``) and name to label, as
        torchvision's ``ImageFolder``; empty when the store records none.
    """

    def __init__(
        self,
        source: Source,
        batch_size: int = 32,
        *,
        labels: Labels = "onehot",
        num_classes: int | None = None,
        preprocess: Preprocess | None = XCEPTION,
        shuffle: bool = True,
        seed: int = 0,
        buffer_shards: int = 2,
        drop_last: bool = False,
        workers: int = 1,
        use_multiprocessing: bool = False,
        max_queue_size: int = 10,
        decode_threads: int | None = None,
    ) -> None:
        super().__init__(
            workers=workers, use_multiprocessing=use_multiprocessing, max_queue_size=max_queue_size
        )
        self.source = FeedSource(source, decode_threads=decode_threads)
        self._readers = max(1, int(workers or 1))  # threads or processes reading at once
        self.batch_size = check_int("batch_size", batch_size)
        if labels not in get_args(Labels):
            raise InvalidArgumentError(
                f"labels must be one of {', '.join(get_args(Labels))}; got {labels!r}"
            )
        self.labels = labels
        self.num_classes = self.source.num_classes
        if num_classes is not None:
            self.num_classes = check_int("num_classes", num_classes)
        self.preprocess = check_preprocess(preprocess)
        self.shuffle, self.seed = shuffle, check_seed(seed)
        self.buffer_shards = check_int("buffer_shards", buffer_shards)
        self.drop_last = drop_last
        found = self.source.labels(self.source.indices)
        if len(found) and (found.min() < 0 or found.max() >= self.num_classes):
            raise InvalidArgumentError(
                f"labels of the patches must be in [0, {self.num_classes - 1}] (num_classes "
                f"{self.num_classes}); got labels from {found.min()} to {found.max()} "
                "(-1: the store has no labels; extract with labels=... or --labels-from-dirs)"
            )
        self.epoch = 0
        self._order = self._draw()

    def _draw(self) -> np.ndarray:
        return epoch_order(
            self.source.indices, self.source.shard_size, shuffle=self.shuffle, seed=self.seed,
            epoch=self.epoch, buffer_shards=self.buffer_shards,
        )

    def set_epoch(self, epoch: int) -> None:
        """Use the order of ``epoch``."""
        self.epoch = check_int("epoch", epoch, minimum=0)
        self._order = self._draw()

    def on_epoch_end(self) -> None:
        """Keras calls this after each epoch: draw the next epoch's order."""
        self.set_epoch(self.epoch + 1)

    def __len__(self) -> int:
        n = len(self._order)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def batch_indices(self, index: int) -> np.ndarray:
        """Store indices of batch ``index`` of the current epoch."""
        if not 0 <= index < len(self):
            raise IndexError(f"batch index must be in [0, {len(self) - 1}]; got {index}")
        return self._order[index * self.batch_size : (index + 1) * self.batch_size]

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        indices = self.batch_indices(index)
        x = self.source.read(indices, share=self._readers)
        if self.preprocess is not None:
            x = self.preprocess(x, batch_seed(self.seed, self.epoch, indices[0]))
            x = to_host(x)  # CuPy (device="gpu"): Keras takes host arrays
        y = self.source.labels(indices)
        if self.labels == "onehot":
            return x, np.eye(self.num_classes, dtype=np.float32)[y]
        return x, y.astype(np.int32)
