"""Reading any patches of a store's ``images``, straight from the shard files when it can.

:class:`ShardReader` asks the array's :class:`~gigapatch.store.shards.ShardLayout`
for each touched shard's index (read once, checked, and cached while the
file is unchanged), reads each wanted patch's bytes with ``os.pread`` and
decodes them straight into the caller's output array: ~9,500 patches/s of
256² per core against ~740/s for zarr's ``z[i]``. Every chunk's CRC32C is
checked on the way, and each shard file's digest against its ``done`` value
when its index is first read. An array without such a layout is read through
zarr, one contiguous range per touched shard.

JPEG chunks (``jpeg:QUALITY``, ``jpeg:source``) take ~0.45 ms each to decode
(299², one quiet core), several times a lossless chunk: a read of several of
them is split across a pool of ``threads`` threads (libjpeg-turbo releases the
GIL), by default one per CPU this process may use. Lossless chunks, whose
decode is mostly a copy, are decoded on the calling thread.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import numpy.typing as npt
import zarr
from zarr.core.sync import sync

from gigapatch.errors import StoreCorruptError, StoreIncompleteError, check_int
from gigapatch.store.shards import Index, ShardDamaged, ShardLayout

__all__ = ["ShardReader", "default_threads"]

#: What identifies one version of a file: a rewritten shard (renamed into place) differs.
_Stamp = tuple[int, int, int]
#: Patches one pool task decodes at least (a task costs ~50 us; a JPEG of 299² ~400 us).
_PER_TASK = 4


def default_threads(share: int = 1) -> int:
    """Threads a reader decodes JPEG chunks with by default: the CPUs this process may use,
    divided among ``share`` readers running at once (e.g. DataLoader workers), at least 1."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        cpus = os.cpu_count() or 1
    return max(1, cpus // max(1, share))


#: One run of patches to decode from one open shard file: (fd, shard, index, local, rows).
_Part = tuple[int, int, Index, list[int], list[int]]


class ShardReader:
    """Read any patches of a store's ``images`` into one array, fastest way available.

    Only patches of shards marked done are data: asking for a patch of a shard
    not done raises :class:`~gigapatch.errors.StoreIncompleteError`; a done
    shard whose file is missing, truncated, another one than the one marked
    done (its digest differs), or holds a chunk failing its checksum raises
    :class:`~gigapatch.errors.StoreCorruptError`. Never a fill value.

    Parameters
    ----------
    images
        The store's ``images`` array.
    flags
        Returns the store's ``done`` values (re-read when a shard not yet done
        is asked for: the store may be finishing); None: a bare array, read as
        zarr reads it (every shard counts as written, a chunk not stored reads
        as the fill value).
    threads
        Threads decoding the JPEG chunks of one read (default:
        :func:`default_threads`); 1 decodes on the calling thread.
    """

    def __init__(
        self, images: zarr.Array[Any],
        flags: Callable[[], npt.NDArray[Any]] | None = None,
        *, threads: int | None = None,
    ) -> None:
        self.images = images
        self.layout = ShardLayout.of(images)
        self.per_shard = int((images.shards or images.chunks)[0])
        self.threads = default_threads() if threads is None else check_int("threads", threads)
        self._flags = flags
        self._done = None if flags is None else flags()
        self._tables: dict[int, tuple[_Stamp, Index]] = {}
        self._pool: tuple[int, int, ThreadPoolExecutor] | None = None  # (pid, threads, pool)

    @property
    def direct(self) -> bool:
        """Whether chunks are decoded from the files directly (else through zarr)."""
        return self.layout is not None

    def read(
        self, indices: npt.ArrayLike, out: npt.NDArray[Any] | None = None, *,
        threads: int | None = None,
    ) -> npt.NDArray[Any]:
        """Patches ``indices`` (any order, repeats allowed) as one (n, h, w, C) array.

        Parameters
        ----------
        indices
            Store indices, each in ``[0, N)``.
        out
            Where to put them (C-contiguous, (n, h, w, C)); a new array if None.
        threads
            Threads decoding JPEG chunks for this read (default: the reader's).

        Raises
        ------
        StoreIncompleteError
            A patch lies in a shard not done.
        StoreCorruptError
            A patch lies in a damaged shard.
        """
        wanted = np.asarray(indices, dtype=np.int64)
        if out is None:
            out = np.empty((len(wanted), *self.images.shape[1:]), dtype=self.images.dtype)
        threads = self.threads if threads is None else check_int("threads", threads)
        shards = wanted // self.per_shard
        order = np.argsort(shards, kind="stable")
        cuts = np.flatnonzero(np.diff(shards[order])) + 1
        parts: list[_Part] = []
        try:
            for rows in np.split(order, cuts) if len(order) else []:
                shard = int(shards[rows[0]])
                done = self._done_value(shard)
                if self.layout is None:
                    local = wanted[rows]
                    lo, hi = int(local.min()), int(local.max()) + 1
                    self._check_stored(shard)
                    out[rows] = np.asarray(self.images[lo:hi])[local - lo]
                    continue
                part = self._open_part(self.layout, shard, done,
                                       wanted[rows] - shard * self.per_shard, out, rows)
                if part is not None:
                    parts.append(part)
            if parts:
                assert self.layout is not None  # parts come from shard files
                self._decode(self.layout, parts, out, threads)
        finally:
            for fd, *_ in parts:
                os.close(fd)
        return out

    def _decode(
        self, layout: ShardLayout, parts: list[_Part], out: npt.NDArray[Any], threads: int
    ) -> None:
        """Decode ``parts`` into ``out``: JPEG chunks across the pool, others on this thread."""
        total = sum(len(local) for _, _, _, local, _ in parts)
        tasks = min(threads, total // _PER_TASK)
        missing_ok = self._flags is None
        if layout.jpeg is None or tasks < 2:
            for fd, shard, table, local, rows in parts:
                layout.read_chunks(fd, shard, table, local, out, rows, missing_ok=missing_ok)
            return
        pool = self._executor(threads)
        step = -(-total // tasks)
        futures: list[Future[None]] = []
        for fd, shard, table, local, rows in parts:
            for a in range(0, len(local), step):
                futures.append(pool.submit(layout.read_chunks, fd, shard, table,
                                           local[a : a + step], out, rows[a : a + step],
                                           missing_ok=missing_ok))
        try:
            for future in futures:
                future.result()  # the first error raises, as on one thread
        finally:
            for future in futures:
                future.cancel()
            for future in futures:
                if not future.cancelled():
                    future.exception()  # wait: no task may still use a file about to close

    def _executor(self, threads: int) -> ThreadPoolExecutor:
        """This process's pool of ``threads`` threads (a forked child makes its own)."""
        pid = os.getpid()
        if self._pool is None or self._pool[:2] != (pid, threads):
            if self._pool is not None and self._pool[0] == pid:
                self._pool[2].shutdown(wait=False)
            pool = ThreadPoolExecutor(threads, thread_name_prefix="gigapatch-decode")
            self._pool = (pid, threads, pool)
        return self._pool[2]

    def _done_value(self, shard: int) -> int | None:
        """The shard's digest (format 2), None when there is none to check; raises when the
        shard is not done."""
        if self._flags is None:
            return None
        assert self._done is not None
        if not self._done[shard]:
            self._done = self._flags()  # finished since we looked?
            if not self._done[shard]:
                first = shard * self.per_shard
                last = min(first + self.per_shard, self.images.shape[0]) - 1
                raise StoreIncompleteError(
                    f"patches {first}-{last} (shard {shard}) of {self.images.store_path} are not "
                    "written: the extraction did not finish; run it again with --resume, or "
                    "read only finished shards (store.done)"
                )
        value = self._done[shard]
        if self._done.dtype == np.bool_ or self.layout is None or not self.layout.checksum:
            return None  # format 1: a flag, no digest
        return int(value)

    def _check_stored(self, shard: int) -> None:
        """Through zarr: a done shard whose object is missing is damage, not fill values."""
        if self._flags is None:
            return
        key = f"{self.images.path}/" + self.images.metadata.encode_chunk_key(
            (shard,) + (0,) * (self.images.ndim - 1)
        )
        if not sync(self.images.store.exists(key)):
            raise StoreCorruptError(
                f"array 'images', shard {shard} of {self.images.store_path} is marked done but "
                "missing; run `gigapatch verify --repair STORE`, then extract with --resume"
            )

    def _open_part(
        self, layout: ShardLayout, shard: int, done: int | None, local: npt.NDArray[np.int64],
        out: npt.NDArray[Any], rows: npt.NDArray[np.intp],
    ) -> _Part | None:
        """Open the file of ``shard`` and check its index (cached while the file is unchanged):
        the part to decode, or None when a bare array's shard was never written (``out[rows]``
        then holds the fill value, as zarr reads it)."""
        try:
            fd = os.open(layout.path(shard), os.O_RDONLY)
        except FileNotFoundError:
            if self._flags is not None:  # a store: this shard is marked done
                raise ShardDamaged(layout, shard, "its file is missing") from None
            out[rows] = layout.fill_value  # a bare array: a shard never written, as zarr reads
            return None
        try:
            st = os.fstat(fd)
            stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
            cached = self._tables.get(shard)
            if cached is None or cached[0] != stamp:  # a file not seen yet: index and digest
                cached = self._tables[shard] = (stamp, layout.checked_index(fd, shard, done))
        except BaseException:
            os.close(fd)
            raise
        return fd, shard, cached[1], local.tolist(), rows.tolist()
