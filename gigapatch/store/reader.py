"""Reading stores: :class:`PatchStore` and the ``done`` flags."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, Unpack

import numpy as np
import numpy.typing as npt
import zarr

from gigapatch.errors import InvalidArgumentError, PatchFailedError, StoreError, check_int
from gigapatch.store.columns import array_node, read_column, read_flags
from gigapatch.store.format import ATTRS_KEY, FORMAT_VERSION, READABLE_FORMATS
from gigapatch.store.selection import Filters, PatchSelection
from gigapatch.store.shardreader import ShardReader
from gigapatch.store.shards import ShardLayout
from gigapatch.store.split import Stratify
from gigapatch.store.status import OK, read_status

__all__ = ["PatchStore", "array_node", "open_store_group", "read_done"]


def _read_only(array: npt.NDArray[Any]) -> npt.NDArray[Any]:
    array.flags.writeable = False  # shared by every access: a caller must not change it
    return array


def read_done(group: zarr.Group) -> npt.NDArray[np.bool_]:
    """Which shards are done; a flag that cannot be read (a torn write) counts as not done."""
    flags: npt.NDArray[np.bool_] = read_flags(group) != 0
    return flags


def _metadata_problem(path: Path) -> str:
    """What is wrong with the ``zarr.json`` files of the store at ``path`` (named), or a
    generic line when none of them is the cause."""
    if not path.is_dir():
        return f"{str(path)!r} is not a Zarr group (not a folder)"
    for meta in [path / "zarr.json", *sorted(path.glob("*/zarr.json"))]:
        try:
            json.loads(meta.read_bytes())
        except FileNotFoundError:
            if meta.parent == path:
                return f"{str(path)!r} is not a Zarr group (no {str(meta)!r})"
        except (ValueError, OSError) as exc:
            return f"store metadata {str(meta)!r} is malformed ({str(exc).splitlines()[0]})"
    return f"{str(path)!r} is not a Zarr group gigapatch can read (Zarr v3)"


def open_store_group(path: Path, mode: Literal["r", "r+"] = "r") -> zarr.Group:
    """The Zarr group of the gigapatch store at ``path``, its metadata checked.

    Raises
    ------
    StoreError
        ``path`` does not exist, is not a Zarr v3 group, a ``zarr.json`` is
        malformed (named), or it is not a gigapatch store of a readable format.
    """
    if not path.exists():
        raise StoreError(f"store {str(path)!r} does not exist")
    try:
        group = zarr.open_group(path, mode=mode, zarr_format=3)
    except Exception:
        raise StoreError(_metadata_problem(path)) from None
    attrs = group.attrs.get(ATTRS_KEY)
    if not isinstance(attrs, dict) or "format" not in attrs:
        raise StoreError(f"{str(path)!r} is not a gigapatch store (no attrs['{ATTRS_KEY}'])")
    if attrs["format"] not in READABLE_FORMATS:
        raise StoreError(
            f"{str(path)!r} is a gigapatch store of format {attrs['format']!r}; this gigapatch "
            f"reads formats {', '.join(map(str, READABLE_FORMATS))}: upgrade gigapatch"
        )
    return group


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
        self._group = open_store_group(self.path)
        attrs = self._group.attrs[ATTRS_KEY]
        assert isinstance(attrs, dict)  # checked by open_store_group
        self.attrs: dict[str, Any] = attrs
        try:
            missing = [k for k in ("images", "coords", "slide", "label", "done")
                       if k not in self._group]
        except Exception:  # a member's zarr.json that does not parse
            raise StoreError(_metadata_problem(self.path)) from None
        if missing:
            raise StoreError(
                f"{str(self.path)!r} is a damaged gigapatch store: it lacks {', '.join(missing)}"
            )
        self.images: zarr.Array[Any] = array_node(self._group, "images")

    @property
    def format(self) -> int:
        """The store's format version (2: every chunk checksummed; 1: read-only, no chunk
        checksums)."""
        return int(self.attrs["format"])

    @property
    def checksummed(self) -> bool:
        """Whether every chunk of the store carries a CRC32C (format 2)."""
        return self.format >= FORMAT_VERSION

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, index: Any) -> npt.NDArray[Any]:
        # every read goes through the shard reader: finished shards only, checksums checked
        rest: tuple[Any, ...] = ()
        if isinstance(index, tuple):
            index, rest = (index[0] if index else slice(None)), index[1:]
        if index is None or isinstance(index, bool | np.bool_) or any(
            part is None for part in rest
        ):  # NumPy would add an axis, not select patches
            raise InvalidArgumentError(
                "index must be an integer, a slice, or an array of integers or booleans "
                f"selecting patches; got {index!r}"
            )
        rows = np.arange(len(self))[index]
        self._check_ok(np.asarray(rows).reshape(-1))
        if np.ndim(rows) == 0:
            patch: npt.NDArray[Any] = self.reader.read([int(rows)]).squeeze(0)
            return patch[rest] if rest else patch
        patches = self.reader.read(np.asarray(rows, np.int64).reshape(-1))
        patches = patches.reshape(*np.shape(rows), *patches.shape[1:])
        return patches[(slice(None), *rest)] if rest else patches

    def _check_ok(self, rows: npt.NDArray[Any]) -> None:
        """Raise for the first of ``rows`` that failed to extract (its slot holds no data)."""
        if not self.failed_count:
            return
        bad = rows[self.status[rows] != OK]
        if len(bad):
            i = int(bad[0])
            reasons = self.attrs.get("failed", {}).get(str(int(self.slide[i])), [])
            why = reasons[0] if reasons else "a tile it needs did not decode"
            more = f" (and {len(bad) - 1} more of the patches asked for)" if len(bad) > 1 else ""
            raise PatchFailedError(
                f"patch {i} failed to extract: {why}{more}; store.select() leaves out failed "
                "patches")

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
        """Reads patches of finished shards straight from their files (caching each shard's
        checked index), every chunk's checksum checked."""
        return ShardReader(self.images, flags=lambda: read_flags(self._group))

    @property
    def patch_shape(self) -> tuple[int, int, int]:
        """(h, w, C) of one patch."""
        h, w, c = self.images.shape[1:]
        return (h, w, c)

    def _per_patch(self, name: str) -> npt.NDArray[Any]:
        # every chunk checked: a missing or damaged one raises, never reads as zeros
        return _read_only(read_column(array_node(self._group, name), name,
                                      strict=self.checksummed))

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

    @cached_property
    def status(self) -> npt.NDArray[np.uint8]:
        """(N,) uint8: 0 for a patch extracted, 1 for one that failed (``on_error="skip"``: a
        tile it needs did not decode; its slot holds no data). Read-only."""
        return _read_only(read_status(self._group, len(self)))

    @cached_property
    def failed_count(self) -> int:
        """Number of patches that failed to extract."""
        return int(np.count_nonzero(self.status != OK))

    def ok_indices(self) -> npt.NDArray[np.int64]:
        """Store indices of every patch extracted (all but the failed ones), sorted."""
        return np.flatnonzero(self.status == OK).astype(np.int64)

    def select(self, *, include_failed: bool = False,
               **filters: Unpack[Filters]) -> PatchSelection:
        """The patches that pass every given filter, as a view (no pixel is read or copied).

        Takes the filters of :meth:`PatchSelection.select`: ``slide`` (index,
        name or path), ``label`` (label or class name) and ``min_tissue``.
        Patches that failed to extract are left out unless ``include_failed``
        (reading one still raises :class:`~gigapatch.errors.PatchFailedError`).
        """
        if not isinstance(include_failed, bool):
            raise InvalidArgumentError(
                f"include_failed must be True or False; got {include_failed!r}")
        rows = np.arange(len(self)) if include_failed else self.ok_indices()
        return PatchSelection(self, rows).select(**filters)

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

    def verify(self, *, quick: bool = False) -> list[str]:
        """Check the store; return the problems found (empty when it is sound).

        Reads every chunk of every array (checksums, missing chunks, each
        finished shard's digest against its ``done`` value), and checks that
        every shard is done, that the per-patch arrays have one row per patch,
        that every slide index names a recorded source and every patch lies
        inside its source; ``quick`` reads the shard files' indexes only, not
        their chunks. See :func:`gigapatch.store.verify_store` for the damaged
        shards by index.
        """
        from gigapatch.store.verify import verify_store

        return verify_store(self, quick=quick).problems

    def shard(self, index: int) -> npt.NDArray[Any]:
        """Read shard ``index`` whole: the fast way to stream a store."""
        index = check_int("shard index", index, minimum=0)
        if not 0 <= index < self.n_shards:
            raise InvalidArgumentError(
                f"shard index must be in the range [0, {self.n_shards - 1}]; got {index}"
            )
        start = index * self.shard_size
        return self[start : start + self.shard_size]
