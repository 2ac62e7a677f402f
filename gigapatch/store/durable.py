"""Durable writes: files and folders that survive a power cut once a flag says they exist.

A rename is only durable once the folder holding it is synced; a file's bytes
once the file is. Every flag gigapatch sets comes after both.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

__all__ = ["atomic_write", "fsync_dir", "sync_tree"]


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Sync the folder ``path`` (its entries: names created, renamed or removed in it)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike[str], data: bytes, *, sync: bool = True) -> None:
    """Replace the file ``path`` by ``data`` at once: readers see the old bytes or the new, never
    a mix; with ``sync``, the new bytes and the rename are on disk when this returns."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        if sync:
            fh.flush()
            os.fsync(fh.fileno())
    os.replace(tmp, path)
    if sync:
        fsync_dir(path.parent)


def sync_tree(root: str | os.PathLike[str]) -> None:
    """Sync every file and folder under ``root``, and ``root`` itself (a store built aside
    before it is renamed into place)."""
    for folder, _, files in os.walk(root, topdown=False):
        for name in files:
            fd = os.open(os.path.join(folder, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(folder)
