"""What a store is made from: :class:`StoreSpec`, shared by creating and resuming."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from gigapatch.errors import InvalidArgumentError
from gigapatch.store.codecs import check_codec, parse_codec
from gigapatch.store.format import Codec

__all__ = ["StoreSpec"]


@dataclass(frozen=True)
class StoreSpec:
    """Everything a store holds but its pixels: what :func:`~gigapatch.store.create_store`
    makes a store from, and what :func:`~gigapatch.store.open_for_resume` checks an
    existing store against.

    Parameters
    ----------
    patch_shape
        (h, w, C) of one patch.
    dtype
        dtype of the patches.
    coords
        (N, 2) level-0 (y, x) top-left of each patch.
    slide
        (N,) source index of each patch.
    label
        (N,) class label of each patch, -1 where none.
    sources
        One record per source (path, size, mtime, level, shape, label, ...).
    plan
        The parameters of the plan (JSON).
    shard_size
        Patches per shard file.
    codec
        Codec spec of ``images`` (:func:`~gigapatch.store.codecs.parse_codec`: ``lz4``,
        ``zstd``, ``zstd-3``, ``none``, ``jpeg[:QUALITY]``, ``jpeg:source``); kept in its
        canonical form (``jpeg`` becomes ``jpeg:90``).
    tissue
        Optional (N,) tissue fraction of each patch, when the plan used a mask.
    skipped
        Slides left out of the plan (``on_error="skip"``): ``{path, name, reason}`` each.

    Raises
    ------
    InvalidArgumentError
        ``shard_size`` is not a positive integer, ``codec`` is unknown, or it is a
        JPEG codec and the patches are not uint8 with 1 or 3 channels.
    """

    patch_shape: tuple[int, int, int]
    dtype: npt.DTypeLike
    coords: npt.ArrayLike
    slide: npt.ArrayLike
    label: npt.ArrayLike
    sources: Sequence[dict[str, Any]]
    plan: dict[str, Any]
    shard_size: int = 256
    codec: Codec = "lz4"
    tissue: npt.ArrayLike | None = None
    skipped: Sequence[dict[str, Any]] = ()

    def __post_init__(self) -> None:
        size = self.shard_size
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise InvalidArgumentError(f"shard_size must be a positive integer; got {size!r}")
        codec = parse_codec(self.codec)  # a CodecSpec is taken too
        check_codec(codec, self.dtype, self.patch_shape[2])
        object.__setattr__(self, "codec", str(codec))  # canonical: what the attributes record

    def arrays(self) -> dict[str, npt.NDArray[Any]]:
        """The per-patch arrays by node name, in the store's dtypes (``tissue`` if given)."""
        arrays: dict[str, npt.NDArray[Any]] = {
            "coords": np.asarray(self.coords, np.int64),
            "slide": np.asarray(self.slide, np.int32),
            "label": np.asarray(self.label, np.int32),
        }
        if self.tissue is not None:
            arrays["tissue"] = np.asarray(self.tissue, np.float32)
        return arrays
