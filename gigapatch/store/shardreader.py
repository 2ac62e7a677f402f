"""Reading any patches of a store's ``images``, straight from the shard files when it can.

:class:`ShardReader` asks the array's :class:`~gigapatch.store.shards.ShardLayout`
for each touched shard's index (read once, checked, and cached while the
file is unchanged), reads each wanted patch's bytes with ``os.pread`` and
decodes them straight into the caller's output array: ~9,500 patches/s of
256² per core against ~740/s for zarr's ``z[i]``. Every chunk's CRC32C is
checked on the way, and each shard file's digest against its ``done`` value
when its index is first read. An array without such a layout is read through
zarr, one contiguous range per touched shard.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import zarr
from zarr.core.sync import sync

from gigapatch.errors import StoreCorruptError, StoreIncompleteError
from gigapatch.store.shards import Index, ShardDamaged, ShardLayout

__all__ = ["ShardReader"]

#: What identifies one version of a file: a rewritten shard (renamed into place) differs.
_Stamp = tuple[int, int, int]


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
    """

    def __init__(
        self, images: zarr.Array[Any],
        flags: Callable[[], npt.NDArray[Any]] | None = None,
    ) -> None:
        self.images = images
        self.layout = ShardLayout.of(images)
        self.per_shard = int((images.shards or images.chunks)[0])
        self._flags = flags
        self._done = None if flags is None else flags()
        self._tables: dict[int, tuple[_Stamp, Index]] = {}

    @property
    def direct(self) -> bool:
        """Whether chunks are decoded from the files directly (else through zarr)."""
        return self.layout is not None

    def read(
        self, indices: npt.ArrayLike, out: npt.NDArray[Any] | None = None
    ) -> npt.NDArray[Any]:
        """Patches ``indices`` (any order, repeats allowed) as one (n, h, w, C) array.

        Parameters
        ----------
        indices
            Store indices, each in ``[0, N)``.
        out
            Where to put them (C-contiguous, (n, h, w, C)); a new array if None.

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
        shards = wanted // self.per_shard
        order = np.argsort(shards, kind="stable")
        cuts = np.flatnonzero(np.diff(shards[order])) + 1
        for rows in np.split(order, cuts) if len(order) else []:
            shard = int(shards[rows[0]])
            done = self._done_value(shard)
            if self.layout is None:
                local = wanted[rows]
                lo, hi = int(local.min()), int(local.max()) + 1
                self._check_stored(shard)
                out[rows] = np.asarray(self.images[lo:hi])[local - lo]
            else:
                self._read_direct(self.layout, shard, done, wanted[rows] - shard * self.per_shard,
                                  out, rows)
        return out

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

    def _read_direct(
        self, layout: ShardLayout, shard: int, done: int | None, local: npt.NDArray[np.int64],
        out: npt.NDArray[Any], rows: npt.NDArray[np.intp],
    ) -> None:
        try:
            fd = os.open(layout.path(shard), os.O_RDONLY)
        except FileNotFoundError:
            if self._flags is not None:  # a store: this shard is marked done
                raise ShardDamaged(layout, shard, "its file is missing") from None
            out[rows] = layout.fill_value  # a bare array: a shard never written, as zarr reads
            return
        try:
            st = os.fstat(fd)
            stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
            cached = self._tables.get(shard)
            if cached is None or cached[0] != stamp:  # a file not seen yet: index and digest
                cached = self._tables[shard] = (stamp, layout.checked_index(fd, shard, done))
            layout.read_chunks(fd, shard, cached[1], local.tolist(), out, rows.tolist(),
                               missing_ok=self._flags is None)
        finally:
            os.close(fd)
