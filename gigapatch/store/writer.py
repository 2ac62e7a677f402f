"""Creating, writing and reopening stores: the only code that writes one."""

from __future__ import annotations

import datetime as _dt
import errno
import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import zarr

from gigapatch import __version__
from gigapatch.errors import InvalidArgumentError, StoreError, StoreExistsError, StoreLockedError
from gigapatch.store.format import ATTRS_KEY, CODECS, FORMAT_VERSION, META_ROWS
from gigapatch.store.lock import StoreLock, abandoned, lock_holder
from gigapatch.store.reader import PatchStore, array_node
from gigapatch.store.shards import ShardLayout
from gigapatch.store.spec import StoreSpec

__all__ = ["create_store", "mark_done", "open_for_resume", "write_shard"]


def _is_gigapatch_store(path: Path) -> bool:
    try:
        group = zarr.open_group(path, mode="r")
    except Exception:
        return False
    return ATTRS_KEY in group.attrs


def _check_output(path: Path, overwrite: bool, lock: StoreLock) -> bool:
    """Check what is at ``path``; return whether it is a store to replace (its lock is then
    taken, so a store another run writes is never deleted)."""
    if not path.exists():
        return False
    holder = lock_holder(path) if path.is_dir() else None
    if holder is not None and not overwrite:
        raise StoreLockedError(
            f"output {str(path)!r} is being written by another run: {holder.describe()}"
        )
    if not overwrite:
        raise StoreExistsError(
            f"output {str(path)!r} already exists; pass overwrite=True (--overwrite) to replace "
            "it, or resume=True (--resume) to finish it"
        )
    if path.is_dir() and not any(path.iterdir()):
        return False  # an empty folder the user made: the new store is renamed over it
    if path.is_dir() and _is_gigapatch_store(path):
        lock.acquire()
        return True
    raise StoreExistsError(
        f"output {str(path)!r} exists and is not a gigapatch store; refusing to overwrite it"
    )


def _remove_abandoned(path: Path) -> None:
    """Remove the folders that runs now gone left while creating or replacing ``path``."""
    for pattern in (f".{path.name}.creating-*", f".{path.name}.replaced-*"):
        for folder in path.parent.glob(pattern):
            if folder.is_dir() and abandoned(folder):
                shutil.rmtree(folder, ignore_errors=True)


def _taken_meanwhile(path: Path) -> StoreError:
    holder = lock_holder(path)
    if holder is not None:
        return StoreLockedError(
            f"output {str(path)!r} was created by another run meanwhile: {holder.describe()}"
        )
    return StoreExistsError(
        f"output {str(path)!r} was created by another run meanwhile; pass overwrite=True "
        "(--overwrite) to replace it, or resume=True (--resume) to finish it"
    )


def _put_in_place(building: Path, path: Path, replacing: bool, lock: StoreLock) -> None:
    """Rename ``building`` to ``path``, never over a store another run made meanwhile."""
    aside = path.with_name(f".{path.name}.replaced-{lock.token}") if replacing else None
    if aside is not None:
        os.rename(path, aside)  # the old store, still locked by this run
    try:
        os.rename(building, path)  # fails when ``path`` is a folder that is not empty
    except OSError as exc:
        if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
            raise
        raise _taken_meanwhile(path) from None
    finally:
        if aside is not None:
            shutil.rmtree(aside, ignore_errors=True)
    lock.placed()


def create_store(
    path: str | os.PathLike[str], spec: StoreSpec, *, overwrite: bool = False,
    lock: StoreLock | None = None,
) -> zarr.Group:
    """Create an empty store (no shard done) with every node and attribute of format 1.

    The store is built in a hidden sibling folder (``.NAME.creating-TOKEN``)
    holding the writer lock from the start, then renamed into place: a run
    killed while creating leaves nothing at ``path``, and of two runs creating
    one store at once, one makes it and the other is refused.

    Parameters
    ----------
    path
        The store's folder.
    spec
        What the store holds; ``spec.tissue``, when given, is written as the
        optional node ``tissue``.
    overwrite
        Replace a gigapatch store already at ``path`` (after taking its lock).
    lock
        The run's lock of ``path``: held when this returns. ``None``: a lock
        of this call alone, released before it returns.

    Raises
    ------
    InvalidArgumentError
        The spec holds no patches.
    StoreExistsError
        ``path`` exists and ``overwrite`` is false, or it is not a gigapatch
        store (never deleted then), or another run created it meanwhile.
    StoreLockedError
        Another run holds the lock of the store at ``path``.
    """
    arrays = spec.arrays()
    n = len(arrays["coords"])
    if n == 0:
        raise InvalidArgumentError("the plan holds no patches: nothing to write")
    path = Path(os.path.abspath(path))
    own = lock is None
    lock = StoreLock(path) if lock is None else lock
    try:
        replacing = _check_output(path, overwrite, lock)
        _remove_abandoned(path)
        building = path.with_name(f".{path.name}.creating-{lock.token}")
        path.parent.mkdir(parents=True, exist_ok=True)
        building.mkdir()
        try:
            lock.build(building)
            _build(building, spec, arrays)
            _put_in_place(building, path, replacing, lock)
        except BaseException:
            shutil.rmtree(building, ignore_errors=True)
            raise
    finally:
        if own:
            lock.release()
    return zarr.open_group(path, mode="r+")


