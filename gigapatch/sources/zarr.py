"""Zarr sources: Zarr v2 and v3 arrays, and OME-Zarr multiscale images (0.4 and 0.5).

zarr-python decodes only the chunks a slice touches, each once, so a region
read is one slice per level. OME-Zarr metadata gives the levels (``datasets``),
the axes (``t``, ``c``, ``z``, ``y``, ``x``; ``t`` and ``z`` must have length 1)
and the pixel size (the ``scale`` transformation of ``x`` at level 0, in the
axis' unit).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt
import zarr
from zarr.storage import LocalStore

from gigapatch.errors import SlideError
from gigapatch.sources.axes import check_dtype, yxc_order
from gigapatch.sources.slide import Level, Slide
from gigapatch.sources.units import to_micrometres

__all__ = ["ZarrReader", "open_zarr"]

#: Per-axis template of a read: ``"y"``, ``"x"``, ``slice(None)`` (channels) or ``0`` (a
#: length-1 axis dropped); ``None`` only while a template is being filled.
Index: TypeAlias = list[str | slice | int | None]


def _multiscales(group: zarr.Group) -> tuple[dict[str, Any], str] | None:
    attrs: dict[str, Any] = group.attrs.asdict()  # parsed JSON
    if "ome" in attrs and "multiscales" in attrs["ome"]:  # 0.5 (Zarr v3)
        return attrs["ome"]["multiscales"][0], str(attrs["ome"].get("version", "0.5"))
    if "multiscales" in attrs:  # 0.4 and earlier (Zarr v2)
        ms = attrs["multiscales"][0]
        return ms, str(ms.get("version", "0.4"))
    return None


class ZarrReader:
    """Reads the levels of a Zarr array or of an OME-Zarr multiscale image."""

    def __init__(self, arrays: list[Any], index: Index, order: tuple[int, ...], name: str,
                 mpp: float | None, fmt: str) -> None:
        self.format = fmt
        self._arrays = arrays
        self._index = index  # per-axis template: "y", "x", slice(None) or 0
        self._order = order  # transpose of the sliced array to (y, x, c)
        shapes = [self._yx(a.shape) for a in arrays]
        h0, w0 = shapes[0]
        self.levels = tuple(
            Level(shape=(h, w), downsample=(h0 / h, w0 / w), tile=self._yx(a.chunks),
                  compression=_codec_name(a))
            for (h, w), a in zip(shapes, arrays, strict=True)
        )
        self.dtype = check_dtype(arrays[0].dtype, name)
        c = [n for t, n in zip(index, arrays[0].shape, strict=True) if t == slice(None)]
        self.channels = c[0] if c else 1
        self.mpp = mpp

    def _yx(self, shape: tuple[int, ...]) -> tuple[int, int]:
        return shape[self._index.index("y")], shape[self._index.index("x")]

    def read_level(self, level: int, y: int, x: int, out: npt.NDArray[Any]) -> None:
        h, w = out.shape[:2]
        key = tuple(slice(y, y + h) if t == "y" else slice(x, x + w) if t == "x" else t
                    for t in self._index)
        block = np.transpose(self._arrays[level][key], self._order)  # to (y, x[, c])
        out[...] = block if block.ndim == 3 else block[..., None]

    def close(self) -> None:
        """Zarr stores hold no open handles between reads."""


def _codec_name(array: Any) -> str:
    try:
        codecs = array.compressors
    except (AttributeError, TypeError):
        return "unknown"
    return ",".join(type(c).__name__.lower().replace("codec", "") for c in codecs) or "none"


def _plain_array(array: Any, axes: str | None, name: str) -> tuple[Index, tuple[int, ...]]:
    iy, ix, ic = yxc_order(tuple(array.shape), axes, name)
    index: Index = [None] * array.ndim
    index[iy], index[ix] = "y", "x"
    if ic is not None:
        index[ic] = slice(None)
    return index, ((iy, ix, ic) if ic is not None else (iy, ix))


def _ome(
    group: zarr.Group, ms: dict[str, Any], name: str
) -> tuple[list[Any], Index, tuple[int, ...], float | None]:
    axes = [a["name"].lower() if isinstance(a, dict) else str(a).lower() for a in ms["axes"]]
    datasets = ms["datasets"]
    nodes = [group[d["path"]] for d in datasets]
    arrays = [a for a in nodes if isinstance(a, zarr.Array)]
    if not arrays or len(arrays) != len(nodes):
        paths = [d["path"] for d in datasets]
        raise SlideError(f"{name}: OME-Zarr datasets must name one array each; got {paths}")
    shape = arrays[0].shape
    if "y" not in axes or "x" not in axes:
        raise SlideError(f"{name}: OME-Zarr axes {axes} lack y or x")
    index: Index = []
    for ax, n in zip(axes, shape, strict=True):
        if ax in ("y", "x"):
            index.append(ax)
        elif ax == "c":
            index.append(slice(None))
        elif n == 1:
            index.append(0)
        else:
            raise SlideError(
                f"{name}: OME-Zarr axis {ax!r} has length {n}; a slide must be 2-D "
                "(only c may have more than one entry besides y and x)"
            )
    kept = [ax for ax, t in zip(axes, index, strict=True) if t != 0]
    order = tuple(kept.index(a) for a in ("y", "x", "c") if a in kept)
    mpp = None
    x_axis = ms["axes"][axes.index("x")]
    unit = x_axis.get("unit") if isinstance(x_axis, dict) else None
    for tf in datasets[0].get("coordinateTransformations", []):
        if tf.get("type") == "scale" and isinstance(unit, str):
            mpp = to_micrometres(float(tf["scale"][axes.index("x")]), unit)
    return arrays, index, order, mpp


def open_zarr(source: str | os.PathLike[str] | Any, *, axes: str | None = None) -> Slide:
    """Open a Zarr array (v2 or v3), an OME-Zarr image, or a ``zarr.Array``, as a `Slide`."""
    if isinstance(source, zarr.Array):
        name = source.name or "zarr array"
        index, order = _plain_array(source, axes, name)
        reader = ZarrReader([source], index, order, name, None, "zarr")
        return Slide(reader, name=name, path=None,
                     reopen=(_reopen_array, (_anchored(source), axes)))
    path = Path(source)
    name = path.name
    try:
        node = zarr.open(path, mode="r")
    except Exception as exc:
        raise SlideError(f"{str(path)!r} is not a readable Zarr store: {exc}") from None
    if isinstance(node, zarr.Array):
        index, order = _plain_array(node, axes, name)
        reader = ZarrReader([node], index, order, name, None, f"zarr-v{node.metadata.zarr_format}")
    else:
        found = _multiscales(node)
        if found is None:
            raise SlideError(
                f"{str(path)!r} is a Zarr group without OME-Zarr multiscales metadata; open one "
                f"of its arrays instead (it has: {', '.join(sorted(node.array_keys())) or 'none'})"
            )
        ms, version = found
        arrays, index, order, mpp = _ome(node, ms, name)
        reader = ZarrReader(arrays, index, order, name, mpp, f"ome-zarr-{version}")
    return Slide(reader, name=name, path=os.path.abspath(path),
                 reopen=(_reopen_path, (os.path.abspath(path), axes)))


def _anchored(array: zarr.Array[Any]) -> zarr.Array[Any]:
    """``array``, reopened from an absolute folder if its local store's folder is relative (so
    a worker in another working directory reads the same array)."""
    store = array.store
    if not isinstance(store, LocalStore) or Path(store.root).is_absolute():
        return array
    absolute = LocalStore(Path(store.root).absolute(), read_only=True)
    return zarr.open_array(absolute, path=array.path, mode="r")


def _reopen_path(path: str, axes: str | None) -> Slide:
    return open_zarr(path, axes=axes)


def _reopen_array(array: Any, axes: str | None) -> Slide:
    return open_zarr(array, axes=axes)
