"""Reading any patches of a store's ``images``, straight from the shard files when it can.

:class:`ShardReader` asks the array's :class:`~gigapatch.store.shards.ShardLayout`
for each touched shard's index (read once, checked, and cached while the
file is unchanged), reads each wanted patch's bytes with ``os.pread`` and
decodes them straight into the caller's output array: ~9,500 patches/s of
256² per core against ~740/s for zarr's ``z[i]``. An array without such a
layout is read through zarr, one contiguous range per touched shard.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import numpy.typing as npt
import zarr

from gigapatch.store.shards import Index, ShardLayout

__all__ = ["ShardReader"]

#: What identifies one version of a file: a rewritten shard (renamed into place) differs.
_Stamp = tuple[int, int, int]


class ShardReader:
    """Read any patches of a store's ``images`` into one array, fastest way available.

    Parameters
    ----------
    images
        The store's ``images`` array.
    """

    def __init__(self, images: zarr.Array[Any]) -> None:
        self.images = images
        self.layout = ShardLayout.of(images)
        self.per_shard = int((images.shards or images.chunks)[0])
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
        """
        wanted = np.asarray(indices, dtype=np.int64)
        if out is None:
            out = np.empty((len(wanted), *self.images.shape[1:]), dtype=self.images.dtype)
        shards = wanted // self.per_shard
        order = np.argsort(shards, kind="stable")
        cuts = np.flatnonzero(np.diff(shards[order])) + 1
        for rows in np.split(order, cuts) if len(order) else []:
            shard = int(shards[rows[0]])
            if self.layout is None:
                local = wanted[rows]
                lo, hi = int(local.min()), int(local.max()) + 1
                out[rows] = np.asarray(self.images[lo:hi])[local - lo]
            else:
                self._read_direct(self.layout, shard, wanted[rows] - shard * self.per_shard,
                                  out, rows)
        return out

    def _read_direct(
        self, layout: ShardLayout, shard: int, local: npt.NDArray[np.int64],
        out: npt.NDArray[Any], rows: npt.NDArray[np.intp],
    ) -> None:
        path = layout.path(shard)
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:  # a shard never written reads as the fill value, like zarr
            out[rows] = layout.fill_value
            return
        try:
            st = os.fstat(fd)
            stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
            cached = self._tables.get(shard)
            if cached is None or cached[0] != stamp:
                cached = self._tables[shard] = (stamp, layout.read_index(fd, path))
            layout.read_chunks(fd, path, cached[1], local.tolist(), out, rows.tolist())
        finally:
            os.close(fd)
