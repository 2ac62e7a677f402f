"""The engine: turn a plan into Dask tasks, one per output shard, and run them.

Each task owns whole shards: it reads the source regions its patches need
(decoding only the tiles those regions touch), cuts the patches with the
gather kernel on the chosen device, and hands its shard to a writer thread
(:mod:`.writing`) that encodes and writes it whole while the task decodes on.
The driver alone sets ``done`` flags (:mod:`.marking`), once a shard's file
and rename are synced and it sees that file; it holds the store's writer lock
for the whole run (:mod:`gigapatch.store.lock`), and makes every path absolute
before it builds a task (:mod:`gigapatch.engine.workers`). The plan and
arguments are checked first (:mod:`.checks`); what the store records of the
plan and its sources is built by :mod:`.records`.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

import numpy as np
import numpy.typing as npt
import zarr
from dask.delayed import delayed

from gigapatch.engine.checks import check_plan, check_run_args
from gigapatch.engine.marking import DoneMarker, Failures, writing
from gigapatch.engine.meancache import run_scope
from gigapatch.engine.memory import check_out, fill, memory_tasks, run_threads
from gigapatch.engine.passthrough import check_passthrough, passthrough_task
from gigapatch.engine.quality import record_store_quality
from gigapatch.engine.reading import read_patches
from gigapatch.engine.records import store_spec
from gigapatch.engine.scheduling import check_scheduler, connect, run_tasks
from gigapatch.engine.workers import TaskSlides, check_output_seen
from gigapatch.engine.writing import ShardWriter, WriterHandle, joined, leave_worker_pool
from gigapatch.errors import (
    CorruptTileError,
    InvalidArgumentError,
    NoSpaceError,
    OnError,
    check_int,
    check_on_error,
)
from gigapatch.kernels import resolve_device
from gigapatch.kernels.backend import Device
from gigapatch.plan import PatchPlan, as_slides
from gigapatch.plan.core import resolve_labels
from gigapatch.sources import Slide
from gigapatch.store import (
    Codec,
    PatchStore,
    ShardLayout,
    StoreSpec,
    create_store,
    open_for_resume,
    write_shard,
)
from gigapatch.store.columns import array_node, read_flags
from gigapatch.store.lock import StoreLock
from gigapatch.store.status import reset_status, write_report

__all__ = ["extract", "extract_to_zarr"]

Progress = Callable[[int, int], None]
_LOG = logging.getLogger(__name__)


def _read_or_fail(slides: Sequence[Slide], plan: PatchPlan, device: str,
                  out: npt.NDArray[Any], on_error: OnError) -> Failures:
    """Read ``plan`` into ``out``; with ``on_error="skip"`` a patch whose tiles do not decode
    is zeros and reported (the others are read one by one after the first failure)."""
    try:
        read_patches(slides, plan, device, out=out)
        return []
    except CorruptTileError:
        if on_error == "stop":
            raise
    failures: Failures = []
    for i in range(len(plan)):
        try:
            read_patches(slides, plan.rows(i, i + 1), device, out=out[i : i + 1])
        except CorruptTileError as exc:
            out[i] = 0
            failures.append((i, int(plan.slide[i]), str(exc)))
    return failures


def _write_job(images: zarr.Array[Any], index: int, patches: npt.NDArray[Any],
               sync: bool) -> Callable[[], int | None]:
    """What a writer thread runs for shard ``index``: encode, write and sync it; return the
    size of its file. A full disk is a :class:`NoSpaceError` naming the shard's file."""

    def write() -> int | None:
        try:
            return write_shard(images, index, patches, sync=sync)
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
            layout = ShardLayout.of(images)
            where = str(layout.path(index)) if layout is not None else str(images.store)
            raise NoSpaceError(where, patches.nbytes) from None

    return write


def _shard_task(
    sources: TaskSlides, plan: PatchPlan, images: zarr.Array[Any], index: int, device: str,
    sync: bool, on_error: OnError = "stop", writer: WriterHandle | None = None,
) -> tuple[int, int | Future[int | None] | None, Failures]:
    """Read shard ``index`` and hand it to the writer; return it, the size of its file (for the
    driver to check) — or, in the driver's process, the ticket that gives that size once the
    file is durable — and the patches that failed (``on_error="skip"``)."""
    check_output_seen(images)
    slides = sources.open()
    handle = writer if writer is not None else WriterHandle()
    shards = handle.writer
    per_shard = (images.shards or images.chunks)[0]
    buf = shards.buffer((per_shard, *images.shape[1:]), np.dtype(images.dtype))
    patches = buf[: len(plan)]
    try:
        failures = _read_or_fail(slides, plan, device, patches, on_error)
    except BaseException:
        shards.give_back(buf)
        raise
    ticket = shards.submit(_write_job(images, index, patches, sync), buffer=buf)
    if handle.deferred:
        return index, ticket, failures
    leave_worker_pool()  # a distributed worker decodes another shard while this one is written
    return index, ticket.result(), failures


