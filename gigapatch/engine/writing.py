"""Writing shards off the decoding threads: per process, a bounded pool of writer threads.

A shard task decodes its patches into a buffer, hands the buffer to the
:class:`ShardWriter` of its process and is done with it: a writer thread
encodes the patches, writes the shard file, syncs it, renames it into place
and syncs the rename, while the task's thread goes on decoding. A writer
never sets a ``done`` flag. It completes the shard's *ticket* (a
:class:`~concurrent.futures.Future` of the file's size) once the bytes are
durable; only the driver, after the ticket, checks the file and sets the flag.

* In the driver's process (the local ``threads`` and ``synchronous``
  schedulers) a task returns its ticket at once, and the driver marks shards
  done as their tickets complete, several at a time.
* In another process (local ``processes``, a ``distributed`` cluster) the task
  waits for its ticket before it returns, so the driver still hears of a
  shard only once its bytes are durable. On a ``distributed`` worker the task
  leaves the worker's thread pool (``secede``) while it waits, so the worker
  decodes another shard meanwhile.

Memory stays bounded: at most ``capacity`` shards wait for or are in a writer
thread, and a task handing over one more blocks until one is written
(back-pressure). Buffers are reused from shard to shard and from run to run
(first touch of fresh memory costs ~1.8 s per GiB here).

The first error of a writer thread (a full disk: :class:`~gigapatch.errors.NoSpaceError`)
stops a run's writer: the shards queued behind it are not written, and the
error is raised by their tickets and by the next hand-over.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from gigapatch.errors import StoreError

__all__ = ["ShardWriter", "WriterHandle", "joined", "leave_worker_pool", "local_writer"]

T = TypeVar("T")
Array = npt.NDArray[Any]

# ------------------------------------------------------------------ buffers, reused

_free: dict[tuple[tuple[int, ...], str], list[Array]] = {}
_free_lock = threading.Lock()
#: Free buffers kept for the next shards (beyond that, dropped): raised by each writer made to
#: what its tasks and queue hold at once.
_keep = [2 * (os.cpu_count() or 1) + 2]


def take_buffer(shape: tuple[int, ...], dtype: npt.DTypeLike) -> Array:
    """A buffer of ``shape`` and ``dtype`` (contents undefined): one given back before, else new.

    Only buffers of the latest shape asked for are kept, so a process that
    changes patch size keeps no buffers of the old one.
    """
    key = (tuple(shape), np.dtype(dtype).str)
    with _free_lock:
        if key not in _free:
            _free.clear()
            _free[key] = []
        if _free[key]:
            return _free[key].pop()
    return np.empty(shape, dtype)


def give_back(buffer: Array) -> None:
    """Return ``buffer`` (from :func:`take_buffer`) for another shard; nobody may use it after."""
    key = (tuple(buffer.shape), buffer.dtype.str)
    with _free_lock:
        kept = _free.get(key)
        if kept is not None and len(kept) < _keep[0]:
            kept.append(buffer)


# ------------------------------------------------------------------ the writer


class ShardWriter:
    """Runs shard writes on ``threads`` background threads, at most ``capacity`` at once.

    Parameters
    ----------
    threads
        Writer threads (they encode, so as many as the decoding threads).
    capacity
        Shards handed over and not yet written, at most (each holds its buffer);
        :meth:`submit` blocks while that many are.
    sticky
        After a job fails, skip the jobs still queued and refuse new ones with
        the same error (one run's writer). ``False``: every job is on its own
        (a process's writer shared by runs, whose tasks wait for their tickets).
    """

    def __init__(self, threads: int, capacity: int, *, sticky: bool = True) -> None:
        self._pool = ThreadPoolExecutor(max(1, threads), thread_name_prefix="gigapatch-writer")
        self._capacity = max(1, capacity)
        self._busy = 0
        self._cond = threading.Condition()
        self._error: BaseException | None = None
        self._closed = False
        self._sticky = sticky
        with _free_lock:  # the tasks decoding (no more than the queue) and the queue's buffers
            _keep[0] = max(_keep[0], 2 * self._capacity)

    @property
    def capacity(self) -> int:
        """Shards handed over and not yet written, at most."""
        return self._capacity

    @property
    def busy(self) -> int:
        """Shards handed over and not yet written, now."""
        with self._cond:
            return self._busy

    @property
    def failed(self) -> BaseException | None:
        """The first error of a job (a sticky writer), else None."""
        with self._cond:
            return self._error

    def _refuse(self) -> None:
        """Raise why no job is taken any more (with the lock held)."""
        if self._error is not None:
            raise self._error
        if self._closed:
            raise StoreError("the run writing this store has stopped: no shard is written "
                             "any more")

    def buffer(self, shape: tuple[int, ...], dtype: npt.DTypeLike) -> Array:
        """A buffer to decode a shard into, then hand to :meth:`submit` (or give back with
        :meth:`give_back` if the shard is not written)."""
        with self._cond:
            self._refuse()
        return take_buffer(shape, dtype)

    @staticmethod
    def give_back(buffer: Array) -> None:
        """Return a buffer of :meth:`buffer` that was not handed to :meth:`submit`."""
        give_back(buffer)

    def submit(self, job: Callable[[], T], buffer: Array | None = None) -> Future[T]:
        """Run ``job`` on a writer thread; return its ticket.

        Blocks while ``capacity`` jobs are queued or running. ``buffer`` (the
        job's data) is given back once the job has run, or when this raises:
        from the call on, the writer owns it.

        Raises
        ------
        BaseException
            The writer's first error (sticky), or a StoreError once it is closed.
        """
        try:
            with self._cond:
                while self._busy >= self._capacity and not (self._closed or self._error):
                    self._cond.wait()
                self._refuse()
                self._busy += 1
            try:
                return self._pool.submit(self._run, job, buffer)
            except BaseException:
                self._release()
                raise
        except BaseException:
            if buffer is not None:
                give_back(buffer)
            raise

    def _run(self, job: Callable[[], T], buffer: Array | None) -> T:
        try:
            with self._cond:
                if self._error is not None:  # a sticky writer that failed: skip the queue
                    raise self._error
            return job()
        except BaseException as exc:
            with self._cond:
                if self._sticky and self._error is None:
                    self._error = exc
                    self._cond.notify_all()  # wake tasks waiting to hand over: they raise it
            raise
        finally:
            if buffer is not None:
                give_back(buffer)
            self._release()

    def _release(self) -> None:
        with self._cond:
            self._busy -= 1
            self._cond.notify_all()

    def close(self, *, cancel: bool = False) -> None:
        """Take no more jobs and wait for the running ones; ``cancel``: drop the queued ones,
        else wait for them too. Tasks blocked in :meth:`submit` raise."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._pool.shutdown(wait=True, cancel_futures=cancel)


# ------------------------------------------------------------------ where a task finds it


class WriterHandle:
    """The writer a shard task hands its shard to, as tasks carry it.

    In the driver's process it is the run's :class:`ShardWriter` (``deferred``:
    the task returns its ticket at once). Pickled for another process it
    carries nothing: there the task uses that process's :func:`local_writer`
    and waits for its ticket.
    """

    def __init__(self, writer: ShardWriter | None = None) -> None:
        self._writer = writer

    def __reduce__(self) -> tuple[Any, tuple[()]]:
        return (WriterHandle, ())

    @property
    def deferred(self) -> bool:
        """Whether the task returns its ticket to the driver rather than wait for it."""
        return self._writer is not None

    @property
    def writer(self) -> ShardWriter:
        """The run's writer, or this process's."""
        return self._writer if self._writer is not None else local_writer()


_local: tuple[int, ShardWriter] | None = None
_local_lock = threading.Lock()


def _threads_here() -> int:
    """Task threads of this process: a distributed worker's, else the CPUs."""
    try:
        from distributed import get_worker

        return int(get_worker().state.nthreads)
    except (ImportError, ValueError, AttributeError):
        return os.cpu_count() or 1


def local_writer() -> ShardWriter:
    """This process's writer, for tasks that wait for their tickets (made on first use)."""
    global _local
    with _local_lock:
        if _local is None or _local[0] != os.getpid():
            threads = _threads_here()
            _local = (os.getpid(), ShardWriter(threads, threads + 1, sticky=False))
        return _local[1]


def _forked() -> None:
    """In a forked child: no thread of the parent runs here, and its locks may be held."""
    global _local, _free_lock, _local_lock
    _local, _free_lock, _local_lock = None, threading.Lock(), threading.Lock()
    _free.clear()


if hasattr(os, "register_at_fork"):  # not on Windows (no fork there)
    os.register_at_fork(after_in_child=_forked)


@contextmanager
def joined() -> Iterator[list[threading.Thread]]:
    """A list to put threads on, each joined on leaving the ``with`` (a replaced store's
    deletion, which runs while the new store is written)."""
    threads: list[threading.Thread] = []
    try:
        yield threads
    finally:
        for thread in threads:
            thread.join()


def leave_worker_pool() -> None:
    """On a ``distributed`` worker, leave its thread pool (it starts another task meanwhile);
    elsewhere, nothing."""
    try:
        from distributed import get_worker, secede
    except ImportError:
        return
    try:
        get_worker()
    except ValueError:  # not inside a worker
        return
    secede()
