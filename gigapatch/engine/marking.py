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
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
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


class DoneMarker:
    """Marks the shards of one run done, in the driver, as their files become durable.

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
        Called as ``progress(patches_done, total)`` after each shard marked done.
    sync
        Sync the flags and their folder.
    """

    def __init__(self, group: zarr.Group, lock: StoreLock, *, shard_size: int, total: int,
                 written: int, progress: Callable[[int, int], None] | None, sync: bool) -> None:
        self._group, self._lock, self._sync = group, lock, sync
        self._layout = ShardLayout.of(array_node(group, "images"))
        self._shard_size, self._total, self.written = shard_size, total, written
        self._progress = progress
        self._pending: dict[int, tuple[Future[int | None], Failures]] = {}

    def add(self, index: int, result: int | Future[int | None] | None,
            failures: Failures) -> None:
        """Shard ``index``'s task returned ``result``: its file's size, or the writer's ticket
        for it. Marks it, and every shard whose ticket completed meanwhile, done."""
        if isinstance(result, Future):
            self._pending[index] = (result, failures)
        else:
            self._finish([(index, result, failures)])
        self.settle()

    def settle(self, *, skip_failed: bool = False) -> None:
        """Mark done every shard whose ticket has completed.

        Raises
        ------
        BaseException
            The error of a ticket (a writer's: a full disk, …); no shard is
            marked then. With ``skip_failed`` the failed ones are left out instead.
        """
        ready: list[Finished] = []
        for index, (ticket, failures) in list(self._pending.items()):
            if not ticket.done():
                continue
            if ticket.cancelled():  # dropped by a writer closed on an interrupt
                del self._pending[index]
                continue
            error = ticket.exception()
            if error is not None and not skip_failed:
                raise error
            del self._pending[index]
            if error is None:
                ready.append((index, ticket.result(), failures))
        if ready:
            self._finish(ready)

    def wait_all(self) -> None:
        """Wait for every ticket and mark its shard done as it completes."""
        while self._pending:
            wait([ticket for ticket, _ in self._pending.values()], return_when=FIRST_COMPLETED)
            self.settle()

    def _finish(self, ready: list[Finished]) -> None:
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


@contextmanager
def writing(marker: DoneMarker, writer: ShardWriter | None) -> Iterator[None]:
    """Run the tasks of a run (the ``with`` body), then wait for the writer's last shards.

    If the body fails with an error (a task's, a lost lock) while the writer
    works, the shards already handed to it are written and marked done before
    the error goes on — they are decoded already, and ``--resume`` then has
    less to do — unless the writer itself failed: then nothing more is written
    or marked. Ctrl-C (or ``SIGTERM``) stops sooner: the shards being written
    are finished, the queued ones dropped, and no more flags set. Either way the
    writer is closed before this returns, so no shard file is written after the
    run (and its lock) ends.
    """
    try:
        yield
        marker.wait_all()
    except Exception:
        if writer is not None and writer.failed is None:
            try:
                writer.close()  # the shards handed over are written
                marker.settle(skip_failed=True)
            except Exception as exc:  # the run's own error is the one to raise
                _LOG.debug("after the run failed, marking the shards written failed too: %s",
                           exc)
        raise
    finally:
        if writer is not None:
            writer.close(cancel=True)
