"""Setting ``done`` flags durably: the driver's last step for a shard."""

from __future__ import annotations

import os
from pathlib import Path

import zarr
from zarr.storage import LocalStore

from gigapatch.store.columns import array_node
from gigapatch.store.durable import fsync_dir

__all__ = ["set_flag"]


def set_flag(group: zarr.Group, index: int, value: int, *, sync: bool = True) -> None:
    """Set the ``done`` value of shard ``index`` (0: not done; else the shard's digest).

    zarr replaces the flag's small file at once (a temporary file renamed over
    it); with ``sync`` the file and its folder are then synced, so a flag on
    disk after a power cut names a shard whose bytes (synced before) are there.
    """
    done = array_node(group, "done")
    done[index] = value
    store = done.store
    if not sync or not isinstance(store, LocalStore):
        return
    path = Path(store.root) / done.path / done.metadata.encode_chunk_key((index,))
    if path.exists():  # a flag set to 0 (the fill value) is removed, not written
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    if path.parent.exists():
        fsync_dir(path.parent)
