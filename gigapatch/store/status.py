"""Patches that failed to extract (``on_error="skip"``): the ``status`` node, the reasons in
the attributes, and the run's ``report.json``.

``status`` (N,) uint8 holds 0 for a patch extracted and 1 for one whose
tiles did not decode (its slot holds zeros, never handed out as data). It is
not derived from the plan: the driver writes the failed rows of a shard
before it marks the shard done, and a resumed run resets the rows of every
shard it redoes. The reasons are kept per slide in ``attrs["gigapatch"]
["failed"]`` (``{source index: [reason, ...]}``); slides left out of the
plan are in ``attrs["gigapatch"]["skipped"]`` (``[{path, name, reason}]``).
Only the driver writes either; zarr replaces ``zarr.json`` and each chunk
atomically (a temporary file renamed over it).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import zarr
from zarr.codecs import Crc32cCodec, ZstdCodec

from gigapatch.store.columns import array_node, read_column
from gigapatch.store.durable import atomic_write, fsync_dir, sync_tree
from gigapatch.store.format import ATTRS_KEY, META_ROWS

if TYPE_CHECKING:
    from gigapatch.store.reader import PatchStore

__all__ = [
    "FAILED",
    "OK",
    "REPORT_NAME",
    "STATUS_DTYPE",
    "create_status",
    "read_status",
    "record_failures",
    "report",
    "reset_status",
    "write_report",
]

STATUS_DTYPE = np.dtype(np.uint8)
#: ``status`` values: extracted, or failed (a tile it needs did not decode).
OK, FAILED = 0, 1
#: The run's summary, written inside the store's folder.
REPORT_NAME = "report.json"


def create_status(group: zarr.Group, n: int) -> zarr.Array[Any]:
    """Create ``status`` (every patch ok) in ``group``; chunked like the per-patch arrays."""
    node: zarr.Array[Any] = group.create_array(
        "status",
        shape=(n,),
        dtype=STATUS_DTYPE,
        chunks=(max(1, min(n, META_ROWS)),),
        compressors=[ZstdCodec(level=3), Crc32cCodec()],
        fill_value=0,
        config={"write_empty_chunks": True},
        dimension_names=["patch"],
    )
    node[...] = np.zeros(n, STATUS_DTYPE)
    return node


def read_status(group: zarr.Group, n: int) -> npt.NDArray[np.uint8]:
    """``status`` of every patch, every chunk checked; all ok for a store without the node
    (made before it existed)."""
    if "status" not in group:
        return np.zeros(n, STATUS_DTYPE)
    status: npt.NDArray[np.uint8] = read_column(array_node(group, "status"), "status")
    return status


def _sync_node(node: zarr.Array[Any]) -> None:
    root = getattr(node.store, "root", None)
    if root is not None:
        sync_tree(Path(root) / node.path)  # its chunk files (a few) and their folders


def reset_status(group: zarr.Group, ranges: Sequence[tuple[int, int]], *,
                 sync: bool = True) -> None:
    """Mark the patches of ``ranges`` (start, stop) ok again: the shards a resumed run redoes.
    Creates ``status`` in a store made before it existed."""
    n = int(array_node(group, "images").shape[0])
    if "status" not in group:
        create_status(group, n)
        return
    node = array_node(group, "status")
    try:
        current = read_column(node, "status")
    except Exception:  # a damaged chunk: rewrite every row of the shards being redone
        current = np.ones(n, STATUS_DTYPE)
    changed = False
    for start, stop in ranges:
        if current[start:stop].any():
            node[start:stop] = 0
            changed = True
    if changed and sync:
        _sync_node(node)


def record_failures(
    group: zarr.Group, rows: npt.ArrayLike, reasons: Mapping[int, Sequence[str]], *,
    sync: bool = True,
) -> None:
    """Mark patches ``rows`` failed and add ``reasons`` (per source index) to the attributes.

    The driver calls it for a shard before it marks the shard done.
    """
    rows = np.unique(np.asarray(rows, np.int64))
    if len(rows):
        node = array_node(group, "status")
        node.set_coordinate_selection(rows, np.full(len(rows), FAILED, STATUS_DTYPE))
        if sync:
            _sync_node(node)
    if not reasons:
        return
    attrs: dict[str, Any] = dict(group.attrs[ATTRS_KEY])  # type: ignore[arg-type]
    before: dict[str, Any] = attrs.get("failed") or {}
    failed: dict[str, list[str]] = {k: list(v) for k, v in before.items()}
    for k, found in reasons.items():
        mine = failed.setdefault(str(k), [])
        mine += [reason for reason in found if reason not in mine]
    attrs["failed"] = dict(sorted(failed.items(), key=lambda item: int(item[0])))
    group.attrs[ATTRS_KEY] = attrs  # zarr replaces zarr.json whole
    root = getattr(group.store, "root", None)
    if sync and root is not None:
        fsync_dir(Path(root))


def report(store: PatchStore) -> dict[str, Any]:
    """What a run left out and why: slides skipped, patches failed per slide (JSON-ready)."""
    status = store.status
    failed = np.flatnonzero(status != OK)
    per_slide = np.bincount(store.slide[failed], minlength=len(store.sources)) if len(
        failed) else np.zeros(len(store.sources), np.int64)
    reasons: dict[str, list[str]] = store.attrs.get("failed", {})
    slides = []
    for k, src in enumerate(store.sources):
        if per_slide[k] or str(k) in reasons:
            slides.append({"source": k, "path": src.get("path"), "name": src.get("name"),
                           "patches": int(per_slide[k]), "reasons": reasons.get(str(k), [])})
    skipped = list(store.attrs.get("skipped", []))
    return {
        "patches": len(store),
        "ok": int(len(store) - len(failed)),
        "failed": len(failed),
        "shards_done": store.shards_done,
        "shards": store.n_shards,
        "skipped_slides": skipped,
        "failed_slides": slides,
    }


def write_report(store: PatchStore, *, sync: bool = True) -> Path:
    """Write :func:`report` as ``report.json`` in the store's folder; return its path."""
    path = Path(os.fspath(store.path)) / REPORT_NAME
    atomic_write(path, (json.dumps(report(store), indent=2) + "\n").encode(), sync=sync)
    return path
