"""Verifying and repairing a store: every chunk read, every flag checked against its file.

:func:`verify_store` reads every chunk of every array — each finished
shard's file (its index, its digest against the ``done`` value, and with
``quick=False`` every chunk's CRC32C and decoding), every chunk of the
per-patch arrays — and checks counts, slide indices and that every patch lies
inside its source. :func:`repair_store` then makes the store resumable from
what it found: it clears the ``done`` flag of every damaged shard and removes
every damaged per-patch chunk, so ``extract --resume`` rewrites exactly those
(the per-patch arrays from the plan, the shards from the slides) and nothing
else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import zarr
from zarr.core.sync import sync

from gigapatch.errors import StoreError
from gigapatch.store.columns import ChunkProblem, array_node, check_column, read_flags
from gigapatch.store.durable import fsync_dir
from gigapatch.store.flags import set_flag

if TYPE_CHECKING:
    from gigapatch.store.reader import PatchStore

__all__ = ["Verification", "repair_store", "verify_store"]

#: Called as ``progress(shards_checked, shards_total)``.
Progress = Callable[[int, int], None]

_COLUMNS = ("coords", "slide", "label", "tissue", "status")
_OPTIONAL = ("tissue", "status")  # status: absent from stores made before it existed


@dataclass
class Verification:
    """What :func:`verify_store` found.

    Attributes
    ----------
    problems
        One line per problem (empty when the store is sound).
    damaged
        Shards marked done whose file is missing or damaged, by index.
    not_done
        Shards not done (the extraction did not finish).
    chunks
        Damaged or missing chunks of the per-patch arrays.
    unreadable_flags
        ``done`` flags that do not read (counted as not done).
    fatal
        The problems neither :func:`repair_store` nor a resumed run can fix
        (attributes, counts, slide indices, patches outside their slides).
    failed
        Patches that failed to extract (``status`` 1, ``on_error="skip"``):
        recorded, not damage.
    """

    problems: list[str] = field(default_factory=list)
    damaged: list[int] = field(default_factory=list)
    not_done: list[int] = field(default_factory=list)
    chunks: list[ChunkProblem] = field(default_factory=list)
    unreadable_flags: list[int] = field(default_factory=list)
    fatal: list[str] = field(default_factory=list)
    failed: int = 0

    def _fatal(self, problem: str) -> None:
        self.problems.append(problem)
        self.fatal.append(problem)

    @property
    def ok(self) -> bool:
        """Whether the store is complete and sound."""
        return not self.problems

    @property
    def repairable(self) -> bool:
        """Whether :func:`repair_store` has anything to do."""
        return bool(self.damaged or self.chunks or self.unreadable_flags)


def _first(items: list[int]) -> str:
    more = f", ... ({len(items)} in all)" if len(items) > 10 else ""
    return ", ".join(map(str, items[:10])) + more


def _unreadable_flags(store: PatchStore) -> list[int]:
    done = array_node(store._group, "done")
    bad = []
    for i in range(done.shape[0]):
        key = f"{done.path}/" + done.metadata.encode_chunk_key((i,))
        if not sync(done.store.exists(key)):
            continue  # never set: not done, not damage
        try:
            done[i]
        except Exception:
            bad.append(i)
    return bad


def _check_attrs(store: PatchStore, found: Verification) -> bool:
    missing = [k for k in ("version", "created", "sources", "plan", "shard_size")
               if k not in store.attrs]
    if missing:
        found._fatal(f"attrs['gigapatch'] lacks {', '.join(missing)}")
    n = len(store)
    for name in _COLUMNS:
        if name not in store._group:
            if name not in _OPTIONAL:
                found._fatal(f"array {name!r} is missing")
            continue
        array = array_node(store._group, name)
        if array.shape[0] != n:
            found._fatal(f"{name} has {array.shape[0]} rows for {n} patches")
            continue
        found.chunks += check_column(array, name, strict=store.checksummed)
    found.problems += [str(problem) for problem in found.chunks]
    return not found.fatal


def _check_shards(
    store: PatchStore, found: Verification, quick: bool, progress: Progress | None
) -> None:
    flags = read_flags(store._group)
    if len(flags) != store.n_shards:
        found._fatal(f"done has {len(flags)} flags for {store.n_shards} shards")
        return
    found.unreadable_flags = _unreadable_flags(store) if not flags.all() else []
    found.not_done = np.flatnonzero(flags == 0).tolist()
    layout = store.layout
    digests = store.checksummed and flags.dtype != np.bool_
    for k, index in enumerate(np.flatnonzero(flags).tolist()):
        if layout is not None:
            why = layout.problem(index, int(flags[index]) if digests else None, deep=not quick)
        else:
            why = _zarr_problem(store, index, quick)
        if why is not None:
            found.damaged.append(index)
            rows = range(index * store.shard_size, min((index + 1) * store.shard_size, len(store)))
            found.problems.append(
                f"shard {index} (patches {rows.start}-{rows.stop - 1}) is marked done but {why}"
            )
        if progress is not None:
            progress(k + 1, int(np.count_nonzero(flags)))
    if found.not_done:
        found.problems.append(
            f"{len(found.not_done)} of {store.n_shards} shards not done "
            f"(first: {found.not_done[:5]}); the extraction did not finish"
        )


def _zarr_problem(store: PatchStore, index: int, quick: bool) -> str | None:
    """A shard of a layout gigapatch does not read itself: check it exists, and read it."""
    images = store.images
    key = f"{images.path}/" + images.metadata.encode_chunk_key((index, 0, 0, 0))
    if not sync(images.store.exists(key)):
        return "its file is missing"
    if not quick:
        start = index * store.shard_size
        try:
            images[start : start + store.shard_size]
        except Exception as exc:
            return f"it does not read ({exc})"
    return None


def _check_places(store: PatchStore, found: Verification) -> None:
    sources, slide, coords = store.sources, store.slide, store.coords
    if len(store) and (slide.min() < 0 or slide.max() >= len(sources)):
        found._fatal(f"slide indices outside [0, {len(sources) - 1}]")
        return
    ph, pw = store.patch_shape[:2]
    plan = store.plan
    for k, src in enumerate(sources):
        rows = coords[slide == k]
        if not len(rows):
            continue
        dy, dx = src["downsample"]
        h0, w0 = src["shape"]
        sh, sw = src.get("read_size") or (ph, pw)
        ly, lx = np.rint(rows[:, 0] / dy), np.rint(rows[:, 1] / dx)
        lh, lw = round(h0 / dy), round(w0 / dx)
        outside = (ly < 0) | (lx < 0) | (ly + sh > lh) | (lx + sw > lw)
        if outside.any() and plan.get("padding", "valid") == "valid":
            found._fatal(
                f"{int(outside.sum())} patches of source {k} ({src.get('name')}) lie "
                f"outside its {lh}x{lw} level"
            )


def verify_store(
    store: PatchStore, *, quick: bool = False, progress: Progress | None = None
) -> Verification:
    """Check every part of ``store``; see the module's description.

    Parameters
    ----------
    store
        The store.
    quick
        Check the shard files' indexes and digests only, not every chunk's
        checksum and decoding (fast: one small read per shard).
    progress
        Called as ``progress(shards_checked, shards_done)``.
    """
    found = Verification()
    if _check_attrs(store, found) and not found.chunks:
        _check_places(store, found)
        found.failed = store.failed_count
    _check_shards(store, found, quick, progress)
    return found


def repair_store(store: PatchStore, found: Verification) -> list[str]:
    """Make the damage ``found`` resumable; return what was done, one line each.

    Clears the ``done`` flag of every damaged shard and of every flag that does
    not read, and deletes every damaged per-patch chunk, so that
    ``extract --resume`` rewrites exactly those. Nothing else is touched.

    Raises
    ------
    StoreError
        The store is not a local folder (its chunks cannot be removed).
    """
    if not store.path.is_dir():
        raise StoreError(f"cannot repair {str(store.path)!r}: not a local folder")
    group = zarr.open_group(store.path, mode="r+")
    actions = []
    for index in sorted(set(found.damaged) | set(found.unreadable_flags)):
        set_flag(group, index, 0)
        actions.append(f"cleared the done flag of shard {index}")
    size = store.shard_size
    for problem in found.chunks:  # ``status`` is not in the plan: its shards are redone
        if problem.array != "status":
            continue
        for index in range(problem.rows.start // size, -(-problem.rows.stop // size)):
            if index not in found.damaged and index not in found.unreadable_flags:
                set_flag(group, index, 0)
                actions.append(f"cleared the done flag of shard {index} (its status rows)")
    for problem in found.chunks:
        array = array_node(store._group, problem.array)
        path = store.path / array.path / problem.key
        if path.exists():
            path.unlink()
            fsync_dir(path.parent)
        actions.append(f"removed chunk {problem.key} of {problem.array!r} "
                       f"(patches {problem.rows.start}-{problem.rows.stop - 1})")
    return actions
