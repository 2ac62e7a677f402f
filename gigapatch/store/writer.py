"""Creating, writing and reopening stores: the only code that writes one."""

from __future__ import annotations

import datetime as _dt
import errno
import json
import os
import shutil
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import zarr

from gigapatch import __version__
from gigapatch.errors import InvalidArgumentError, StoreError, StoreExistsError, StoreLockedError
from gigapatch.store.columns import ChunkProblem, array_node, compare_column, rewrite_chunks
from gigapatch.store.durable import fsync_dir, sync_tree
from gigapatch.store.flags import set_flags
from gigapatch.store.format import ATTRS_KEY, FORMAT_VERSION
from gigapatch.store.lock import StoreLock, abandoned, lock_holder
from gigapatch.store.nodes import create_nodes
from gigapatch.store.reader import PatchStore
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


def _remove(folder: Path, removing: list[threading.Thread] | None) -> None:
    """Delete ``folder`` now, or on a thread appended to ``removing`` (the caller joins it)."""
    if removing is None:
        shutil.rmtree(folder, ignore_errors=True)
        return
    thread = threading.Thread(target=shutil.rmtree, args=(folder,), kwargs={"ignore_errors": True},
                              name="gigapatch-remove-replaced")
    thread.start()
    removing.append(thread)


def _put_in_place(building: Path, path: Path, replacing: bool, lock: StoreLock,
                  removing: list[threading.Thread] | None = None) -> None:
    """Rename ``building`` to ``path``, never over a store another run made meanwhile; a store
    replaced is renamed aside, then deleted (see :func:`_remove`)."""
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
            _remove(aside, removing)
    lock.placed()


