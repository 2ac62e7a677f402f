"""The patch store: a Zarr v3 group in gigapatch's format version 1.

=============  ====================  ==============================================
node           shape / dtype         meaning
=============  ====================  ==============================================
``images``     (N, h, w, C), source  the patches; chunk = 1 patch, shard = S patches
``coords``     (N, 2) int64          (y, x) level-0 top-left of each patch
``slide``      (N,) int32            index into ``attrs["gigapatch"]["sources"]``
``label``      (N,) int32            class label, -1 where none
``done``       (ceil(N/S),) bool     shard written completely
``tissue``     (N,) float32          optional: tissue fraction of each patch's footprint
attrs          ``gigapatch``         format, version, sources, plan, created
=============  ====================  ==============================================

A shard of ``images`` is written whole by one task; only then is its ``done``
flag set, by the single process that drives the run. A store whose flags are
not all set is incomplete, whatever its other nodes hold.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.codecs import BloscCodec, ZstdCodec

from gigapatch._version import __version__
from gigapatch.errors import InvalidArgumentError, StoreError, StoreExistsError
from gigapatch.shards import shard_problem, shard_writer

__all__ = [
    "CODECS",
    "FORMAT_VERSION",
    "PatchSelection",
    "PatchStore",
    "create_store",
    "mark_done",
    "open_for_resume",
    "read_done",
    "write_shard",
]

FORMAT_VERSION = 1
ATTRS_KEY = "gigapatch"
_META_ROWS = 1 << 16  # chunk length of the small per-patch arrays

#: Lossless codecs for ``images``; patches of decoded JPEG tissue gain only 1.3-1.8x.
CODECS: dict[str, Any] = {
    "lz4": lambda: BloscCodec(cname="lz4", clevel=5, shuffle="noshuffle"),
    "zstd": lambda: ZstdCodec(level=1),
    "zstd-3": lambda: ZstdCodec(level=3),
    "none": lambda: None,
}


def _is_gigapatch_store(path: Path) -> bool:
    try:
        group = zarr.open_group(path, mode="r")
    except Exception:
        return False
    return ATTRS_KEY in group.attrs


def _clear_output(path: Path, overwrite: bool) -> None:
    if not path.exists():
        return
    if not overwrite:
        raise StoreExistsError(
            f"output {str(path)!r} already exists; pass overwrite=True (--overwrite) to replace "
            "it, or resume=True (--resume) to finish it"
        )
    if path.is_dir() and (not any(path.iterdir()) or _is_gigapatch_store(path)):
        shutil.rmtree(path)
        return
    raise StoreExistsError(
        f"output {str(path)!r} exists and is not a gigapatch store; refusing to overwrite it"
    )


def create_store(
    path: str | os.PathLike,
    *,
    patch_shape: tuple[int, int, int],
    dtype: np.dtype,
    coords: np.ndarray,
    slide: np.ndarray,
    label: np.ndarray,
    sources: Sequence[dict],
    plan: dict,
    shard_size: int = 256,
    codec: str = "lz4",
    overwrite: bool = False,
    tissue: np.ndarray | None = None,
) -> zarr.Group:
    """Create an empty store (no shard done) with every node and attribute of format 1.

    ``tissue`` (optional, (N,) float32): each patch's tissue fraction, written
    as the optional node ``tissue`` when the plan used a tissue mask.

    Raises
    ------
    StoreExistsError
        ``path`` exists and ``overwrite`` is false, or it is not a gigapatch
        store (never deleted then).
    """
    n = len(coords)
    if n == 0:
        raise InvalidArgumentError("the plan holds no patches: nothing to write")
    if isinstance(shard_size, bool) or not isinstance(shard_size, int) or shard_size < 1:
        raise InvalidArgumentError(f"shard_size must be a positive integer; got {shard_size!r}")
    if codec not in CODECS:
        raise InvalidArgumentError(f"codec must be one of {', '.join(CODECS)}; got {codec!r}")
    path = Path(path)
    _clear_output(path, overwrite)
    # built aside, then renamed into place: a run killed while creating leaves no half-store
    # at ``path`` (only a hidden ``.NAME.creating-*`` folder, removed by the next creation)
    for stale in path.parent.glob(f".{path.name}.creating-*"):
        shutil.rmtree(stale, ignore_errors=True)
    building = path.with_name(f".{path.name}.creating-{os.getpid()}")
    h, w, c = patch_shape
    n_shards = -(-n // shard_size)
    group = zarr.open_group(building, mode="w", zarr_format=3)
    compressor = CODECS[codec]()
    group.create_array(
        "images",
        shape=(n, h, w, c),
        dtype=dtype,
        chunks=(1, h, w, c),
        shards=(shard_size, h, w, c),
        compressors=[compressor] if compressor else None,
        fill_value=0,
        dimension_names=["patch", "y", "x", "channel"],
    )
    meta_rows = min(n, _META_ROWS)
    group.create_array(
        "coords",
        data=np.asarray(coords, np.int64),
        chunks=(meta_rows, 2),
        dimension_names=["patch", "yx"],
    )
    group.create_array(
        "slide", data=np.asarray(slide, np.int32), chunks=(meta_rows,), dimension_names=["patch"]
    )
    group.create_array(
        "label", data=np.asarray(label, np.int32), chunks=(meta_rows,), dimension_names=["patch"]
    )
    if tissue is not None:
        group.create_array(
            "tissue",
            data=np.asarray(tissue, np.float32),
            chunks=(meta_rows,),
            dimension_names=["patch"],
        )
    # one tiny uncompressed file per flag: setting a flag rewrites no other flag, so a run
    # killed while marking a shard done cannot damage the flags of finished shards
    group.create_array(
        "done",
        shape=(n_shards,),
        dtype=bool,
        fill_value=False,
        chunks=(1,),
        compressors=None,
        dimension_names=["shard"],
    )
    group.attrs[ATTRS_KEY] = {
        "format": FORMAT_VERSION,
        "version": __version__,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "shard_size": shard_size,
        "codec": codec,
        "sources": list(sources),
        "plan": plan,
    }
    if path.exists():  # an empty folder the user made for the output
        path.rmdir()
    os.replace(building, path)
    return zarr.open_group(path, mode="r+")


def write_shard(images: zarr.Array, index: int, data: np.ndarray) -> None:
    """Write shard ``index`` of ``images`` whole (one writer per shard, never partial)."""
    size = images.shards[0]
    start = index * size
    stop = min(start + size, images.shape[0])
    if data.shape != (stop - start, *images.shape[1:]):
        raise ValueError(
            f"shard {index} needs shape {(stop - start, *images.shape[1:])}; got {data.shape}"
        )
    writer = shard_writer(images)
    if writer is None:
        images[start:stop] = data
    else:
        writer(index, data)


def mark_done(group: zarr.Group, indices: Sequence[int]) -> None:
    """Set the ``done`` flags of shards whose bytes are on disk (driver process only)."""
    done = group["done"]
    for index in indices:
        done[index] = True


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


_SOURCE_KEYS = ("path", "size", "mtime", "level", "shape", "label")


def open_for_resume(
    path: str | os.PathLike,
    *,
    patch_shape: tuple[int, int, int],
    dtype: np.dtype,
    coords: np.ndarray,
    slide: np.ndarray,
    label: np.ndarray,
    sources: Sequence[dict],
    plan: dict,
    shard_size: int = 256,
    codec: str = "lz4",
    tissue: np.ndarray | None = None,
) -> zarr.Group:
    """Open an existing store to finish it, after checking it was made by the same request.

    Takes the arguments of :func:`create_store`. The plan, its coordinates,
    slide indices and labels, the patch shape and dtype, shard size, codec
    and every source's path, size and modification time must match.

    Raises
    ------
    StoreError
        It is not a gigapatch store, or it differs (the message lists how).
    """
    store = PatchStore(path)
    attrs, diffs = store.attrs, []
    if json.loads(json.dumps(plan)) != attrs.get("plan"):
        keys = sorted(k for k in set(plan) | set(attrs.get("plan", {}))
                      if plan.get(k) != attrs.get("plan", {}).get(k))
        diffs.append(f"plan ({', '.join(keys) or 'values'})")
    if attrs.get("shard_size") != shard_size:
        diffs.append(f"shard size ({attrs.get('shard_size')} vs {shard_size})")
    if attrs.get("codec") != codec:
        diffs.append(f"codec ({attrs.get('codec')} vs {codec})")
    if store.patch_shape != tuple(patch_shape) or store.images.dtype != np.dtype(dtype):
        diffs.append(f"patches ({store.patch_shape} {store.images.dtype} vs "
                     f"{tuple(patch_shape)} {np.dtype(dtype)})")
    old = attrs.get("sources", [])
    if len(old) != len(sources):
        diffs.append(f"number of sources ({len(old)} vs {len(sources)})")
    else:
        for k, (a, b) in enumerate(zip(old, json.loads(json.dumps(list(sources))), strict=True)):
            changed = [key for key in _SOURCE_KEYS if a.get(key) != b.get(key)]
            if changed:
                diffs.append(f"source {k} {b.get('name') or b.get('path')} ({', '.join(changed)})")
    if not diffs:
        for name, new in (("coords", coords), ("slide", slide), ("label", label)):
            if not np.array_equal(store._group[name][:], np.asarray(new)):
                diffs.append(f"{name} of the patches")
        has = "tissue" in store._group
        if has != (tissue is not None) or (
            has and not np.array_equal(store._group["tissue"][:], np.asarray(tissue, np.float32),
                                       equal_nan=True)
        ):
            diffs.append("tissue fractions of the patches")
    if diffs:
        raise StoreError(
            f"cannot resume {str(path)!r}: it was made by a different request (differs in "
            f"{'; '.join(diffs)}); pass overwrite=True (--overwrite) to start again"
        )
    for stale in Path(path, "images").rglob(".*.tmp"):  # shard files a killed run left half-written
        stale.unlink(missing_ok=True)
    return zarr.open_group(path, mode="r+")


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
