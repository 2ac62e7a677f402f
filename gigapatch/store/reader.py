"""Reading stores: :class:`PatchStore`, :class:`PatchSelection`, ``done`` flags."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import zarr

from gigapatch.errors import InvalidArgumentError, StoreError
from gigapatch.store.format import ATTRS_KEY, FORMAT_VERSION
from gigapatch.store.shards import shard_problem

__all__ = ["PatchSelection", "PatchStore", "read_done"]


def read_done(group: zarr.Group) -> np.ndarray:
    """The ``done`` flags; a flag that cannot be read (a torn write) counts as not done."""
    done = group["done"]
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

    def __init__(self, path: str | os.PathLike) -> None:
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
        self.attrs: dict = attrs
        missing = [k for k in ("images", "coords", "slide", "label", "done")
                   if k not in self._group]
        if missing:
            raise StoreError(
                f"{str(self.path)!r} is a damaged gigapatch store: it lacks {', '.join(missing)}"
            )
        self.images: zarr.Array = self._group["images"]

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index) -> np.ndarray:
        return self.images[index]

    def __reduce__(self):
        # pickles as its path: each DataLoader worker or Dask task opens the store itself
        return (PatchStore, (str(self.path),))

    def __repr__(self) -> str:
        n, h, w, c = self.images.shape
        return (
            f"<PatchStore {str(self.path)!r} {n} patches of {h}x{w}x{c} "
            f"{self.images.dtype}, {self.shards_done}/{self.n_shards} shards done>"
        )

    @property
    def patch_shape(self) -> tuple[int, int, int]:
        """(h, w, C) of one patch."""
        return tuple(self.images.shape[1:])

    @property
    def coords(self) -> np.ndarray:
        """(N, 2) int64 level-0 (y, x) top-left of every patch."""
        return self._group["coords"][:]

    @property
    def slide(self) -> np.ndarray:
        """(N,) int32 source index of every patch."""
        return self._group["slide"][:]

    @property
    def label(self) -> np.ndarray:
        """(N,) int32 label of every patch, -1 where none."""
        return self._group["label"][:]

    @property
    def tissue(self) -> np.ndarray | None:
        """(N,) float32 tissue fraction of every patch, or None when the plan used no mask."""
        return self._group["tissue"][:] if "tissue" in self._group else None

    def select(
        self,
        *,
        slide: int | Sequence[int] | None = None,
        label: int | Sequence[int] | None = None,
        min_tissue: float | None = None,
    ) -> PatchSelection:
        """The patches that pass every given filter, as a view (no pixel is read or copied).

        Parameters
        ----------
        slide
            Source index or indices to keep.
        label
            Class label or labels to keep.
        min_tissue
            Keep patches whose tissue fraction is at least this (in [0, 1]); needs
            a store written with a tissue mask.

        Returns
        -------
        PatchSelection
            Sorted store indices and the per-patch arrays of those patches.
        """
        return PatchSelection(self, np.arange(len(self))).select(
            slide=slide, label=label, min_tissue=min_tissue
        )

    @property
    def done(self) -> np.ndarray:
        """(n_shards,) bool: which shards are completely written."""
        return read_done(self._group)

    @property
    def sources(self) -> list[dict]:
        """What each source was: path, size, mtime, level, downsample, mpp, shape, label."""
        return self.attrs["sources"]

    @property
    def plan(self) -> dict:
        """The parameters of the plan that made the store."""
        return self.attrs["plan"]

    @property
    def shard_size(self) -> int:
        """Patches per shard (the last shard may hold fewer)."""
        return int(self.images.shards[0])

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

        Checks that every shard is done, that the per-patch arrays have one row
        per patch, that every slide index names a recorded source, that every
        patch lies inside its source at the plan's level, and that the
        attributes are complete.
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
            if name not in self._group:
                problems.append(f"node {name!r} is missing")
            elif self._group[name].shape[0] != n:
                problems.append(f"{name} has {self._group[name].shape[0]} rows for {n} patches")
        if problems:
            return problems
        done = self.done
        if len(done) != self.n_shards:
            problems.append(f"done has {len(done)} flags for {self.n_shards} shards")
        elif not done.all():
            todo = np.flatnonzero(~done)
            problems.append(
                f"{len(todo)} of {self.n_shards} shards not done (first: {todo[:5].tolist()}); "
                "the extraction did not finish"
            )
        for index in np.flatnonzero(done[: self.n_shards]).tolist():
            why = shard_problem(self.images, index)
            if why is not None:
                problems.append(f"shard {index} is marked done but {why}; run with --resume")
        sources, slide = self.sources, self.slide
        if n and (slide.min() < 0 or slide.max() >= len(sources)):
            problems.append(f"slide indices outside [0, {len(sources) - 1}]")
            return problems
        coords = self.coords
        ph, pw = self.patch_shape[:2]
        for k, src in enumerate(sources):
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

    def shard(self, index: int) -> np.ndarray:
        """Read shard ``index`` whole: the fast way to stream a store."""
        if not 0 <= index < self.n_shards:
            raise InvalidArgumentError(
                f"shard index must be in the range [0, {self.n_shards - 1}]; got {index}"
            )
        start = index * self.shard_size
        return self.images[start : start + self.shard_size]


def _member_mask(name: str, values: np.ndarray, wanted: int | Sequence[int]) -> np.ndarray:
    items = np.atleast_1d(np.asarray(wanted))
    if items.ndim != 1 or not np.issubdtype(items.dtype, np.integer) or isinstance(wanted, bool):
        raise InvalidArgumentError(
            f"{name} must be an integer or a sequence of integers; got {wanted!r}"
        )
    return np.isin(values, items)


class PatchSelection:
    """A subset of a store's patches, by store index (made by :meth:`PatchStore.select`).

    Indexing is by position in the selection; ``indices`` maps positions to
    store indices. It pickles as the store's path and the indices.

    Parameters
    ----------
    store
        The store.
    indices
        Store indices of the selected patches (sorted, unique).
    """

    def __init__(self, store: PatchStore, indices: np.ndarray) -> None:
        self.store = store
        self.indices = np.asarray(indices, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index) -> np.ndarray:
        rows = self.indices[index]
        if np.ndim(rows) == 0:
            return self.store.images[int(rows)]
        if isinstance(index, slice) and len(rows) and rows[-1] - rows[0] + 1 == len(rows):
            return self.store.images[int(rows[0]) : int(rows[-1]) + 1]
        return self.store.images[rows]

    def __repr__(self) -> str:
        return f"<PatchSelection {len(self)} of {len(self.store)} patches of {self.store!r}>"

    @property
    def path(self) -> Path:
        """The store's folder."""
        return self.store.path

    @property
    def coords(self) -> np.ndarray:
        """(n, 2) level-0 (y, x) of the selected patches."""
        return self.store.coords[self.indices]

    @property
    def slide(self) -> np.ndarray:
        """(n,) source index of the selected patches."""
        return self.store.slide[self.indices]

    @property
    def label(self) -> np.ndarray:
        """(n,) label of the selected patches."""
        return self.store.label[self.indices]

    @property
    def tissue(self) -> np.ndarray | None:
        """(n,) tissue fraction of the selected patches, or None."""
        tissue = self.store.tissue
        return None if tissue is None else tissue[self.indices]

    def select(
        self,
        *,
        slide: int | Sequence[int] | None = None,
        label: int | Sequence[int] | None = None,
        min_tissue: float | None = None,
    ) -> PatchSelection:
        """Narrow the selection further; takes the filters of :meth:`PatchStore.select`."""
        keep = np.ones(len(self), bool)
        if slide is not None:
            keep &= _member_mask("slide", self.slide, slide)
        if label is not None:
            keep &= _member_mask("label", self.label, label)
        if min_tissue is not None:
            ok = isinstance(min_tissue, int | float | np.floating) and not isinstance(
                min_tissue, bool
            )
            if not ok or not 0 <= min_tissue <= 1:
                raise InvalidArgumentError(
                    f"min_tissue must be a number in [0, 1]; got {min_tissue!r}"
                )
            tissue = self.tissue
            if tissue is None:
                raise InvalidArgumentError(
                    f"min_tissue needs tissue fractions; store {str(self.path)!r} has none "
                    "(its plan used no tissue mask)"
                )
            keep &= tissue >= min_tissue
        return PatchSelection(self.store, self.indices[keep])