def _build(building: Path, spec: StoreSpec, arrays: dict[str, npt.NDArray[Any]]) -> None:
    """Write the nodes and attributes of a new store into ``building``."""
    n = len(arrays["coords"])
    h, w, c = spec.patch_shape
    n_shards = -(-n // spec.shard_size)
    group = zarr.open_group(building, mode="a", zarr_format=3)  # keeps the lock already in it
    compressor = CODECS[spec.codec]()
    group.create_array(
        "images",
        shape=(n, h, w, c),
        dtype=np.dtype(spec.dtype),
        chunks=(1, h, w, c),
        shards=(spec.shard_size, h, w, c),
        compressors=[compressor] if compressor else None,
        fill_value=0,
        dimension_names=["patch", "y", "x", "channel"],
    )
    meta_rows = min(n, META_ROWS)
    for name, data in arrays.items():  # coords, slide, label, and tissue if any
        group.create_array(
            name,
            data=data,
            chunks=(meta_rows, *data.shape[1:]),
            dimension_names=["patch", "yx"] if name == "coords" else ["patch"],
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
        "shard_size": spec.shard_size,
        "codec": spec.codec,
        "sources": list(spec.sources),
        "plan": spec.plan,
    }


def write_shard(
    images: zarr.Array[Any], index: int, data: npt.NDArray[Any], *, sync: bool = True
) -> int | None:
    """Write shard ``index`` of ``images`` whole (one writer per shard, never partial).

    Returns the size of the shard file, for the driver to check it sees the same file;
    None when the shard is written through zarr (no :class:`ShardLayout`).
    """
    size = (images.shards or images.chunks)[0]
    start = index * size
    stop = min(start + size, images.shape[0])
    if data.shape != (stop - start, *images.shape[1:]):
        raise ValueError(
            f"shard {index} needs shape {(stop - start, *images.shape[1:])}; got {data.shape}"
        )
    layout = ShardLayout.of(images)
    if layout is None:
        images[start:stop] = data
        return None
    return layout.write(index, data, sync=sync)


def mark_done(group: zarr.Group, indices: Iterable[int]) -> None:
    """Set the ``done`` flags of shards whose bytes are on disk (driver process only)."""
    done = array_node(group, "done")
    for index in indices:
        done[index] = True


_SOURCE_KEYS = ("path", "size", "mtime", "level", "shape", "label")


def _differences(store: PatchStore, spec: StoreSpec) -> list[str]:
    """How ``store`` differs from what ``spec`` would make (empty when it does not)."""
    attrs, diffs = store.attrs, []
    plan, old_plan = json.loads(json.dumps(spec.plan)), attrs.get("plan", {})
    if plan != attrs.get("plan"):
        keys = sorted(k for k in set(plan) | set(old_plan) if plan.get(k) != old_plan.get(k))
        diffs.append(f"plan ({', '.join(keys) or 'values'})")
    if attrs.get("shard_size") != spec.shard_size:
        diffs.append(f"shard size ({attrs.get('shard_size')} vs {spec.shard_size})")
    if attrs.get("codec") != spec.codec:
        diffs.append(f"codec ({attrs.get('codec')} vs {spec.codec})")
    shape, dtype = tuple(spec.patch_shape), np.dtype(spec.dtype)
    if store.patch_shape != shape or store.images.dtype != dtype:
        diffs.append(f"patches ({store.patch_shape} {store.images.dtype} vs {shape} {dtype})")
    old, new = attrs.get("sources", []), json.loads(json.dumps(list(spec.sources)))
    if len(old) != len(new):
        diffs.append(f"number of sources ({len(old)} vs {len(new)})")
    else:
        for k, (a, b) in enumerate(zip(old, new, strict=True)):
            changed = [key for key in _SOURCE_KEYS if a.get(key) != b.get(key)]
            if changed:
                diffs.append(f"source {k} {b.get('name') or b.get('path')} ({', '.join(changed)})")
    if diffs:
        return diffs
    arrays = spec.arrays()
    for name in ("coords", "slide", "label"):
        if not np.array_equal(getattr(store, name), arrays[name]):
            diffs.append(f"{name} of the patches")
    tissue, new_tissue = store.tissue, arrays.get("tissue")
    same = (tissue is None and new_tissue is None) or (
        tissue is not None and new_tissue is not None
        and np.array_equal(tissue, new_tissue, equal_nan=True)
    )
    if not same:
        diffs.append("tissue fractions of the patches")
    return diffs


def open_for_resume(path: str | os.PathLike[str], spec: StoreSpec) -> zarr.Group:
    """Open an existing store to finish it, after checking it was made by the same request.

    The plan, its coordinates, slide indices, labels and tissue fractions, the
    patch shape and dtype, shard size, codec and every source's path, size and
    modification time must match ``spec``.

    Raises
    ------
    StoreError
        It is not a gigapatch store, or it differs (the message lists how).
    """
    diffs = _differences(PatchStore(path), spec)
    if diffs:
        raise StoreError(
            f"cannot resume {str(path)!r}: it was made by a different request (differs in "
            f"{'; '.join(diffs)}); pass overwrite=True (--overwrite) to start again"
        )
    for stale in Path(path, "images").rglob(".*.tmp"):  # shard files a killed run left half-written
        stale.unlink(missing_ok=True)
    return zarr.open_group(path, mode="r+")
