"""Creating, writing and reopening stores: the only code that writes one."""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import zarr

from gigapatch import __version__
from gigapatch.errors import InvalidArgumentError, StoreError, StoreExistsError
from gigapatch.store.format import ATTRS_KEY, CODECS, FORMAT_VERSION, META_ROWS
from gigapatch.store.reader import PatchStore
from gigapatch.store.shards import shard_writer

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
    meta_rows = min(n, META_ROWS)
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


def write_shard(images: zarr.Array, index: int, data: np.ndarray, *, sync: bool = True) -> None:
    """Write shard ``index`` of ``images`` whole (one writer per shard, never partial)."""
    size = images.shards[0]
    start = index * size
    stop = min(start + size, images.shape[0])
    if data.shape != (stop - start, *images.shape[1:]):
        raise ValueError(
            f"shard {index} needs shape {(stop - start, *images.shape[1:])}; got {data.shape}"
        )
    writer = shard_writer(images, sync=sync)
    if writer is None:
        images[start:stop] = data
    else:
        writer(index, data)


def mark_done(group: zarr.Group, indices: Sequence[int]) -> None:
    """Set the ``done`` flags of shards whose bytes are on disk (driver process only)."""
    done = group["done"]
    for index in indices:
        done[index] = True


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
