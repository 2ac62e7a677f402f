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
from gigapatch.store.format import ATTRS_KEY, CODECS, FORMAT_VERSION, META_ROWS
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
    path: str | os.PathLike[str], spec: StoreSpec, *, overwrite: bool = False
) -> zarr.Group:
    """Create an empty store (no shard done) with every node and attribute of format 1.

    Parameters
    ----------
    path
        The store's folder.
    spec
        What the store holds; ``spec.tissue``, when given, is written as the
        optional node ``tissue``.
    overwrite
        Replace a gigapatch store already at ``path``.

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
    h, w, c = spec.patch_shape
    n_shards = -(-n // spec.shard_size)
    group = zarr.open_group(building, mode="w", zarr_format=3)
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
    if path.exists():  # an empty folder the user made for the output
        path.rmdir()
    os.replace(building, path)
    return zarr.open_group(path, mode="r+")


def write_shard(
    images: zarr.Array[Any], index: int, data: npt.NDArray[Any], *, sync: bool = True
) -> None:
    """Write shard ``index`` of ``images`` whole (one writer per shard, never partial)."""
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
    else:
        layout.write(index, data, sync=sync)


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
