"""Reading the small arrays of a store chunk by chunk, where a missing chunk is an error.

zarr answers a chunk that is not stored with the array's fill value; for
``coords``, ``slide``, ``label`` and ``tissue`` that would be a silent wrong
answer (patches at (0, 0) of slide 0, label 0), so every chunk is checked to
exist, and a chunk failing its CRC32C or its decoding becomes a
:class:`~gigapatch.errors.StoreCorruptError` naming the array, the chunk and
its patches. ``done`` is the exception: a flag not stored, or one that does
not read (a torn write), means "not done".
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import zarr
from zarr.core.sync import sync

from gigapatch.errors import StoreCorruptError, StoreError

__all__ = [
    "ChunkProblem",
    "array_node",
    "check_column",
    "compare_column",
    "read_column",
    "read_flags",
    "rewrite_chunks",
]


def array_node(group: zarr.Group, name: str) -> zarr.Array[Any]:
    """The array ``name`` of a store's group.

    Raises
    ------
    StoreError
        ``name`` is missing or is a group, not an array.
    """
    try:
        node = group[name]
    except KeyError:
        raise StoreCorruptError(
            f"store {str(group.store)!r} lacks its array {name!r}"
        ) from None
    except Exception as exc:  # a zarr.json that does not parse, or not as Zarr metadata
        raise StoreCorruptError(
            f"store metadata '{group.store}/{name}/zarr.json' is malformed "
            f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
        ) from None
    if not isinstance(node, zarr.Array):
        raise StoreError(f"node {name!r} of store {str(group.store)!r} is not an array")
    return node


@dataclass(frozen=True)
class ChunkProblem:
    """A chunk of a per-patch array that is missing or damaged."""

    array: str
    key: str
    rows: range
    reason: str

    def __str__(self) -> str:
        return (
            f"array {self.array!r}, chunk {self.key} (patches {self.rows.start}-"
            f"{self.rows.stop - 1}) {self.reason}"
        )


def _chunks(array: zarr.Array[Any]) -> Iterator[tuple[str, tuple[slice, ...]]]:
    """Every chunk of ``array``: its store key and the selection it covers."""
    for coords in np.ndindex(*array.cdata_shape):
        selection = tuple(
            slice(i * c, min((i + 1) * c, n))
            for i, c, n in zip(coords, array.chunks, array.shape, strict=True)
        )
        yield array.metadata.encode_chunk_key(coords), selection


def _read_chunk(
    array: zarr.Array[Any], key: str, selection: tuple[slice, ...], strict: bool = True
) -> tuple[npt.NDArray[Any] | None, str | None]:
    if strict and not sync(array.store.exists(f"{array.path}/{key}")):
        return None, "is missing"
    try:
        return np.asarray(array[selection]), None
    except Exception as exc:  # a checksum (crc32c) or codec failure, whatever zarr raised
        if "checksum" in str(exc):
            return None, "is damaged: it fails its checksum (CRC32C)"
        return None, f"is damaged: it does not decode ({exc})"


def check_column(array: zarr.Array[Any], name: str, *, strict: bool = True) -> list[ChunkProblem]:
    """Every missing or damaged chunk of the per-patch array ``array`` (empty when sound).

    ``strict=False`` (a store of format 1, whose writer left out all-zero chunks): a chunk
    not stored reads as the fill value.
    """
    problems = []
    for key, selection in _chunks(array):
        _, reason = _read_chunk(array, key, selection, strict)
        if reason is not None:
            problems.append(ChunkProblem(name, key, range(selection[0].start,
                                                          selection[0].stop), reason))
    return problems


def read_column(array: zarr.Array[Any], name: str, *, strict: bool = True) -> npt.NDArray[Any]:
    """The whole per-patch array ``array``, every chunk checked (``strict=False``: see
    :func:`check_column`).

    Raises
    ------
    StoreCorruptError
        A chunk is missing, fails its checksum or does not decode.
    """
    out = np.empty(array.shape, array.dtype)
    for key, selection in _chunks(array):
        data, reason = _read_chunk(array, key, selection, strict)
        if data is None:
            problem = ChunkProblem(name, key, range(selection[0].start, selection[0].stop),
                                   reason or "is damaged")
            raise StoreCorruptError(
                f"store {str(array.store_path.store)!r}: {problem}; run `gigapatch verify "
                "--repair STORE`, then extract with --resume"
            )
        out[selection] = data
    return out


def read_flags(group: zarr.Group) -> npt.NDArray[Any]:
    """The raw ``done`` values (bool in format 1; 0 or the shard's digest in format 2).

    A flag that is not stored, or that does not read (a torn write, a failed
    checksum), counts as not done.
    """
    done = array_node(group, "done")
    try:
        return np.asarray(done[:])
    except Exception:
        flags = np.zeros(done.shape[0], done.dtype)
        for i in range(len(flags)):
            try:
                flags[i] = done[i]
            except Exception:
                flags[i] = 0
        return flags


def compare_column(
    array: zarr.Array[Any], name: str, expected: npt.NDArray[Any]
) -> tuple[bool, list[ChunkProblem]]:
    """Compare the per-patch array ``array`` with ``expected``, chunk by chunk.

    Returns
    -------
    differs
        Whether a readable chunk holds other values than ``expected`` (or the
        shapes differ).
    broken
        The chunks that are missing or damaged (not compared).
    """
    if array.shape != expected.shape:
        return True, []
    broken = []
    for key, selection in _chunks(array):
        data, reason = _read_chunk(array, key, selection)
        if data is None:
            broken.append(ChunkProblem(name, key, range(selection[0].start, selection[0].stop),
                                       reason or "is damaged"))
        elif not np.array_equal(data, expected[selection], equal_nan=data.dtype.kind == "f"):
            return True, broken
    return False, broken


def rewrite_chunks(array: zarr.Array[Any], expected: npt.NDArray[Any],
                   broken: list[ChunkProblem]) -> None:
    """Write the chunks ``broken`` of ``array`` again from ``expected`` (what the plan says)."""
    array = array.with_config({"write_empty_chunks": True})  # a chunk of zeros is a chunk too
    for problem in broken:
        array[problem.rows.start : problem.rows.stop] = expected[
            problem.rows.start : problem.rows.stop
        ]