def create_store(
    path: str | os.PathLike[str], spec: StoreSpec, *, overwrite: bool = False,
    lock: StoreLock | None = None, sync: bool = True,
    removing: list[threading.Thread] | None = None,
) -> zarr.Group:
    """Create an empty store (no shard done) with every node and attribute of format 2.

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
    sync
        Sync every file and folder of the new store to disk before it appears
        at ``path``, and the rename after.
    removing
        A list to put the thread that deletes a replaced store on, for the
        caller to join: the deletion (seconds for a large store) then runs
        while the caller writes the new one. None: deleted before this returns.

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
        why = "; ".join(f"{s.get('name', s.get('path'))}: {s.get('reason')}"
                        for s in spec.skipped or ())
        raise InvalidArgumentError("the plan holds no patches: nothing to write"
                                   + (f" (slides left out: {why})" if why else ""))
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
            _build(building, spec)
            if sync:
                sync_tree(building)  # every node on disk before the store appears at ``path``
            _put_in_place(building, path, replacing, lock, removing)
            if sync:
                fsync_dir(path.parent)  # the rename itself survives a power loss
        except BaseException:
            shutil.rmtree(building, ignore_errors=True)
            raise
    finally:
        if own:
            lock.release()
    return zarr.open_group(path, mode="r+")


def _build(building: Path, spec: StoreSpec) -> None:
    """Write the nodes and attributes of a new store into ``building``."""
    group = zarr.open_group(building, mode="a", zarr_format=3)  # keeps the lock already in it
    create_nodes(group, spec)
    group.attrs[ATTRS_KEY] = {
        "format": FORMAT_VERSION,
        "version": __version__,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "shard_size": spec.shard_size,
        "codec": spec.codec,
        "sources": list(spec.sources),
        "plan": spec.plan,
        **({"skipped": list(spec.skipped)} if spec.skipped else {}),
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


def mark_done(group: zarr.Group, indices: Iterable[int], *, sync: bool = True) -> None:
    """Set the ``done`` flags of shards ``indices`` once their files are on disk (driver process
    only).

    Each flag holds the digest of its shard's file as it is on disk now
    (format 2), so any later change of that file is found by readers and
    ``verify``. Every file is checked before any flag is set; the flags are
    then set together, with one sync of their folder.

    Raises
    ------
    ShardDamaged
        A shard's file is missing or damaged: no flag is set.
    """
    images = array_node(group, "images")
    layout = ShardLayout.of(images)
    values: dict[int, int] = {}
    for index in indices:
        if layout is None:
            values[index] = 1
            continue
        fd, table = layout.open_shard(index)
        try:
            values[index] = layout.digest(fd, index, table)
        finally:
            os.close(fd)
    set_flags(group, values, sync=sync)


_SOURCE_KEYS = ("path", "size", "mtime", "level", "shape", "label")


def _source_differences(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[str]:
    if len(old) != len(new):
        return [f"number of sources ({len(old)} vs {len(new)})"]
    diffs = []
    for k, (a, b) in enumerate(zip(old, new, strict=True)):
        name = b.get("name") or b.get("path")
        changed = [key for key in _SOURCE_KEYS if a.get(key) != b.get(key)]
        if changed:
            diffs.append(f"source {k} {name} ({', '.join(changed)})")
        elif a.get("fingerprint") != b.get("fingerprint"):
            diffs.append(
                f"source {k} {name} (its content changed on disk since the store was made: "
                "same size and time, other content fingerprint)"
            )
    return diffs


def _differences(store: PatchStore, spec: StoreSpec) -> tuple[list[str], list[ChunkProblem]]:
    """How ``store`` differs from what ``spec`` would make (empty when it does not), and the
    chunks of its per-patch arrays that are missing or damaged (to write again)."""
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
    diffs += _source_differences(
        attrs.get("sources", []), json.loads(json.dumps(list(spec.sources)))
    )
    if diffs:
        return diffs, []
    broken: list[ChunkProblem] = []
    arrays = spec.arrays()
    for name in ("coords", "slide", "label", "tissue"):
        expected = arrays.get(name)
        if (name in store._group) != (expected is not None):
            diffs.append("tissue fractions of the patches")
            continue
        if expected is None:
            continue
        differs, bad = compare_column(array_node(store._group, name), name, expected)
        if differs:
            diffs.append("tissue fractions of the patches" if name == "tissue"
                         else f"{name} of the patches")
        broken += bad
    return diffs, broken


def open_for_resume(
    path: str | os.PathLike[str], spec: StoreSpec, *, sync: bool = True
) -> zarr.Group:
    """Open an existing store to finish it, after checking it was made by the same request.

    The plan, its coordinates, slide indices, labels and tissue fractions, the
    patch shape and dtype, shard size, codec and every source's path, size,
    modification time and content fingerprint must match ``spec``. Chunks of
    the per-patch arrays that are missing or damaged (``verify --repair``
    removes damaged ones) are written again from ``spec``.

    Raises
    ------
    StoreError
        It is not a gigapatch store, it is of format 1, or it differs (the
        message lists how).
    """
    store = PatchStore(path)
    if store.format != FORMAT_VERSION:
        raise StoreError(
            f"cannot resume {str(path)!r}: it is a store of format {store.format} (no chunk "
            "checksums), which this gigapatch reads but does not write; pass overwrite=True "
            "(--overwrite) to extract it again"
        )
    diffs, broken = _differences(store, spec)
    if diffs:
        raise StoreError(
            f"cannot resume {str(path)!r}: it was made by a different request (differs in "
            f"{'; '.join(diffs)}); pass overwrite=True (--overwrite) to start again"
        )
    for stale in Path(path, "images").rglob(".*.tmp"):  # shard files a killed run left half-written
        stale.unlink(missing_ok=True)
    group = zarr.open_group(path, mode="r+")
    arrays = spec.arrays()
    for problem in broken:
        rewrite_chunks(array_node(group, problem.array), arrays[problem.array], [problem])
    for name in {problem.array for problem in broken} if sync else ():
        sync_tree(Path(path) / name)
    return group