def _describer(slides: Sequence[Slide], plan: PatchPlan, per_task: int,
               what: str) -> Callable[[Any], str]:
    """Names a task by its key, for errors: ``shard 3 (slide a.svs)``."""

    def describe(key: Any) -> str:
        if not (isinstance(key, tuple) and len(key) == 2 and isinstance(key[1], int)):
            return str(key)
        rows = plan.slide[key[1] * per_task : (key[1] + 1) * per_task]
        names = ", ".join(slides[int(k)].name for k in np.unique(rows)[:3])
        more = " and others" if len(np.unique(rows)) > 3 else ""
        return f"{what} {key[1]} (slide {names}{more})"

    return describe


def _block_task(sources: TaskSlides, plan: PatchPlan, device: str) -> npt.NDArray[Any]:
    """Patches of ``plan`` read in a Dask worker (processes, a cluster), sent back."""
    return read_patches(sources.open(), plan, device)


# --------------------------------------------------------------------------- running


def _empty_dir(path: str | os.PathLike[str]) -> bool:
    return os.path.isdir(path) and not os.listdir(path)


def extract_to_zarr(
    sources: Any,
    plan: PatchPlan,
    out: str | os.PathLike[str],
    *,
    labels: Sequence[int] | None = None,
    shard_size: int = 256,
    codec: Codec = "lz4",
    device: Device = "auto",
    workers: int | None = None,
    scheduler: Any = "threads",
    resume: bool = False,
    overwrite: bool = False,
    sync: bool = True,
    progress: Progress | None = None,
    break_lock: bool = False,
    on_error: OnError = "stop",
) -> PatchStore:
    """Extract the patches of ``plan`` into a Zarr v3 patch store.

    Parameters
    ----------
    sources
        The slides the plan indexes (paths, arrays or `Slide` objects).
    plan
        Where the patches are (:func:`gigapatch.grid`).
    out
        Folder of the store to create (made absolute here, so workers in
        another working directory write it where the caller said).
    labels
        One class label per source (-1 for none); default: the plan's labels
        (``plan.slide_labels``), else all -1. A plan labelled patch by patch
        (``plan.patch_labels``, from annotations) keeps its own.
    shard_size
        Patches per shard file (one task writes one shard).
    codec
        Codec of ``images`` (docs/codecs.md): lossless ``"lz4"`` (Blosc, the
        default: fastest to write and to read), ``"zstd"`` (level 1, ~1.5x
        smaller, ~1.5x slower to write, ~3x slower to decode), ``"zstd-3"`` or
        ``"none"``; or ``"jpeg"`` / ``"jpeg:QUALITY"`` (one baseline JPEG per
        patch, quality 1-100, default 90: ~10x smaller than lz4 on tissue; uint8
        patches of 1 or 3 channels; the PSNR of a sample is recorded in the
        store's attrs), or ``"jpeg:source"`` (the source's JPEG tiles copied).
    device
        ``"auto"``, ``"cpu"`` or ``"gpu"``: where the kernels run.
    workers
        Parallel tasks (default: the number of CPUs).
    scheduler
        Dask local scheduler: ``"threads"`` (default), ``"processes"`` or
        ``"synchronous"``; or the address of a running ``distributed``
        scheduler (``"tcp://host:8786"``), or a ``distributed.Client``.
    resume
        Finish an interrupted run: shards marked done are kept, the others are
        (re)written. The store must have been made by the same request (plan,
        sources unchanged on disk, shard size, codec). Without a store at
        ``out``, a fresh run.
    overwrite
        Replace an existing gigapatch store at ``out`` (never one another run
        is writing).
    sync
        Sync every shard file to disk before marking it done (default), so a
        finished shard survives a power loss or node crash, not only a killed
        process. The syncs run on the writer threads, not on the decoding
        ones; ``False`` is still ~15 % faster on two workers here (the disk
        waits less); a run killed with SIGKILL resumes correctly either way.
    progress
        Called in the driver as ``progress(patches_done, patches_total)``.
    break_lock
        Take over the store's writer lock when another host holds it (a lock
        left on this host by a process that no longer runs is taken over
        anyway, with a :class:`~gigapatch.errors.StaleLockWarning`).
    on_error
        ``"stop"`` (default): a tile that does not decode ends the run with
        :class:`~gigapatch.errors.CorruptTileError` (shards already written
        stay; ``resume=True`` continues). ``"skip"``: it fails only the patches
        that need it — they keep their slot, hold zeros, get ``status`` 1 and
        their reason is recorded per slide (``attrs["failed"]``); readers,
        ``select`` and the feeds leave them out. Slides left out while planning
        (a :class:`~gigapatch.plan.SlideSet`'s or the plan's ``skipped``) are
        recorded in ``attrs["skipped"]``. Either way the run ends by writing
        ``report.json`` in the store's folder.

    Returns
    -------
    PatchStore
        The finished store, open for reading.

    Raises
    ------
    StoreLockedError
        Another run writes the store at ``out`` (the message names it).
    StoreError
        A worker cannot see a source or the output, or the driver does not
        see a shard file a worker wrote (the message names the worker or the
        shard, and the path).
    """
    if not isinstance(out, str | os.PathLike):
        raise InvalidArgumentError(f"out must be a path; got {type(out).__name__}")
    out = os.path.abspath(out)
    slides = as_slides(sources)
    check_plan(slides, plan)
    device = resolve_device(device)
    workers = check_scheduler(scheduler, workers)
    check_run_args(out, shard_size, codec, progress)
    on_error = check_on_error(on_error)
    if labels is None:
        labels = list(plan.slide_labels) or [-1] * len(slides)
    labels = list(resolve_labels(None, slides, labels)[0])
    if resume and overwrite:
        raise InvalidArgumentError("resume and overwrite exclude each other; choose one")
    passthrough = check_passthrough(slides, plan, codec)  # jpeg:source: tiles copied as stored
    spec = store_spec(sources, slides, plan, labels, shard_size=shard_size, codec=codec)
    scheduler, disconnect = connect(scheduler)  # a cluster address is reached before any output
    try:
        with StoreLock(out, break_lock=break_lock) as lock, run_scope(), joined() as removing:
            # the lock is released however the run ends; tasks share averaged tiles during this
            # run only; a store replaced is deleted while the new one is written
            return _run_store(slides, plan, out, spec, lock, resume=resume, overwrite=overwrite,
                              device=device, sync=sync, scheduler=scheduler, workers=workers,
                              progress=progress, on_error=on_error, removing=removing,
                              passthrough=passthrough)
    finally:
        disconnect()


