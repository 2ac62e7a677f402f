"""A subset of a store's patches: :class:`PatchSelection`, made by ``PatchStore.select``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

import numpy as np
import numpy.typing as npt

from gigapatch.errors import InvalidArgumentError

if TYPE_CHECKING:
    from gigapatch.store.reader import PatchStore

__all__ = ["Filters", "PatchSelection"]


class Filters(TypedDict, total=False):
    """The keyword arguments of :meth:`PatchSelection.select` (and :meth:`PatchStore.select`)."""

    slide: int | Sequence[int] | None
    label: int | Sequence[int] | None
    min_tissue: float | None


def _member_mask(
    name: str, values: npt.NDArray[Any], wanted: int | Sequence[int]
) -> npt.NDArray[np.bool_]:
    items = np.atleast_1d(np.asarray(wanted))
    if items.ndim != 1 or not np.issubdtype(items.dtype, np.integer) or isinstance(wanted, bool):
        raise InvalidArgumentError(
            f"{name} must be an integer or a sequence of integers; got {wanted!r}"
        )
    return np.isin(values, items)


class PatchSelection:
    """A subset of a store's patches, by store index (made by :meth:`PatchStore.select`).

    Indexing is by position in the selection; ``indices`` maps positions to
    store indices. Its per-patch arrays are the store's (read once), at
    ``indices``. It pickles as the store's path and the indices.

    Parameters
    ----------
    store
        The store.
    indices
        Store indices of the selected patches (sorted, unique).
    """

    def __init__(self, store: PatchStore, indices: npt.ArrayLike) -> None:
        self.store = store
        self.indices = np.asarray(indices, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: Any) -> npt.NDArray[Any]:
        rows = self.indices[index]
        return self.store[int(rows)] if np.ndim(rows) == 0 else self.store[rows]

    def __repr__(self) -> str:
        return f"<PatchSelection {len(self)} of {len(self.store)} patches of {self.store!r}>"

    @property
    def path(self) -> Path:
        """The store's folder."""
        return self.store.path

    @property
    def coords(self) -> npt.NDArray[np.int64]:
        """(n, 2) level-0 (y, x) of the selected patches."""
        return self.store.coords[self.indices]

    @property
    def slide(self) -> npt.NDArray[np.int32]:
        """(n,) source index of the selected patches."""
        return self.store.slide[self.indices]

    @property
    def label(self) -> npt.NDArray[np.int32]:
        """(n,) label of the selected patches."""
        return self.store.label[self.indices]

    @property
    def tissue(self) -> npt.NDArray[np.float32] | None:
        """(n,) tissue fraction of the selected patches, or None."""
        tissue = self.store.tissue
        return None if tissue is None else tissue[self.indices]

    def select(
        self,
        *,
        slide: int | Sequence[int] | None = None,
        label: int | Sequence[int] | None = None,
        min_tissue: float | None = None,
    ) -> PatchSelection:
        """The patches of the selection that pass every given filter (no pixel is read).

        Parameters
        ----------
        slide
            Source index or indices to keep.
        label
            Class label or labels to keep.
        min_tissue
            Keep patches whose tissue fraction is at least this (in [0, 1]); needs
            a store written with a tissue mask.

        Returns
        -------
        PatchSelection
            Sorted store indices and the per-patch arrays of those patches.
        """
        keep = np.ones(len(self), bool)
        if slide is not None:
            keep &= _member_mask("slide", self.slide, slide)
        if label is not None:
            keep &= _member_mask("label", self.label, label)
        if min_tissue is not None:
            ok = isinstance(min_tissue, int | float | np.floating) and not isinstance(
                min_tissue, bool
            )
            if not ok or not 0 <= min_tissue <= 1:
                raise InvalidArgumentError(
                    f"min_tissue must be a number in [0, 1]; got {min_tissue!r}"
                )
            tissue = self.tissue
            if tissue is None:
                raise InvalidArgumentError(
                    f"min_tissue needs tissue fractions; store {str(self.path)!r} has none "
                    "(its plan used no tissue mask)"
                )
            keep &= tissue >= min_tissue
        return PatchSelection(self.store, self.indices[keep])
