"""A subset of a store's patches: :class:`PatchSelection`, made by ``PatchStore.select``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

import numpy as np
import numpy.typing as npt

from gigapatch.errors import InvalidArgumentError
from gigapatch.store.keys import LabelKey, SlideKey, label_indices, slide_indices
from gigapatch.store.split import Stratify, split_positions

if TYPE_CHECKING:
    from gigapatch.store.reader import PatchStore

__all__ = ["Filters", "PatchSelection"]


class Filters(TypedDict, total=False):
    """The keyword arguments of :meth:`PatchSelection.select` (and :meth:`PatchStore.select`)."""

    slide: SlideKey | Sequence[SlideKey] | None
    label: LabelKey | Sequence[LabelKey] | None
    min_tissue: float | None


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
    def class_names(self) -> tuple[str, ...]:
        """The store's class names (label k is ``class_names[k]``); empty when unlabelled."""
        return self.store.class_names

    @property
    def tissue(self) -> npt.NDArray[np.float32] | None:
        """(n,) tissue fraction of the selected patches, or None."""
        tissue = self.store.tissue
        return None if tissue is None else tissue[self.indices]

    def select(
        self,
        *,
        slide: SlideKey | Sequence[SlideKey] | None = None,
        label: LabelKey | Sequence[LabelKey] | None = None,
        min_tissue: float | None = None,
    ) -> PatchSelection:
        """The patches of the selection that pass every given filter (no pixel is read).

        Parameters
        ----------
        slide
            Slide or slides to keep: source index, recorded name (``"a.svs"``) or
            recorded path. A name shared by several sources keeps all of them.
        label
            Class or classes to keep: label or class name (:attr:`class_names`).
        min_tissue
            Keep patches whose tissue fraction is at least this (in [0, 1]); needs
            a store written with a tissue mask.

        Returns
        -------
        PatchSelection
            Sorted store indices and the per-patch arrays of those patches.

        Raises
        ------
        InvalidArgumentError
            A slide or label the store does not know (the message lists the
            known ones), or a bad ``min_tissue``.
        """
        keep = np.ones(len(self), bool)
        if slide is not None:
            keep &= np.isin(self.slide, slide_indices(slide, self.store.sources))
        if label is not None:
            wanted = label_indices(label, self.class_names, self.store.label)
            keep &= np.isin(self.label, wanted)
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

    def split(
        self,
        fractions: Sequence[float] = (0.8, 0.2),
        *,
        by: str = "slide",
        stratify: Stratify = "label",
        seed: int = 0,
    ) -> tuple[PatchSelection, ...]:
        """Split into parts that share no slide (a patient-level split).

        Parameters
        ----------
        fractions
            Share of the patches in each part: two or more positive numbers
            summing to 1, e.g. ``(0.7, 0.15, 0.15)``.
        by
            What is never divided: ``"slide"``.
        stratify
            ``"label"`` (default): each label's slides are dealt separately, so
            each part holds its fraction of every label's patches to within one
            slide of that label. ``None``: all slides together.
        seed
            The same seed gives the same parts.

        Returns
        -------
        tuple of PatchSelection
            One per fraction; part sizes are as close to the fractions (in
            patches) as whole slides allow.

        Raises
        ------
        InvalidArgumentError
            Bad ``fractions``, ``by`` or ``stratify``, or fewer slides than parts.

        Examples
        --------
        >>> train, val = store.split((0.8, 0.2), seed=0)            # doctest: +SKIP
        >>> set(train.slide.tolist()) & set(val.slide.tolist())      # doctest: +SKIP
        set()
        """
        parts = split_positions(self.slide, self.label, fractions, by=by, stratify=stratify,
                                seed=seed)
        return tuple(PatchSelection(self.store, self.indices[p]) for p in parts)
