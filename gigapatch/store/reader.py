"""Reading stores: :class:`PatchStore` and the ``done`` flags."""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any, Unpack

import numpy as np
import numpy.typing as npt
import zarr

from gigapatch.errors import InvalidArgumentError, StoreError, check_int
from gigapatch.store.format import ATTRS_KEY, FORMAT_VERSION
from gigapatch.store.selection import Filters, PatchSelection
from gigapatch.store.shardreader import ShardReader
from gigapatch.store.shards import ShardLayout
from gigapatch.store.split import Stratify

__all__ = ["PatchStore", "array_node", "read_done"]


def array_node(group: zarr.Group, name: str) -> zarr.Array[Any]:
    """The array ``name`` of a store's group.

    Raises
    ------
    StoreError
        ``name`` is a group, not an array.
    """
    node = group[name]
    if not isinstance(node, zarr.Array):
        raise StoreError(f"node {name!r} of store {str(group.store)!r} is not an array")
    return node


def _read_only(array: npt.NDArray[Any]) -> npt.NDArray[Any]:
    array.flags.writeable = False  # shared by every access: a caller must not change it
    return array


def read_done(group: zarr.Group) -> npt.NDArray[np.bool_]:
    """The ``done`` flags; a flag that cannot be read (a torn write) counts as not done."""
    done = array_node(group, "done")
    try:
        return np.asarray(done[:], dtype=bool)
    except Exception:
        flags = np.zeros(done.shape[0], bool)
        for i in range(len(flags)):
            try:
                flags[i] = bool(done[i])
            except Exception:
                flags[i] = False
        return flags


