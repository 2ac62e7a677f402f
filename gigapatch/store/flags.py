"""Setting ``done`` flags durably: the driver's last step for a shard."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import zarr
from zarr.storage import LocalStore

from gigapatch.store.columns import array_node
from gigapatch.store.durable import fsync_dir

__all__ = ["set_flag", "set_flags"]


def set_flag(group: zarr.Group, index: int, value: int, *, sync: bool = True) -> None:
    """Set the ``done`` value of shard ``index`` (0: not done; else the shard's digest).

    zarr replaces the flag's small file at once (a temporary file renamed over
    it); with ``sync`` the file and its folder are then synced, so a flag on
    disk after a power cut names a shard whose bytes (synced before) are there.
    """
    set_flags(group, {index: value}, sync=sync)


def set_flags(group: zarr.Group, values: Mapping[int, int], *, sync: bool = True) -> None:
    """Set the ``done`` values of several shards (``{index: value}``) as :func:`set_flag`
    does, with one sync of the flags' folder for all of them."""
    if not values:
        return
    done = array_node(group, "done")
    indices = np.fromiter(values, np.int64, len(values))
    if len(indices) == 1:
        done[int(indices[0])] = next(iter(values.values()))
    else:
        done.set_coordinate_selection(indices, np.fromiter(values.values(), done.dtype,
                                                           len(values)))
    store = done.store
    if not sync or not isinstance(store, LocalStore):
        return
    folders: set[Path] = set()
    for index in values:
        path = Path(store.root) / done.path / done.metadata.encode_chunk_key((index,))
        if path.exists():  # a flag set to 0 (the fill value) is removed, not written
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        folders.add(path.parent)
    for folder in sorted(folders):
        if folder.exists():
            fsync_dir(folder)
