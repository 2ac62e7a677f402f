"""Running shard tasks: Dask's local schedulers or a ``distributed`` cluster.

Whatever runs the tasks, ``on_done(key, result)`` is called in the driver
process, one task at a time, after the task has returned: this is where the
engine marks shards done, so there is exactly one writer of ``done`` flags.

A worker that dies while running a task — a process killed by the system,
most often for lack of memory — is a :class:`~gigapatch.errors.WorkerError`
naming the task (through the caller's ``describe``) and what to do, instead
of ``distributed``'s ``KilledWorker`` or the process pool's
``BrokenProcessPool``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from dask.base import compute
from dask.callbacks import Callback

from gigapatch.errors import ClusterError, InvalidArgumentError, WorkerError, check_int

__all__ = ["LOCAL_SCHEDULERS", "check_scheduler", "connect", "run_tasks"]

LOCAL_SCHEDULERS = ("threads", "processes", "synchronous")
_ADDRESS_PREFIXES = ("tcp://", "tls://", "inproc://", "ucx://", "ws://", "wss://")


def _tracker(on_done: Callable[[Any, Any], None], running: set[Any]) -> Callback:
    """A callback that runs ``on_done(key, result)`` in the driver after each local task, and
    keeps ``running`` the keys of the tasks started and not yet finished."""

    def pretask(key: Any, dsk: Any, state: Any) -> None:
        running.add(key)

    def posttask(key: Any, result: Any, dsk: Any, state: Any, worker_id: Any) -> None:
        running.discard(key)
        on_done(key, result)

    return Callback(pretask=pretask, posttask=posttask)


#: What to do when a worker dies, for the messages.
_ADVICE = ("killed by the system, most often for lack of memory: run with fewer workers "
           "(--workers) or give each more memory")


def _died(keys: Sequence[Any], describe: Callable[[Any], str]) -> WorkerError:
    if not keys:
        return WorkerError(f"a worker process died ({_ADVICE})")
    ordered = sorted(keys, key=lambda k: (k[1], str(k[0])) if isinstance(k, tuple) and len(k)
                     == 2 and isinstance(k[1], int) else (0, str(k)))
    if len(ordered) == 1:
        return WorkerError(f"a worker process died running {describe(ordered[0])} ({_ADVICE})")
    named = ", ".join(describe(k) for k in ordered[:3]) + (", …" if len(ordered) > 3 else "")
    return WorkerError(f"a worker process died running one of {len(ordered)} tasks: {named} "
                       f"({_ADVICE})")


def _is_client(obj: Any) -> bool:
    return type(obj).__name__ == "Client" and type(obj).__module__.startswith("distributed")


def check_scheduler(scheduler: Any, workers: int | None) -> int:
    """Check ``scheduler`` and ``workers``; return the number of local workers to use.

    ``scheduler`` is one of :data:`LOCAL_SCHEDULERS`, the address of a running
    ``distributed`` scheduler (``"tcp://host:8786"``) or a ``distributed.Client``.
    """
    local = isinstance(scheduler, str) and scheduler in LOCAL_SCHEDULERS
    remote = _is_client(scheduler) or (
        isinstance(scheduler, str) and scheduler.startswith(_ADDRESS_PREFIXES)
    )
    if not (local or remote):
        raise InvalidArgumentError(
            f"scheduler must be one of {', '.join(LOCAL_SCHEDULERS)}, a scheduler address "
            f"such as 'tcp://host:8786', or a distributed.Client; got {scheduler!r}"
        )
    if workers is None:
        return os.cpu_count() or 1
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InvalidArgumentError(f"workers must be a positive integer; got {workers!r}")
    return check_int("workers", workers)


def connect(scheduler: Any) -> tuple[Any, Callable[[], None]]:
    """Connect to a ``distributed`` scheduler given by address, before any output is made.

    Returns the scheduler to pass to :func:`run_tasks` (a Client for an
    address, else ``scheduler`` itself) and a function that closes what was
    opened here.
    """
    if not (isinstance(scheduler, str) and scheduler.startswith(_ADDRESS_PREFIXES)):
        return scheduler, lambda: None
    from distributed import Client

    try:
        client = Client(scheduler, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise ClusterError(
            f"cannot reach the Dask scheduler at {scheduler!r}: {str(exc).splitlines()[0]}"
        ) from None
    return client, client.close


def run_tasks(
    tasks: Sequence[Any],
    *,
    scheduler: Any,
    workers: int,
    on_done: Callable[[Any, Any], None],
    describe: Callable[[Any], str] = str,
) -> None:
    """Compute ``tasks`` (Dask delayed objects), calling ``on_done`` in the driver for each.

    The first task that fails stops the run (pending tasks are cancelled) and
    its exception is raised here.

    Raises
    ------
    WorkerError
        A worker process died running a task; ``describe(key)`` names the task
        (local processes: the tasks that were running) in the message.
    """
    if not tasks:
        return
    if isinstance(scheduler, str) and scheduler in LOCAL_SCHEDULERS:
        running: set[Any] = set()
        try:
            with _tracker(on_done, running):
                compute(*tasks, scheduler=scheduler, num_workers=workers)
        except BrokenProcessPool:
            raise _died(list(running), describe) from None
        return
    from distributed import Client, as_completed
    from distributed.scheduler import KilledWorker

    client = scheduler if _is_client(scheduler) else Client(scheduler, set_as_default=False)
    try:
        futures = client.compute(list(tasks))
        try:
            for future in as_completed(futures, loop=client.loop):
                on_done(future.key, future.result())
        except KilledWorker as exc:
            raise _died([exc.task], describe) from None
        finally:
            client.cancel(futures)
    finally:
        if client is not scheduler:
            client.close()
