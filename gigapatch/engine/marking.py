"""The driver's side of writing: marking shards done once their files are durable.

A shard task returns the size of its shard's file, or — in the driver's own
process — the ticket of the writer thread that writes it (:mod:`.writing`).
:class:`DoneMarker` marks a shard done only once that size is known, which
is once the file is synced and renamed and the rename synced. Then it checks
the driver sees that file (:func:`~gigapatch.engine.workers.check_shard_seen`),
that the run still holds the store's lock, records the shard's failed
patches, and sets the flags of every shard ready at that moment in one go
(:func:`~gigapatch.store.mark_done`: each flag holds the digest of its file
as read back from the disk; one sync of the flags' folder for all of them).

All of that runs on one thread of the driver's process, the only one that
sets flags, and never on the thread that hands tasks out: a flag's sync waits
for the disk (tens of ms while shards are being written), and a Dask
scheduler starts the next task only once its callback for the last one has
returned. An error there (a lost lock, a writer's full disk) is raised in the
driver at the next task that returns, or when the run waits for its last shards.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager

import zarr

from gigapatch.engine.workers import check_shard_seen
from gigapatch.engine.writing import ShardWriter
from gigapatch.store import ShardLayout, mark_done
from gigapatch.store.columns import array_node
from gigapatch.store.lock import StoreLock
from gigapatch.store.status import record_failures

__all__ = ["DoneMarker", "Failures", "Finished", "writing"]

_LOG = logging.getLogger("gigapatch.engine.run")

#: What a shard task reports of the patches it could not read: (row in the shard, source, why).
Failures = list[tuple[int, int, str]]
#: A shard whose file is durable: its index, its file's size (None: written through zarr), and
#: its failed patches.
Finished = tuple[int, int | None, Failures]
_Ready = tuple[int, int | Future[int | None] | None, Failures]


class DoneMarker:
    """Marks the shards of one run done, on a thread of the driver, as their files become
    durable.

    Parameters
    ----------
    group
        The store.
    lock
        The run's writer lock, checked before every flag set.
    shard_size, total
        Patches per shard and in the plan.
    written
        Patches of shards already done (a resumed run).
    progress
        Called as ``progress(patches_done, total)`` after each shard marked done
        (on the marking thread).
    sync
        Sync the flags and their folder.
    """

    def __init__(self, group: zarr.Group, lock: StoreLock, *, shard_size: int, total: int,
                 written: int, progress: Callable[[int, int], None] | None, sync: bool) -> None:
        self._group, self._lock, self._sync = group, lock, sync
        self._layout = ShardLayout.of(array_node(group, "images"))
        self._shard_size, self._total, self.written = shard_size, total, written
        self._progress = progress
        self._ready: queue.SimpleQueue[_Ready | None] = queue.SimpleQueue()
        self._cond = threading.Condition()
        self._added = self._handled = 0
        self._error: BaseException | None = None
        self._skip_failed = False
        self._thread = threading.Thread(target=self._loop, name="gigapatch-marker", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ the driver's side

    def add(self, index: int, result: int | Future[int | None] | None,
            failures: Failures) -> None:
        """Shard ``index``'s task returned ``result``: its file's size, or the writer's ticket
        for it; it is marked done once that size is known.

        Raises
        ------
        BaseException
            The first error of the marking thread, or of a ticket (the run stops).
        """
        self._raise()
        with self._cond:
            self._added += 1
        if isinstance(result, Future):
            result.add_done_callback(lambda ticket: self._ready.put((index, ticket, failures)))
        else:
            self._ready.put((index, result, failures))

    def wait_all(self, *, skip_failed: bool = False) -> None:
        """Wait until every shard added is marked done (with ``skip_failed``, a shard whose
        write failed is left out rather than stopping the marking), then stop the thread.

        Raises
        ------
        BaseException
            As :meth:`add`.
        """
        with self._cond:
            self._skip_failed = skip_failed
            while self._handled < self._added and self._error is None:
                self._cond.wait()
        self.stop()
        self._raise()

    def stop(self) -> None:
        """Stop the marking thread: it finishes the batch it marks, and marks nothing more."""
        with self._cond:
            if self._error is None:
                self._error = _Stopped()
        self._ready.put(None)
        self._thread.join()

    def _raise(self) -> None:
        with self._cond:
            if self._error is not None and not isinstance(self._error, _Stopped):
                raise self._error

    # ------------------------------------------------------------------ the marking thread

    def _loop(self) -> None:
        while True:
            first = self._ready.get()
            batch = [first]
            while not self._ready.empty():  # every shard ready now: one batch
                batch.append(self._ready.get())
            if None in batch:
                return
            with self._cond:
                if self._error is not None:
                    return
                skip_failed = self._skip_failed
            try:
                self._finish([item for item in batch if item is not None], skip_failed)
            except BaseException as exc:  # raised in the driver by add() or wait_all()
                with self._cond:
                    self._error = self._error or exc
                    self._cond.notify_all()
                return
            with self._cond:
                self._handled += len(batch)
                self._cond.notify_all()

    def _finish(self, batch: list[_Ready], skip_failed: bool) -> None:
        ready: list[Finished] = []
        for index, result, failures in batch:
            if isinstance(result, Future):
                error = None if result.cancelled() else result.exception()
                if result.cancelled() or (error is not None and skip_failed):
                    continue
                if error is not None:
                    raise error
                result = result.result()
            ready.append((index, result, failures))
        if not ready:
            return
        for index, nbytes, _ in ready:
            check_shard_seen(self._layout, index, nbytes)
        self._lock.check()  # still this run's store: another run may not have broken the lock
        for index, _, failures in ready:
            if failures:  # before the flag: a shard marked done has its status written
                reasons: dict[int, list[str]] = {}
                for _, k, why in failures:
                    reasons.setdefault(k, []).append(why)
                record_failures(self._group,
                                [index * self._shard_size + row for row, _, _ in failures],
                                reasons, sync=self._sync)
                _LOG.warning("shard %d: %d patches failed: %s", index, len(failures),
                             failures[0][2])
        mark_done(self._group, [index for index, _, _ in ready], sync=self._sync)
        for index, _, _ in ready:
            self.written += min(self._shard_size, self._total - index * self._shard_size)
            _LOG.debug("shard %d done: %d of %d patches", index, self.written, self._total)
            if self._progress is not None:
                self._progress(self.written, self._total)


class _Stopped(Exception):
    """The marking thread was stopped (not an error of the run)."""


@contextmanager
def writing(marker: DoneMarker, writer: ShardWriter | None) -> Iterator[None]:
    """Run the tasks of a run (the ``with`` body), then wait for the last shards' flags.

    If the body fails with an error (a task's, a lost lock) while the writer
    works, the shards already handed to it are written and marked done before
    the error goes on — they are decoded already, and ``--resume`` then has
    less to do — unless the writer itself failed: then nothing more is written
    or marked. Ctrl-C (or ``SIGTERM``) stops sooner: the shards being written
    are finished, the queued ones dropped, and no more flags set. Either way the
    writer and the marking thread are stopped before this returns, so nothing
    is written after the run (and its lock) ends.
    """
    try:
        yield
        marker.wait_all()
    except Exception:
        if writer is not None and writer.failed is None:
            try:
                writer.close()  # the shards handed over are written
                marker.wait_all(skip_failed=True)
            except Exception as exc:  # the run's own error is the one to raise
                _LOG.debug("after the run failed, marking the shards written failed too: %s",
                           exc)
        raise
    finally:
        if writer is not None:
            writer.close(cancel=True)
        marker.stop()
