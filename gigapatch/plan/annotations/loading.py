"""Finding and reading the annotations of each slide: a file, a folder, or regions in memory.

A file is read by its content: GeoJSON (``.geojson``, ``.json``, or text
starting with ``{`` / ``[``), ASAP XML (root ``<ASAP_Annotations>``) or
Aperio XML (root ``<Annotations>``). A folder holds one file per slide: for
slide ``NAME.svs`` (any suffix; ``NAME.ome.tiff`` also tries ``NAME.ome``),
``NAME.geojson``, ``NAME.json`` or ``NAME.xml``. A slide without a file in
the folder has no regions (CAMELYON's normal slides have no XML); a folder
that has a file for none of the slides is an error.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeAlias

from gigapatch.errors import AnnotationError, InvalidArgumentError
from gigapatch.plan.annotations.aperio import read_aperio
from gigapatch.plan.annotations.asap import read_asap
from gigapatch.plan.annotations.geojson import read_geojson
from gigapatch.plan.annotations.regions import Annotations, Region
from gigapatch.sources import Slide

__all__ = ["ANNOTATION_SUFFIXES", "AnnotationSpec", "annotation_file", "annotations_for",
           "read_annotations"]

#: File endings looked for in a folder, in this order.
ANNOTATION_SUFFIXES = (".geojson", ".json", ".xml")
#: What ``annotations=`` takes: a file or folder, loaded annotations, regions, or one per slide.
AnnotationSpec: TypeAlias = (
    str | os.PathLike[str] | Annotations | Sequence[Region] | Sequence[Any] | None
)


def read_annotations(path: str | os.PathLike[str]) -> Annotations:
    """Read one annotation file (GeoJSON, ASAP XML or Aperio XML, told by its content).

    Raises
    ------
    AnnotationError
        The file is missing, unreadable, of none of the three formats, or
        malformed (the message names the file and the feature).
    """
    p = Path(path)
    if not p.is_file():
        what = "is a folder, not a file" if p.is_dir() else "does not exist"
        raise AnnotationError(f"annotations {str(p)!r} {what}")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise AnnotationError(f"annotations {str(p)!r} cannot be read: {exc.strerror}") from None
    file = str(p)
    head = data.lstrip()[:1]
    if p.suffix.lower() in (".geojson", ".json") or head in (b"{", b"["):
        regions, skipped = read_geojson(data, file)
        fmt = "geojson"
    elif head == b"<":
        if b"<ASAP_Annotations" in data[:4096]:
            regions, skipped = read_asap(data, file)
            fmt = "asap"
        else:
            regions, skipped = read_aperio(data, file)
            fmt = "aperio"
    else:
        raise AnnotationError(
            f"annotations {file!r}: expected GeoJSON (QuPath), ASAP XML or Aperio XML; got "
            f"{'an empty file' if not data.strip() else repr(data[:20])}"
        )
    return Annotations(tuple(regions), os.path.abspath(p), hashlib.sha256(data).hexdigest(),
                       fmt, skipped)


def _bases(name: str) -> list[str]:
    """``"a.ome.tiff"`` → ``["a.ome", "a"]``; ``"a.svs"`` → ``["a"]``; ``"a"`` → ``["a"]``."""
    out = []
    stem = name
    while Path(stem).suffix:
        stem = stem[: -len(Path(stem).suffix)]
        out.append(stem)
    return out or [name]


def annotation_file(folder: str | os.PathLike[str], slide_name: str) -> Path | None:
    """The annotation file of slide ``slide_name`` in ``folder``, or ``None``.

    Raises
    ------
    AnnotationError
        Two files would fit (``NAME.geojson`` and ``NAME.xml``).
    """
    for base in _bases(Path(slide_name).name):
        found = [Path(folder) / f"{base}{s}" for s in ANNOTATION_SUFFIXES]
        found = [f for f in found if f.is_file()]
        if len(found) > 1:
            raise AnnotationError(
                f"annotations {str(folder)!r}: {', '.join(f.name for f in found)} all fit slide "
                f"{slide_name!r}; keep one"
            )
        if found:
            return found[0]
    return None


def _one(item: Any, slide: Slide) -> Annotations | None:
    if item is None or isinstance(item, Annotations):
        return item
    if isinstance(item, str | os.PathLike):
        return read_annotations(item)
    if isinstance(item, list | tuple):
        return Annotations.of(item)
    raise InvalidArgumentError(
        f"annotations for {slide.name!r} must be a file path, an Annotations, a list of "
        f"Region or None; got {type(item).__name__}"
    )


def annotations_for(spec: AnnotationSpec, slides: Sequence[Slide]) -> list[Annotations | None]:
    """The annotations of each slide from ``annotations=``.

    ``spec`` is a file (one slide only), a folder (a file per slide, see the
    module's notes), an :class:`Annotations` or a list of :class:`Region` (one
    slide only), or a list with one of these (or ``None``) per slide.
    """
    n = len(slides)
    if isinstance(spec, str | os.PathLike) and Path(spec).is_dir():
        found = [annotation_file(spec, s.name) for s in slides]
        if not any(found):
            names = ", ".join(repr(s.name) for s in slides[:3]) + (", ..." if n > 3 else "")
            raise AnnotationError(
                f"annotations {os.fspath(spec)!r}: no NAME.geojson, NAME.json or NAME.xml for "
                f"any slide ({names})"
            )
        return [None if f is None else read_annotations(f) for f in found]
    single = isinstance(spec, str | os.PathLike | Annotations) or (
        isinstance(spec, list | tuple) and bool(spec) and all(isinstance(r, Region) for r in spec)
    )
    if single:
        if n != 1:
            raise InvalidArgumentError(
                f"annotations: one file for {n} slides is ambiguous; pass a folder (NAME.geojson, "
                "NAME.json or NAME.xml per slide NAME.*) or a list with one per slide"
            )
        return [_one(spec, slides[0])]
    if not isinstance(spec, list | tuple):
        raise InvalidArgumentError(
            "annotations must be a file or folder path, an Annotations, a list of Region, or a "
            f"list with one of these per slide; got {type(spec).__name__}"
        )
    if len(spec) != n:
        raise InvalidArgumentError(
            f"annotations must give one entry per slide ({n}) when a list; got {len(spec)}"
        )
    return [_one(item, s) for item, s in zip(spec, slides, strict=True)]
