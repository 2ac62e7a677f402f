"""Stores in words: what a store holds, how far it got, and the plan that made it.

These are what ``gigapatch info`` and ``gigapatch extract --resume`` print,
available to Python users as they are::

    from gigapatch.store import PatchStore, summarize
    for key, value in summarize(PatchStore("patches.zarr")):
        print(f"{key:<9} {value}")
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from gigapatch.errors import GigapatchError
from gigapatch.sources import describe_file
from gigapatch.store.format import ATTRS_KEY
from gigapatch.store.keys import listing
from gigapatch.store.quality import quality_line
from gigapatch.store.reader import PatchStore

__all__ = [
    "describe_plan",
    "human_bytes",
    "is_store",
    "left_out",
    "patches_done",
    "recorded_seed",
    "summarize",
]


def human_bytes(n: float) -> str:
    """``n`` bytes as people read them: ``"812 B"``, ``"4.2 KB"``, ``"1.3 MB"``, ``"7.0 GB"``.

    Units are powers of 1000; anything from a billion bytes up is counted in GB.
    """
    if n < 1000:
        return f"{n:.0f} B"
    for unit in ("KB", "MB"):
        n /= 1000
        if n < 1000:
            return f"{n:.1f} {unit}"
    return f"{n / 1000:.1f} GB"


def _joined(values: Any, sep: str = "x") -> str:
    return sep.join(map(str, values))


def describe_plan(plan: Mapping[str, Any]) -> str:
    """One line for a stored plan (:attr:`PatchStore.plan`): kind, where, and what shaped it.

    Examples
    --------
    >>> describe_plan({"kind": "random", "size": [64, 64], "level": 0, "seed": 3})
    'random of 64x64, at level 0, seed 3'
    >>> describe_plan({"kind": "grid", "size": [299, 299], "stride": [299, 299], "mpp": 0.5,
    ...                "min_tissue": 0.5})
    'grid of 299x299, at 0.5 um/px, stride 299x299, min tissue 0.5'
    >>> describe_plan({"kind": "random", "size": [299, 299], "level": 0, "seed": 0,
    ...                "magnification": 20.0})
    'random of 299x299, at 20x, seed 0'
    """
    parts = [f"{plan.get('kind')} of {_joined(plan.get('size', []))}"]
    if plan.get("mpp") is not None:
        parts.append(f"at {plan['mpp']:g} um/px")
    elif plan.get("magnification") is not None:
        parts.append(f"at {plan['magnification']:g}x")
    elif plan.get("level", -1) >= 0:
        parts.append(f"at level {plan['level']}")
    if plan.get("kind") == "grid":
        parts.append(f"stride {_joined(plan.get('stride', []))}")
        if plan.get("padding", "valid") != "valid":
            parts.append(f"padding {plan['padding']}")
        if list(plan.get("dilation", [1, 1])) != [1, 1]:
            parts.append(f"dilation {_joined(plan['dilation'])}")
    else:
        parts.append(f"seed {plan.get('seed')}")
        if plan.get("weights"):
            parts.append(f"weights {plan['weights']}")
    if plan.get("min_tissue"):
        parts.append(f"min tissue {plan['min_tissue']:g}")
    if plan.get("annotations") is not None:
        how = "labels" if plan.get("labels_from_annotations") else "mask"
        parts.append(f"regions from annotations as {how} (min coverage "
                     f"{plan.get('min_annotation', 0.5):g})")
        if plan.get("background"):
            parts.append(f"background {plan['background']}")
    if plan.get("classes"):
        parts.append(f"classes {_joined(plan['classes'], ', ')}")
    return ", ".join(parts)


def is_store(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a Zarr v3 group carrying gigapatch's store attributes.

    Only says what the folder claims to be; :class:`PatchStore` checks the rest.
    """
    path = Path(path)
    if not (path.is_dir() and (path / "zarr.json").exists()):
        return False
    try:
        return ATTRS_KEY in zarr.open_group(path, mode="r").attrs
    except Exception:  # an array, or not readable as a group
        return False


def patches_done(store: PatchStore | str | os.PathLike[str]) -> int:
    """How many patches lie in the shards of ``store`` that are done.

    ``store`` may be a path: then a missing or unreadable store has 0 patches done.
    """
    if not isinstance(store, PatchStore):
        try:
            store = PatchStore(store)
        except GigapatchError:
            return 0
    starts = np.flatnonzero(store.done) * store.shard_size
    ends = np.minimum(starts + store.shard_size, len(store))
    return int((ends - starts).sum())


def recorded_seed(path: str | os.PathLike[str]) -> int | None:
    """The seed of the plan recorded in the store at ``path``; None if there is no file there
    or the plan has none (a grid).

    Raises
    ------
    StoreError
        Something is at ``path`` but it is not a readable gigapatch store.
    """
    if not os.path.exists(path):
        return None
    seed = PatchStore(path).plan.get("seed")
    return None if seed is None else int(seed)