class PatchStore:
    """Read a gigapatch patch store.

    The per-patch arrays (``coords``, ``slide``, ``label``, ``tissue``) are
    read once, on first use, and shared read-only; patches are decoded straight
    from the shard files (see :class:`~gigapatch.store.ShardReader`).

    Parameters
    ----------
    path
        The store's folder.

    Examples
    --------
    >>> store = PatchStore("patches.zarr")          # doctest: +SKIP
    >>> batch = store[0:64]                          # (64, h, w, C) uint8
    >>> store.coords[:3], store.label[:3]            # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise StoreError(f"store {str(self.path)!r} does not exist")
        try:
            self._group = zarr.open_group(self.path, mode="r")
        except Exception:
            raise StoreError(f"{str(self.path)!r} is not a Zarr group") from None
        attrs = self._group.attrs.get(ATTRS_KEY)
        if not isinstance(attrs, dict) or attrs.get("format") != FORMAT_VERSION:
            raise StoreError(
                f"{str(self.path)!r} is not a gigapatch store of format {FORMAT_VERSION}"
            )
        self.attrs: dict[str, Any] = attrs
        missing = [k for k in ("images", "coords", "slide", "label", "done")
                   if k not in self._group]
        if missing:
            raise StoreError(
                f"{str(self.path)!r} is a damaged gigapatch store: it lacks {', '.join(missing)}"
            )
        self.images: zarr.Array[Any] = array_node(self._group, "images")

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, index: Any) -> npt.NDArray[Any]:
        rows = self._rows(index) if self.reader.direct else None
        if rows is None:
            patches: npt.NDArray[Any] = np.asarray(self.images[index])
            return patches
        if isinstance(rows, int):
            return self.reader.read([rows]).squeeze(0)
        return self.reader.read(rows)

    def _rows(self, index: Any) -> int | npt.NDArray[np.int64] | None:
        """The store indices ``index`` names when it is an integer, a slice of step 1 or a
        1-D sequence of integers, all in range; else None (zarr then reads it)."""
        n = len(self)
        if isinstance(index, int | np.integer) and not isinstance(index, bool):
            i = int(index)
            return i % n if -n <= i < n else None
        if isinstance(index, slice):
            return np.arange(*index.indices(n)) if index.step in (None, 1) else None
        if not isinstance(index, list | np.ndarray):
            return None
        rows = np.asarray(index)
        if rows.ndim != 1 or not np.issubdtype(rows.dtype, np.integer):
            return None
        if len(rows) and (rows.min() < -n or rows.max() >= n):
            return None
        return np.where(rows < 0, rows + n, rows).astype(np.int64)

    def __reduce__(self) -> tuple[type[PatchStore], tuple[str]]:
        # pickles as its path: each DataLoader worker or Dask task opens the store itself
        return (PatchStore, (str(self.path),))

    def __repr__(self) -> str:
        n, h, w, c = self.images.shape
        return (
            f"<PatchStore {str(self.path)!r} {n} patches of {h}x{w}x{c} "
            f"{self.images.dtype}, {self.shards_done}/{self.n_shards} shards done>"
        )

    @cached_property
    def layout(self) -> ShardLayout | None:
        """The layout of the shard files of ``images`` (None: read through zarr)."""
        return self.reader.layout

    @cached_property
    def reader(self) -> ShardReader:
        """Reads patches straight from the shard files (caching each shard's index)."""
        return ShardReader(self.images)

    @property
    def patch_shape(self) -> tuple[int, int, int]:
        """(h, w, C) of one patch."""
        h, w, c = self.images.shape[1:]
        return (h, w, c)

    def _per_patch(self, name: str) -> npt.NDArray[Any]:
        return _read_only(np.asarray(array_node(self._group, name)[:]))

    @cached_property
    def coords(self) -> npt.NDArray[np.int64]:
        """(N, 2) int64 level-0 (y, x) top-left of every patch (read-only)."""
        return self._per_patch("coords")

    @cached_property
    def slide(self) -> npt.NDArray[np.int32]:
        """(N,) int32 source index of every patch (read-only)."""
        return self._per_patch("slide")

    @cached_property
    def label(self) -> npt.NDArray[np.int32]:
        """(N,) int32 label of every patch, -1 where none (read-only)."""
        return self._per_patch("label")

    @cached_property
    def tissue(self) -> npt.NDArray[np.float32] | None:
        """(N,) float32 tissue fraction of every patch, or None when the plan used no mask."""
        return self._per_patch("tissue") if "tissue" in self._group else None

    def select(self, **filters: Unpack[Filters]) -> PatchSelection:
        """The patches that pass every given filter, as a view (no pixel is read or copied).

        Takes the filters of :meth:`PatchSelection.select`: ``slide`` (index,
        name or path), ``label`` (label or class name) and ``min_tissue``.
        """
        return PatchSelection(self, np.arange(len(self))).select(**filters)

    def split(
        self,
        fractions: Sequence[float] = (0.8, 0.2),
        *,
        by: str = "slide",
        stratify: Stratify = "label",
        seed: int = 0,
    ) -> tuple[PatchSelection, ...]:
        """Split the store into parts that share no slide: see :meth:`PatchSelection.split`.

        Examples
        --------
        >>> train, val, test = store.split((0.7, 0.15, 0.15), seed=0)   # doctest: +SKIP
        """
        return self.select().split(fractions, by=by, stratify=stratify, seed=seed)

    @cached_property
    def class_names(self) -> tuple[str, ...]:
        """Class names of the labels (label k is ``class_names[k]``), as the plan recorded
        them (``labels_from_dirs``: the folder names); empty when the store is unlabelled or
        its labels were given as bare integers."""
        plan = self.attrs.get("plan")
        classes = plan.get("classes") if isinstance(plan, dict) else None
        return tuple(str(c) for c in classes or ())

    @property
    def done(self) -> npt.NDArray[np.bool_]:
        """(n_shards,) bool: which shards are completely written."""
        return read_done(self._group)

    @property
    def sources(self) -> list[dict[str, Any]]:
        """What each source was: path, size, mtime, level, downsample, mpp, shape, label."""
        sources: list[dict[str, Any]] = self.attrs["sources"]
        return sources

    @property
    def plan(self) -> dict[str, Any]:
        """The parameters of the plan that made the store."""
        plan: dict[str, Any] = self.attrs["plan"]
        return plan

    @property
    def shard_size(self) -> int:
        """Patches per shard (the last shard may hold fewer)."""
        return int((self.images.shards or self.images.chunks)[0])

    @property
    def n_shards(self) -> int:
        """Number of shards."""
        return -(-len(self) // self.shard_size)

    @property
    def shards_done(self) -> int:
        """Number of shards completely written."""
        return int(self.done.sum())

    @property
    def complete(self) -> bool:
        """Whether every shard is written."""
        return bool(self.done.all())

    def verify(self) -> list[str]:
        """Check the store; return the problems found (empty when it is sound).

        Checks that every shard is done, that the file of every done shard is
        whole, that the per-patch arrays have one row per patch, that every
        slide index names a recorded source, that every patch lies inside its
        source at the plan's level, and that the attributes are complete.
        """
        problems = []
        missing = [
            k
            for k in ("version", "created", "sources", "plan", "shard_size")
            if k not in self.attrs
        ]
        if missing:
            problems.append(f"attrs['gigapatch'] lacks {', '.join(missing)}")
        n = len(self)
        for name in ("coords", "slide", "label"):
            rows = array_node(self._group, name).shape[0]
            if rows != n:
                problems.append(f"{name} has {rows} rows for {n} patches")
        if problems:
            return problems
        problems += self._shard_problems()
        sources, slide = self.sources, self.slide
        if n and (slide.min() < 0 or slide.max() >= len(sources)):
            problems.append(f"slide indices outside [0, {len(sources) - 1}]")
            return problems
        return problems + self._outside_problems()

    def _shard_problems(self) -> list[str]:
        problems = []
        done = self.done
        if len(done) != self.n_shards:
            problems.append(f"done has {len(done)} flags for {self.n_shards} shards")
        elif not done.all():
            todo = np.flatnonzero(~done)
            problems.append(
                f"{len(todo)} of {self.n_shards} shards not done (first: {todo[:5].tolist()}); "
                "the extraction did not finish"
            )
        layout = self.layout
        if layout is None:  # not a layout gigapatch reads itself: its files can't be told
            return problems
        for index in np.flatnonzero(done[: self.n_shards]).tolist():
            why = layout.problem(index)
            if why is not None:
                problems.append(f"shard {index} is marked done but {why}; run with --resume")
        return problems

    def _outside_problems(self) -> list[str]:
        problems = []
        coords, slide = self.coords, self.slide
        ph, pw = self.patch_shape[:2]
        for k, src in enumerate(self.sources):
            rows = coords[slide == k]
            if not len(rows):
                continue
            dy, dx = src["downsample"]
            h0, w0 = src["shape"]
            ly, lx = np.rint(rows[:, 0] / dy), np.rint(rows[:, 1] / dx)
            lh, lw = round(h0 / dy), round(w0 / dx)
            outside = (ly < 0) | (lx < 0) | (ly + ph > lh) | (lx + pw > lw)
            if outside.any() and self.plan.get("padding", "valid") == "valid":
                problems.append(
                    f"{int(outside.sum())} patches of source {k} ({src.get('name')}) lie "
                    f"outside its {lh}x{lw} level"
                )
        return problems

    def shard(self, index: int) -> npt.NDArray[Any]:
        """Read shard ``index`` whole: the fast way to stream a store."""
        index = check_int("shard index", index, minimum=0)
        if not 0 <= index < self.n_shards:
            raise InvalidArgumentError(
                f"shard index must be in the range [0, {self.n_shards - 1}]; got {index}"
            )
        start = index * self.shard_size
        return self[start : start + self.shard_size]