def _run_store(
    slides: Sequence[Slide], plan: PatchPlan, out: str, spec: StoreSpec, lock: StoreLock, *,
    resume: bool, overwrite: bool, device: str, sync: bool, scheduler: Any, workers: int,
    progress: Progress | None, on_error: OnError, removing: list[threading.Thread],
    passthrough: bool = False,
) -> PatchStore:
    """Take the store's lock, create or reopen the store, then run the shards not yet done."""
    shard_size = spec.shard_size
    if resume and os.path.exists(out) and not _empty_dir(out):
        PatchStore(out)  # a folder that is no store is refused before a lock is put in it
        lock.acquire()  # before anything of the store is read or changed
        group = open_for_resume(out, spec, sync=sync)
        flags, layout = read_flags(group), ShardLayout.of(array_node(group, "images"))
        # a shard marked done whose file is missing, damaged or not the one marked done is
        # written again (its index and digest are checked; ``verify`` reads every chunk)
        todo = [i for i in range(len(flags))
                if not flags[i] or (layout is not None
                                    and layout.problem(i, int(flags[i])) is not None)]
        # ``status`` is not derived from the plan: the shards redone start ok again
        reset_status(group, [(i * shard_size, min((i + 1) * shard_size, len(plan)))
                             for i in todo], sync=sync)
    else:
        group = create_store(out, spec, overwrite=overwrite or resume, lock=lock, sync=sync,
                             removing=removing)
        todo = list(range(-(-len(plan) // shard_size)))
    images = array_node(group, "images")
    sources = TaskSlides(slides)
    n = len(plan)
    # in the driver's process the tasks return at once; at most workers + 1 shards are queued
    deferred = isinstance(scheduler, str) and scheduler in ("threads", "synchronous")
    writer = ShardWriter(workers + 1, workers + 1) if deferred else None
    handle = WriterHandle(writer)
    tasks = []
    for i in todo:
        rows = plan.rows(i * shard_size, min((i + 1) * shard_size, n))
        key = ("gigapatch-shard", i)
        task = passthrough_task if passthrough else _shard_task  # tiles as stored, or decoded
        tasks.append(delayed(task, pure=False)(
            sources, rows, images, i, device, sync, on_error, handle, dask_key_name=key))
    written = n - sum(min(shard_size, n - i * shard_size) for i in todo)
    shards = -(-n // shard_size)
    _LOG.info("extract: %d patches from %d slide(s) in %d shards to %s; %d shards to do",
              n, len(slides), shards, os.fspath(out), len(todo))
    for k, slide in enumerate(slides):
        _LOG.debug("slide %d: %s, %d patches", k, slide.path or slide.name,
                   int(np.count_nonzero(plan.slide == k)))
    if progress is not None and written:
        progress(written, n)
    marker = DoneMarker(group, lock, shard_size=shard_size, total=n, written=written,
                        progress=progress, sync=sync)

    def on_done(key: Any, result: Any) -> None:
        if isinstance(key, tuple) and key[0] == "gigapatch-shard":
            marker.add(*result)

    with writing(marker, writer):
        run_tasks(tasks, scheduler=scheduler, workers=workers, on_done=on_done,
                  describe=_describer(slides, plan, shard_size, "shard"))
    record_store_quality(slides, plan, out, device=device, sync=sync)  # JPEG stores: PSNR
    store = PatchStore(out)
    write_report(store, sync=sync)
    _LOG.info("extract: done, %d patches in %s (%d failed, %d slides skipped)", n,
              os.fspath(out), store.failed_count, len(store.attrs.get("skipped", [])))
    return store


def extract(
    sources: Any,
    plan: PatchPlan,
    *,
    device: Device = "auto",
    workers: int | None = None,
    scheduler: Any = "threads",
    block_size: int = 256,
    out: npt.NDArray[Any] | None = None,
) -> np.ndarray:
    """Extract the patches of ``plan`` into memory, for jobs that fit in it.

    Same reads and kernels as :func:`extract_to_zarr`, so the same patches.

    Parameters
    ----------
    sources
        The slides the plan indexes (paths, arrays or `Slide` objects).
    plan
        Where the patches are (:func:`gigapatch.grid`, :func:`gigapatch.random`).
    device
        ``"auto"``, ``"cpu"`` or ``"gpu"``: where the kernels run.
    workers
        Threads (or processes) reading at once (default: the number of CPUs).
    scheduler
        ``"threads"`` (default) or ``"synchronous"``: tasks fill one result
        array directly, in threads that take the next task themselves
        (:mod:`gigapatch.engine.memory`); runs of plain patches of a TIFF
        source are cut by tile rows, so each tile is decoded once in all.
        ``"processes"``, a ``distributed`` scheduler address or ``Client``:
        Dask tasks of ``block_size`` patches whose results are gathered here.
    block_size
        Patches per task where patches are read patch by patch (resampled or
        dilated patches, non-TIFF sources, Dask schedulers).
    out
        A (N, h, w, C) array of the sources' dtype to fill and return instead
        of a new one: writable, C-contiguous, exactly that shape and dtype.
        Reusing one buffer across jobs skips the first touch of fresh memory,
        which costs about as much as decoding here (~1.5 s per GiB).

    Returns
    -------
    numpy.ndarray
        (N, h, w, C) patches in plan order (``out`` when given).
    """
    slides = as_slides(sources)
    check_plan(slides, plan)
    device = resolve_device(device)
    workers = check_scheduler(scheduler, workers)
    block_size = check_int("block_size", block_size)
    n = len(plan)
    h, w = plan.size
    shape = (n, h, w, slides[0].channels)
    if out is not None:
        out = check_out(out, shape, slides[0].dtype)
    if scheduler in ("threads", "synchronous"):  # tasks fill one result array
        result = np.empty(shape, slides[0].dtype) if out is None else out
        tasks = memory_tasks(slides, plan, block_size) if n else []
        with run_scope():  # tasks share averaged tiles during this run only
            run_threads(len(tasks), workers if scheduler == "threads" else 1,
                        lambda i: fill(slides, plan, tasks[i], device, result))
        return result
    sent = TaskSlides(slides)
    starts = list(range(0, n, block_size))
    blocks = [
        delayed(_block_task, pure=False)(
            sent, plan.rows(a, min(a + block_size, n)), device,
            dask_key_name=("gigapatch-block", k),
        )
        for k, a in enumerate(starts)
    ]
    result = np.empty(shape, slides[0].dtype) if out is None else out

    def on_done(key: Any, block: Any) -> None:
        if isinstance(key, tuple) and key[0] == "gigapatch-block" and block is not None:
            a = starts[key[1]]
            result[a : a + len(block)] = block

    with run_scope():
        run_tasks(blocks, scheduler=scheduler, workers=workers, on_done=on_done,
                  describe=_describer(slides, plan, block_size, "block"))
    return result