def _label_name(label: Any, class_names: tuple[str, ...]) -> str:
    if isinstance(label, int) and 0 <= label < len(class_names):
        return f"{label} ({class_names[label]})"
    return "none" if label is None or label == -1 else str(label)


def _skipped(records: Any) -> str:
    """One line for ``attrs["skipped"]``: how many, then each one's name and why."""
    items = []
    for record in records:
        if isinstance(record, dict):
            name = record.get("name") or record.get("path")
            why = record.get("reason") or record.get("error")
            items.append(f"{name} ({why})" if why else str(name))
        else:
            items.append(str(record))
    return f"{len(items)} slide{'s' * (len(items) != 1)}: {listing(items)}"


def _failed(store: PatchStore) -> str:
    """One line for the patches that failed to extract: how many, of which slides, and why."""
    failed = np.flatnonzero(store.status != 0)
    per = np.bincount(store.slide[failed], minlength=len(store.sources))
    reasons = store.attrs.get("failed", {})
    items = []
    for k in np.flatnonzero(per).tolist():
        why = reasons.get(str(k)) or ["a tile did not decode"]
        more = f" and {len(why) - 1} more" if len(why) > 1 else ""
        items.append(f"{int(per[k])} of {store.sources[k].get('name')} ({why[0]}{more})")
    return f"{len(failed)} patches: {listing(items)}"


def left_out(store: PatchStore) -> str:
    """The last line of ``extract``: how many slides and patches were left out (and where
    the report is)."""
    skipped, failed = len(store.attrs.get("skipped", [])), store.failed_count
    if not skipped and not failed:
        return "left out: nothing (every slide and patch was read)"
    return (f"left out: {skipped} slide{'s' * (skipped != 1)} that could not be opened or "
            f"planned, {failed} patch{'es' * (failed != 1)} whose tiles did not decode; see "
            f"`gigapatch info {store.path}` and {store.path / 'report.json'}")


def summarize(store: PatchStore) -> list[tuple[str, str]]:
    """What ``gigapatch info`` says of a store, as (key, value) lines.

    Keys are ``store`` (path, size on disk), ``format``, ``patches``,
    ``shards`` (progress, codec), ``quality`` for a JPEG store (its quality and
    the PSNR of a sample, :func:`~gigapatch.store.quality.quality_line`),
    ``plan`` (its parameters in words), one
    ``label K`` per label found (``K`` left-aligned in 3 columns: patches and
    slides of that label, with its class name), one ``source K`` per source
    (path, level, label, patches; followed by ``  regions``, its annotation
    file, format, region count and fingerprint, when it had one), then
    ``skipped`` when the extraction skipped slides and ``failed`` when patches failed to
    extract (their tiles did not decode).
    """
    n, (h, w, c) = len(store), store.patch_shape
    attrs = store.attrs
    lines = [
        ("store", f"{store.path} ({human_bytes(describe_file(store.path)['size'])} on disk)"),
        ("format", f"gigapatch store format {attrs.get('format')} (Zarr v3), written by "
                   f"gigapatch {attrs.get('version')} on {attrs.get('created')}"
                   + ("" if store.checksummed else "; read-only: its chunks carry no checksums")),
        ("patches", f"{n} of {h}x{w}x{c} {store.images.dtype}"),
        (
            "shards",
            f"{store.shards_done}/{store.n_shards} done, {store.shard_size} patches each, "
            f"codec {attrs.get('codec')}",
        ),
        ("plan", describe_plan(store.plan)),
    ]
    quality = quality_line(attrs)
    if quality is not None:
        lines.insert(-1, ("quality", quality))
    names, sources = store.class_names, store.sources
    slide, label = store.slide, store.label
    for value in np.unique(label).tolist():
        mine = label == value
        count, slides = int(mine.sum()), len(np.unique(slide[mine]))
        name = names[value] if 0 <= value < len(names) else "none" if value == -1 else ""
        lines.append((f"label {value:<3}", f"{name + ': ' if name else ''}{count} patches "
                                           f"from {slides} slide{'s' * (slides != 1)}"))
    counts = np.bincount(slide, minlength=len(sources)) if n else np.zeros(len(sources), int)
    for k, src in enumerate(sources):
        where = src.get("path") or src.get("name")
        factor = src.get("factor", 1.0)
        read = f"level {src.get('level')}"
        if factor not in (None, 1.0) and src.get("patch_mpp") is not None:
            read += f" area-averaged {factor:g}x to {src['patch_mpp']:.4g} um/px"
        lines.append((f"source {k:<3}", f"{where} ({read}, label "
                                        f"{_label_name(src.get('label'), names)}, "
                                        f"{int(counts[k])} patches)"))
        regions = src.get("annotations")
        if isinstance(regions, dict):
            lines.append(("  regions", f"{regions.get('path') or 'in memory'} ("
                                       f"{regions.get('format')}, {regions.get('regions')} "
                                       f"regions, sha256 {str(regions.get('sha256'))[:12]})"))
    if attrs.get("skipped"):
        lines.append(("skipped", _skipped(attrs["skipped"])))
    if store.failed_count:
        lines.append(("failed", _failed(store)))
    return lines
