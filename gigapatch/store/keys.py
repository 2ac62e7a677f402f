"""Slides and classes by name: what ``select(slide=..., label=...)`` accepts, resolved to indices.

A slide is named by its index in ``attrs["gigapatch"]["sources"]``, by the
``name`` recorded for it (``"a.svs"``) or by its recorded ``path``; a class by
its label or its class name (``plan.classes``: the folder names of
``labels_from_dirs``). A key that names nothing is an error listing the known
ones, never an empty selection.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt

from gigapatch.errors import InvalidArgumentError

__all__ = ["LabelKey", "SlideKey", "label_indices", "listing", "slide_indices"]

#: A slide: source index, recorded name or recorded path.
SlideKey: TypeAlias = int | str | os.PathLike[str]
#: A class: label or class name.
LabelKey: TypeAlias = int | str

#: At most this many known keys are listed in an error.
LISTED = 20


def listing(items: Sequence[str]) -> str:
    """``items`` joined by commas, the first :data:`LISTED` of them when there are more."""
    if len(items) <= LISTED:
        return ", ".join(items)
    return f"{', '.join(items[:LISTED])}, ... ({len(items)} in all)"


def _keys(name: str, wanted: Any) -> list[Any]:
    """``wanted`` as a list of single keys; an int, str or path counts as one."""
    if isinstance(wanted, str | os.PathLike | int | np.integer):
        items = [wanted]
    elif isinstance(wanted, Sequence | np.ndarray) and np.ndim(wanted) == 1:
        items = list(wanted)
    else:
        items = [wanted]
    for item in items:
        if isinstance(item, bool) or not isinstance(item, int | np.integer | str | os.PathLike):
            raise InvalidArgumentError(
                f"{name} must be an integer, a name or a sequence of them; got {wanted!r}"
            )
    return items


def _same_path(recorded: Any, key: str) -> bool:
    if not recorded:
        return False
    return bool(recorded == key or Path(recorded) == Path(key))


def slide_indices(
    wanted: SlideKey | Sequence[SlideKey], sources: Sequence[Mapping[str, Any]]
) -> npt.NDArray[np.int64]:
    """Source indices named by ``wanted`` (indices, recorded names or paths).

    A name shared by several sources (one file name in two class folders)
    names all of them.

    Raises
    ------
    InvalidArgumentError
        A key names no source: the message lists the sources.
    """
    found: list[int] = []
    for item in _keys("slide", wanted):
        if isinstance(item, int | np.integer):
            hits = [int(item)] if 0 <= item < len(sources) else []
        else:
            key = os.fspath(item)
            hits = [k for k, src in enumerate(sources)
                    if src.get("name") == key or _same_path(src.get("path"), key)]
        if not hits:
            known = [f"{k} {src.get('name') or src.get('path')!r}" for k, src in enumerate(sources)]
            raise InvalidArgumentError(
                f"slide {item!r} names no source of the store; sources: "
                f"{listing(known) or 'none'}"
            )
        found += hits
    return np.asarray(found, np.int64)


def label_indices(
    wanted: LabelKey | Sequence[LabelKey],
    class_names: Sequence[str],
    present: npt.NDArray[Any],
) -> npt.NDArray[np.int64]:
    """Labels named by ``wanted`` (labels or class names).

    ``present`` holds the labels found in the store: they are known, as are
    0..k-1 for k class names.

    Raises
    ------
    InvalidArgumentError
        A key is not a known label or class name: the message lists them.
    """
    known = sorted(set(range(len(class_names))) | {int(v) for v in np.unique(present)})
    found: list[int] = []
    for item in _keys("label", wanted):
        if isinstance(item, int | np.integer):
            ok, value = int(item) in known, int(item)
        else:
            key = os.fspath(item)
            ok = key in class_names
            value = list(class_names).index(key) if ok else -1
        if not ok:
            names = [f"{k} {class_names[k]!r}" if 0 <= k < len(class_names) else str(k)
                     for k in known]
            raise InvalidArgumentError(
                f"label {item!r} is not a label or class name of the store; labels: "
                f"{listing(names) or 'none'}"
            )
        found.append(value)
    return np.asarray(found, np.int64)
