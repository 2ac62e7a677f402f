"""The shard layout of ``images``: the one place that knows how a shard file is laid out.

A store's ``images`` array is sharded the Zarr v3 way: one file per shard
holding its inner chunks (one patch each) back to back, then the shard index
— (offset, nbytes) as little-endian uint64 per chunk, 2⁶⁴−1 for a chunk not
stored — followed by the index's CRC32C, as the sharding codec's
``index_codecs`` ``bytes`` + ``crc32c`` prescribe (index at the end). In
format 2 every chunk ends with its own CRC32C too (the inner codec chain ends
with ``crc32c``): a chunk whose bytes changed is an error, never pixels.

:class:`ShardLayout` knows all of it, modelled on zarr-python's
``_ShardIndex``: the index encoding and its checksum, chunk offsets, the file
of a shard, how a patch is encoded and decoded, and why a shard file is
damaged. Which arrays it codes itself, and the numcodecs functions equal to
their codecs, are read from zarr-python's codec objects in
:mod:`gigapatch.store.shardcodecs`; ``tests/store/test_shards.py`` fails
loudly if a zarr upgrade changes them.

Why write and read shard files here rather than through zarr: zarr-python
runs every synchronous write on one shared event-loop thread, so shard
writes from several worker threads queue behind each other (measured here:
~1,000 patches/s of 299² with zstd-1 whatever the number of workers), and
every read costs ~1 ms of per-call overhead (``z[i]``: ~740 patches/s of
256²) while one patch decodes in a fraction of that. A task that owns a
whole shard needs none of zarr's read-modify-write machinery.

A shard is written to a temporary file next to its place, synced to disk,
then renamed over it (and its folder synced), so a shard file is either whole
or absent, and on disk before its ``done`` flag is set. The flag then holds
the shard's :meth:`~ShardLayout.digest`, which ties the flag to the content of
that very file: a shard file copied in from another store, or rewritten since,
no longer matches it. Any array laid out otherwise (another
codec, index at the start, a store that is not a local folder) has no
:class:`ShardLayout`; it is read and written through zarr.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import google_crc32c
import numpy as np
import numpy.typing as npt
import zarr
from zarr.core.metadata import ArrayV3Metadata
from zarr.storage import LocalStore

from gigapatch.errors import StoreCorruptError
from gigapatch.store.durable import fsync_dir
from gigapatch.store.jpegcodec import Quality
from gigapatch.store.shardcodecs import Array, Decode, Encode, patch_codec

__all__ = ["CHUNK_CRC_NBYTES", "EMPTY", "ShardDamaged", "ShardLayout", "index_nbytes"]

#: Offset and nbytes of an index entry whose chunk is not stored (the spec's 2⁶⁴−1).
EMPTY: Final = 2**64 - 1
_ENTRY: Final = np.dtype("<u8")  # offset, nbytes: little-endian uint64
_ENTRY_NBYTES: Final = 2 * _ENTRY.itemsize
_CRC: Final = np.dtype("<u4")  # CRC32C of the index, and of each chunk, little-endian
#: Bytes of the CRC32C that ends every chunk of format 2.
CHUNK_CRC_NBYTES: Final = _CRC.itemsize

Index = npt.NDArray[np.uint64]
"""A shard index: (chunks per shard, 2) offsets and nbytes."""


class ShardDamaged(StoreCorruptError):
    """A shard whose bytes cannot be trusted: file missing or truncated, index or a chunk failing
    its checksum, a chunk missing, or content other than the one marked done.

    Attributes
    ----------
    shard
        The shard's index.
    reason
        What is wrong, e.g. ``"its file is missing"``.
    """

    def __init__(self, layout: ShardLayout, shard: int, reason: str) -> None:
        patches = layout.patches(shard)
        super().__init__(
            f"array {layout.folder.name!r}, shard {shard} (patches {patches.start}-"
            f"{patches.stop - 1}, file {str(layout.path(shard))!r}) is damaged: {reason}; "
            "run `gigapatch verify --repair STORE`, then extract with --resume"
        )
        self.shard = shard
        self.reason = reason


def index_nbytes(per_shard: int) -> int:
    """Bytes of the index (an (offset, length) pair per patch slot) and its checksum at the
    end of a shard file of ``per_shard`` patch slots."""
    return per_shard * _ENTRY_NBYTES + _CRC.itemsize


def _crc(data: bytes | memoryview) -> bytes:
    if isinstance(data, memoryview):  # google_crc32c refuses memoryviews, takes arrays: no copy
        return np.array([google_crc32c.value(np.frombuffer(data, np.uint8))], _CRC).tobytes()
    return np.array([google_crc32c.value(data)], _CRC).tobytes()


def _digest_value(index: bytes, trailers: bytes) -> int:
    """The digest of a shard from its index and its chunks' CRC32C trailers (never 0: 0 means
    'not done' in ``done``)."""
    return google_crc32c.extend(google_crc32c.value(index), trailers) or 0xFFFFFFFF


@dataclass(frozen=True)
class ShardLayout:
    """Where and how the shards of a patch array lie on disk.

    Made by :meth:`of`; every other part of gigapatch asks it rather than
    knowing the layout itself.

    Attributes
    ----------
    folder
        The array's folder.
    key
        The file (relative to ``folder``) of the shard holding the chunk at some
        chunk coordinates.
    shape
        The array's shape, (N, h, w, C).
    per_shard
        Patches per shard (the last shard may hold fewer).
    dtype
        The array's dtype.
    stored
        The dtype of a patch's bytes on disk (little-endian).
    fill_value
        What a patch never written reads as.
    encode, decode, checksum, jpeg
        How its patches are coded, as in
        :class:`~gigapatch.store.shardcodecs.PatchCodec`.
    """

    folder: Path
    key: Callable[[tuple[int, ...]], str]
    shape: tuple[int, ...]
    per_shard: int
    dtype: np.dtype[Any]
    stored: np.dtype[Any]
    fill_value: Any
    encode: Encode
    decode: Decode
    checksum: bool = False
    jpeg: Quality | None = None

    @classmethod
    def of(cls, images: zarr.Array[Any]) -> ShardLayout | None:
        """The layout of ``images``, or None when gigapatch does not read and write it itself."""
        coding = patch_codec(images)
        if coding is None:
            return None
        store, metadata = images.store, images.metadata
        assert isinstance(store, LocalStore) and isinstance(metadata, ArrayV3Metadata)  # checked
        assert images.shards is not None  # checked
        dtype = np.dtype(images.dtype)
        return cls(
            folder=Path(store.root) / images.path,
            key=metadata.chunk_key_encoding.encode_chunk_key,
            shape=tuple(images.shape),
            per_shard=int(images.shards[0]),
            dtype=dtype,
            stored=dtype.newbyteorder("<") if dtype.itemsize > 1 else dtype,
            fill_value=images.fill_value,
            encode=coding.encode,
            decode=coding.decode,
            checksum=coding.checksum,
            jpeg=coding.jpeg,
        )

    # ------------------------------------------------------------------ geometry

    @property
    def n_shards(self) -> int:
        """Number of shards."""
        return -(-self.shape[0] // self.per_shard)

    @property
    def index_nbytes(self) -> int:
        """Bytes of the index and its checksum at the end of every shard file."""
        return index_nbytes(self.per_shard)

    def patches(self, shard: int) -> range:
        """Store indices of the patches of ``shard``."""
        start = shard * self.per_shard
        return range(start, min(start + self.per_shard, self.shape[0]))

    def path(self, shard: int) -> Path:
        """The file of ``shard``."""
        return self.folder / self.key((shard,) + (0,) * (len(self.shape) - 1))

    # ------------------------------------------------------------------ the index

    def encode_index(self, table: Index) -> bytes:
        """The bytes of an index ((per_shard, 2) offsets and nbytes) and its checksum."""
        raw = np.asarray(table).astype(_ENTRY, copy=False).tobytes()
        return raw + _crc(raw)

    def read_index(self, fd: int, shard: int) -> Index:
        """The index of the open file ``fd`` of ``shard``, checked whole.

        Raises
        ------
        ShardDamaged
            The file is shorter than its index, the index fails its CRC32C, or
            a chunk it lists lies past the chunk data.
        """
        size, tail = os.fstat(fd).st_size, self.index_nbytes
        if size < tail:
            raise ShardDamaged(self, shard, f"its file is truncated ({size} bytes)")
        raw = os.pread(fd, tail, size - tail)
        body, crc = raw[: -_CRC.itemsize], raw[-_CRC.itemsize :]
        if len(raw) != tail or _crc(body) != crc:
            raise ShardDamaged(self, shard, "its index is damaged (checksum mismatch)")
        table: Index = np.frombuffer(body, _ENTRY).reshape(self.per_shard, 2)
        used = table[table[:, 0] != EMPTY]
        if len(used) and int((used[:, 0] + used[:, 1]).max()) > size - tail:
            raise ShardDamaged(self, shard, "its file is truncated (chunks past the end)")
        return table

    def digest(self, fd: int, shard: int, table: Index) -> int:
        """The digest of the open file ``fd`` of ``shard``: the CRC32C of its index and of
        every chunk's own CRC32C (format 2), in order — what its ``done`` flag holds.

        Changes when any chunk's content, size or place changes; costs one
        4-byte read per chunk, no decoding.
        """
        trailers = b"".join(
            os.pread(fd, _CRC.itemsize, offset + nbytes - _CRC.itemsize)
            for offset, nbytes in table.tolist()
            if offset != EMPTY and self.checksum and nbytes >= _CRC.itemsize
        )
        return _digest_value(self.encode_index(table), trailers)

    def checked_index(self, fd: int, shard: int, done: int | None = None) -> Index:
        """:meth:`read_index`, and given the shard's ``done`` value (format 2), a check that the
        file's :meth:`digest` equals it.

        Raises
        ------
        ShardDamaged
            As :meth:`read_index`, or the digest differs from ``done``: the file
            holds other content than the one marked done.
        """
        table = self.read_index(fd, shard)
        if done is not None and self.digest(fd, shard, table) != done:
            raise ShardDamaged(
                self, shard, "its content is not the one marked done (digest mismatch: a "
                "shard file from another run or store?)",
            )
        return table

    def open_shard(self, shard: int, *, done: int | None = None) -> tuple[int, Index]:
        """Open the file of ``shard``; return its descriptor (the caller closes it) and its
        :meth:`checked_index`.

        Raises
        ------
        ShardDamaged
            The file is missing, or as :meth:`checked_index`.
        """
        try:
            fd = os.open(self.path(shard), os.O_RDONLY)
        except FileNotFoundError:
            raise ShardDamaged(self, shard, "its file is missing") from None
        try:
            return fd, self.checked_index(fd, shard, done)
        except BaseException:
            os.close(fd)
            raise

    def problem(self, shard: int, done: int | None = None, *, deep: bool = False) -> str | None:
        """Why the file of ``shard`` is not the whole shard marked done, or None if it is.

        Checks that the file exists, that its index has a valid CRC32C, that
        every chunk it lists lies inside the file and, given the shard's
        ``done`` value, that the file's digest equals it. With ``deep``, every
        chunk is also read, checked against its CRC32C and decoded.
        """
        try:
            fd, table = self.open_shard(shard, done=done)
        except ShardDamaged as damaged:
            return damaged.reason
        try:
            if deep:
                scratch = np.empty((1, *self.shape[1:]), self.stored)
                for k in range(len(self.patches(shard))):
                    self.read_chunks(fd, shard, table, [k], scratch, [0])
        except ShardDamaged as damaged:
            return damaged.reason
        finally:
            os.close(fd)
        return None

    # ------------------------------------------------------------------ chunks

    def encode_shard(self, data: Array) -> list[bytes | memoryview]:
        """The parts of the file of a shard holding the patches ``data``, in order."""
        return self.shard_parts(
            self.encode(np.ascontiguousarray(  # a view, not a copy, when it can
                data[k] if data.dtype == self.stored else data[k].astype(self.stored)))
            for k in range(len(data))
        )

    def shard_parts(self, blobs: Iterable[bytes | memoryview]) -> list[bytes | memoryview]:
        """The parts of the file of a shard whose patches are encoded as ``blobs`` (one chunk
        each, without its checksum; e.g. the source's JPEG tiles of a ``jpeg:source`` store),
        in order: each chunk and its CRC32C, then the index."""
        table = np.full((self.per_shard, 2), EMPTY, dtype=_ENTRY)
        parts: list[bytes | memoryview] = []
        offset = 0
        for k, blob in enumerate(blobs):
            parts.append(blob)
            nbytes = len(blob)
            if self.checksum:
                parts.append(_crc(blob))
                nbytes += _CRC.itemsize
            table[k] = (offset, nbytes)
            offset += nbytes
        parts.append(self.encode_index(table))
        return parts

    def write(self, shard: int, data: Array, *, sync: bool = True) -> int:
        """Write the file of ``shard`` whole from its patches ``data``; return its size.

        With ``sync`` the file, then its folder, are on disk before this returns,
        so the shard survives a power loss once its ``done`` flag is set. The
        driver checks it sees a file of the returned size before it sets that flag.
        """
        return self._write_parts(shard, self.encode_shard(data), sync=sync)

    def write_blobs(self, shard: int, blobs: Sequence[bytes | memoryview], *,
                    sync: bool = True) -> int:
        """:meth:`write` from the chunks' encoded bytes rather than their patches (tile
        pass-through: a source's JPEG tiles are the chunks); each blob must decode as
        :attr:`decode` expects. Return the file's size."""
        if len(blobs) != len(self.patches(shard)):
            raise ValueError(f"shard {shard} holds {len(self.patches(shard))} patches; got "
                             f"{len(blobs)} chunks")
        return self._write_parts(shard, self.shard_parts(blobs), sync=sync)

    def _write_parts(self, shard: int, parts: list[bytes | memoryview], *, sync: bool) -> int:
        """Write ``parts`` as the file of ``shard``: a temporary file, synced, renamed."""
        path = self.path(shard)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
        with open(tmp, "wb") as fh:
            fh.writelines(parts)
            nbytes = fh.tell()
            if sync:
                fh.flush()
                os.fsync(fh.fileno())  # on disk before the driver can mark the shard done
        os.replace(tmp, path)
        if sync:
            fsync_dir(path.parent)  # the rename itself survives a power loss
        return nbytes

    def read_chunks(
        self, fd: int, shard: int, table: Index, local: Sequence[int], out: Array,
        rows: Sequence[int], *, missing_ok: bool = False,
    ) -> None:
        """Decode the patches ``local`` (positions in ``shard``) of ``fd`` into ``out[rows]``.

        With ``missing_ok`` a chunk the index lists as not stored reads as the
        fill value, as in zarr (a bare array, not a store: gigapatch stores
        every chunk of a shard, so there it is damage).

        Raises
        ------
        ShardDamaged
            A chunk is not stored (unless ``missing_ok``), fails its CRC32C or
            does not decode to one patch.
        """
        # decoded in place when ``out`` holds the bytes as stored, else through one patch
        direct = out.dtype == self.stored and out.flags.c_contiguous
        scratch = None if direct else np.empty(self.shape[1:], self.stored)
        first = shard * self.per_shard
        for row, k, (offset, nbytes) in zip(rows, local, table[list(local)].tolist(), strict=True):
            if offset == EMPTY:
                if not missing_ok:
                    raise ShardDamaged(self, shard, f"patch {first + k} is missing from its file")
                out[row] = self.fill_value
                continue
            data = memoryview(os.pread(fd, nbytes, offset))
            if self.checksum:
                data, crc = data[: -_CRC.itemsize], data[-_CRC.itemsize :]
                if len(crc) != _CRC.itemsize or _crc(data) != crc:
                    raise ShardDamaged(
                        self, shard, f"patch {first + k} fails its checksum (CRC32C)"
                    )
            target = out[row] if scratch is None else scratch
            try:
                self.decode(data, target)
            except Exception as exc:
                raise ShardDamaged(
                    self, shard, f"patch {first + k} does not decode ({exc})"
                ) from None
            if scratch is not None:
                out[row] = scratch
