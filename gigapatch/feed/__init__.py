"""Feed: read patch stores for training."""

from gigapatch.feed.batches import iter_batches

__all__ = ["iter_batches"]
