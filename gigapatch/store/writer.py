"""Creating, writing and reopening stores: the only code that writes one."""

from __future__ import annotations

import datetime as _dt
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
from gigapatch.errors import InvalidArgumentError, StoreError, StoreExistsError
from gigapatch.store.columns import ChunkProblem, array_node, compare_column, rewrite_chunks
from gigapatch.store.durable import fsync_dir, sync_tree
from gigapatch.store.flags import set_flag
from gigapatch.store.format import ATTRS_KEY, FORMAT_VERSION
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
    path: str | os.PathLike[str], spec: StoreSpec, *, overwrite: bool = False, sync: bool = True
) -> zarr.Group:
    """Create an empty store (no shard done) with every node and attribute of format 2.

    Parameters
    ----------
    path
        The store's folder.
    spec
        What the store holds; ``spec.tissue``, when given, is written as the
        optional node ``tissue``.
    overwrite
        Replace a gigapatch store already at ``path``.
    sync
        Sync every file and folder of the new store to disk before it appears
        at ``path``.

    Raises
    ------
    InvalidArgumentError
        The spec holds no patches.
    StoreExistsError
        ``path`` exists and ``overwrite`` is false, or it is not a gigapatch
        store (never deleted then).
    """
    arrays = spec.arrays()
    n = len(arrays["coords"])
    if n == 0:
        raise InvalidArgumentError("the plan holds no patches: nothing to write")
    path = Path(path)
    _clear_output(path, overwrite)
    # built aside, then renamed into place: a run killed while creating leaves no half-store
    # at ``path`` (only a hidden ``.NAME.creating-*`` folder, removed by the next creation)
    for stale in path.parent.glob(f".{path.name}.creating-*"):
        shutil.rmtree(stale, ignore_errors=True)
    building = path.with_name(f".{path.name}.creating-{os.getpid()}")
    group = zarr.open_group(building, mode="w", zarr_format=3)
    create_nodes(group, spec)
    group.attrs[ATTRS_KEY] = {
        "format": FORMAT_VERSION,
        "version": __version__,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "shard_size": spec.shard_size,
        "codec": spec.codec,
        "sources": list(spec.sources),
        "plan": spec.plan,
    }
    if sync:
        sync_tree(building)  # every node on disk before the store appears at ``path``
    if path.exists():  # an empty folder the user made for the output
        path.rmdir()
    os.replace(building, path)
    if sync:
        fsync_dir(path.parent)
    return zarr.open_group(path, mode="r+")


def write_shard(
    images: zarr.Array[Any], index: int, data: npt.NDArray[Any], *, sync: bool = True
) -> int:
    """Write shard ``index`` of ``images`` whole (one writer per shard, never partial); return
    the bytes of its file (0 when written through zarr)."""
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
        return 0
    return layout.write(index, data, sync=sync)


def mark_done(group: zarr.Group, indices: Iterable[int], *, sync: bool = True) -> None:
    """Set the ``done`` flags of shards ``indices`` once their files are on disk (driver process
    only).

    Each flag holds the digest of its shard's file as it is on disk now
    (format 2), so any later change of that file is found by readers and
    ``verify``.

    Raises
    ------
    ShardDamaged
        A shard's file is missing or damaged: it is not marked done.
    """
    images = array_node(group, "images")
    layout = ShardLayout.of(images)
    for index in indices:
        if layout is None:
            set_flag(group, index, 1, sync=sync)
            continue
        fd, table = layout.open_shard(index)
        try:
            digest = layout.digest(fd, index, table)
        finally:
            os.close(fd)
        set_flag(group, index, digest, sync=sync)


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
