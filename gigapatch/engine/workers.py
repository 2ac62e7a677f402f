"""Paths that hold on every worker: what tasks carry, and the checks on both ends.

A task may run in another process, on another machine, in another working
directory. So the driver makes every path absolute before it builds a task
(sources as :class:`Slide` objects that reopen by absolute path, the output
as an absolute folder); a task that cannot open a source or does not see the
output folder fails with a line naming its worker and the path; and the
driver marks a shard done only once it sees the shard's file with the size
the worker wrote — a worker that wrote somewhere else (a disk of its own)
cannot leave a ``done`` flag over a missing shard.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import zarr
from zarr.storage import LocalStore

from gigapatch.errors import GigapatchError, SlideError, StoreError
from gigapatch.sources import Slide
from gigapatch.sources.slide import Reopen
from gigapatch.store import ShardLayout

__all__ = ["TaskSlides", "check_output_seen", "check_shard_seen", "worker_name"]

_HINT = "not on a filesystem this worker sees?"


def worker_name() -> str:
    """Who runs this code: ``"worker tcp://…"`` inside a ``distributed`` worker, else
    ``"host NAME (pid N)"``."""
    try:
        from distributed import get_worker

        return f"worker {get_worker().address}"
    except (ImportError, ValueError):  # not installed, or not inside a worker
        return f"host {socket.gethostname()} (pid {os.getpid()})"


class TaskSlides:
    """The sources of a run as its tasks carry them.

    In the driver's process the open slides are used as they are. Pickled for
    another process, it carries each slide's reopen recipe (an absolute path
    and options) and reopens them inside the task, when :meth:`open` is
    called, so a source the worker cannot open is an error naming the worker
    and the path rather than a failure to unpickle the task.
    """

    def __init__(self, slides: Sequence[Slide]) -> None:
        self._slides: list[Slide] | None = list(slides)
        self._recipes: list[tuple[str, Reopen]] = []

    def __reduce__(self) -> tuple[Any, tuple[list[tuple[str, Reopen]]]]:
        if self._slides is None:
            return (_unopened, (self._recipes,))
        return (_unopened, ([(s.path or s.name, s.__reduce__()) for s in self._slides],))

    def open(self) -> list[Slide]:
        """The slides, reopened here if this is another process.

        Raises
        ------
        SlideError
            A source cannot be opened here (the message names the worker and
            the path).
        """
        if self._slides is None:
            self._slides = [_reopen(where, recipe) for where, recipe in self._recipes]
        return self._slides


def _unopened(recipes: list[tuple[str, Reopen]]) -> TaskSlides:
    sent = TaskSlides([])
    sent._slides, sent._recipes = None, recipes
    return sent


def _reopen(where: str, recipe: Reopen) -> Slide:
    make, args = recipe
    try:
        return make(*args)
    except (GigapatchError, OSError) as exc:
        raise SlideError(
            f"{worker_name()} cannot open source {where!r} ({exc}): {_HINT}"
        ) from None


def _array_folder(array: zarr.Array[Any]) -> Path | None:
    store = array.store
    if not isinstance(store, LocalStore):
        return None
    return Path(store.root) / array.path


def check_output_seen(images: zarr.Array[Any]) -> None:
    """Raise unless this worker sees the output store's ``images`` array on its disk.

    Raises
    ------
    StoreError
        The array's metadata is not there (the message names the worker and the path).
    """
    folder = _array_folder(images)
    if folder is not None and not (folder / "zarr.json").is_file():
        raise StoreError(
            f"{worker_name()} cannot see the output store at {str(folder.parent)!r} "
            f"(no {str(folder / 'zarr.json')!r}): {_HINT}"
        )


def check_shard_seen(layout: ShardLayout | None, index: int, nbytes: int | None) -> None:
    """Raise unless the driver sees the file of shard ``index`` with the ``nbytes`` its
    worker wrote (nothing to check when the shard was written through zarr).

    Raises
    ------
    StoreError
        The file is missing or of another size here (the message names the shard and the
        path).
    """
    if layout is None or nbytes is None:
        return
    path = layout.path(index)
    try:
        size: int | None = os.stat(path).st_size
    except FileNotFoundError:
        size = None
    if size == nbytes:
        return
    seen = "is missing" if size is None else f"holds {size} bytes"
    raise StoreError(
        f"shard {index}: a worker wrote {nbytes} bytes to {str(path)!r}, but on the driver "
        f"({socket.gethostname()}) that file {seen}; do the workers write the output store "
        f"{str(layout.folder.parent)!r} on a filesystem the driver sees? The shard is not "
        "marked done"
    )
