"""Feed: read patch stores for training.

``gigapatch.feed`` itself imports neither PyTorch nor Keras: the loaders live in
:mod:`gigapatch.feed.torch` (extra ``torch``) and :mod:`gigapatch.feed.keras`
(extra ``keras``), imported on first use.
"""

from gigapatch.feed.batches import iter_batches
from gigapatch.feed.preprocess import Preprocess
from gigapatch.feed.sampling import epoch_groups, epoch_order, split_groups
from gigapatch.store import ShardReader  # re-exported: documented here, lives with the store

__all__ = [
    "Preprocess",
    "ShardReader",
    "epoch_groups",
    "epoch_order",
    "iter_batches",
    "split_groups",
]
