"""Many slides: lists, globs and class folders (like Keras' ``flow_from_directory``)."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, overload

from gigapatch.errors import InvalidArgumentError, OnError, SlideError, check_on_error
from gigapatch.sources import Slide
from gigapatch.sources.opener import is_zarr, open_slide

__all__ = ["SLIDE_SUFFIXES", "SlideSet", "find_slides", "skipped_slide"]

#: File name endings taken as slides when a folder is searched.
SLIDE_SUFFIXES = (".svs", ".tif", ".tiff", ".ndpi", ".scn", ".bif", ".btf")


def skipped_slide(slide: Slide, exc: BaseException) -> dict[str, str]:
    """What a plan records of a slide it left out (``on_error="skip"``): path, name, why."""
    path = os.path.abspath(slide.path) if slide.path else ""
    return {"path": path, "name": slide.name, "reason": str(exc)}


class SlideSet(Sequence["str | Slide"]):
    """Slide paths (or opened slides) with one class label each (or ``labels=None``) and the
    class names.

    A sequence of paths, so it is accepted wherever sources are; the planners
    take its ``labels`` and ``classes`` unless given others. :meth:`open` gives
    the same set with every slide opened (choosing a series or a reader).
    """

    def __init__(
        self, paths: Sequence[Any], labels: Sequence[int] | None, classes: Sequence[str]
    ) -> None:
        if labels is not None and len(paths) != len(labels):
            raise InvalidArgumentError(
                f"labels must give one label per path ({len(paths)}); got {len(labels)}"
            )
        self.paths: list[str | Slide] = [p if isinstance(p, Slide) else str(p) for p in paths]
        self.labels = None if labels is None else [int(v) for v in labels]
        self.classes = list(classes)
        #: Slides left out by :meth:`open` with ``on_error="skip"``: ``{path, name, reason}``.
        self.skipped: list[dict[str, str]] = []

    def __len__(self) -> int:
        return len(self.paths)

    @overload
    def __getitem__(self, index: int) -> str | Slide: ...

    @overload
    def __getitem__(self, index: slice) -> list[str | Slide]: ...

    def __getitem__(self, index: int | slice) -> str | Slide | list[str | Slide]:
        return self.paths[index]

    def __iter__(self) -> Iterator[str | Slide]:
        return iter(self.paths)

    def __repr__(self) -> str:
        return f"<SlideSet {len(self)} slides, classes {self.classes}>"

    def open(self, *, on_error: OnError = "stop", **options: Any) -> SlideSet:
        """The same set with every path opened by :func:`gigapatch.open` with ``options``
        (``series=``, ``reader=``…); labels and classes are kept.

        With ``on_error="skip"`` a path that does not open as a slide is left
        out (with its label) and recorded in ``skipped`` with the reason;
        ``"stop"`` (default) raises its :class:`~gigapatch.errors.SlideError`.
        """
        on_error = check_on_error(on_error)
        slides: list[Slide] = []
        labels: list[int] = []
        skipped = list(self.skipped)
        for k, p in enumerate(self.paths):
            try:
                slides.append(p if isinstance(p, Slide) else open_slide(p, **options))
            except SlideError as exc:
                if on_error == "stop":
                    raise
                skipped.append({"path": os.path.abspath(str(p)), "name": Path(str(p)).name,
                                "reason": str(exc)})
                continue
            if self.labels is not None:
                labels.append(self.labels[k])
        if not slides:
            raise SlideError(f"no slide could be opened ({len(skipped)} skipped: "
                             f"{skipped[0]['reason'] if skipped else ''})")
        opened = SlideSet(slides, None if self.labels is None else labels, self.classes)
        opened.skipped = skipped
        return opened


def _slides_in(folder: Path) -> list[str]:
    """Slide files under ``folder``, and Zarr / OME-Zarr folders (not searched inside)."""
    found = []
    for root, dirs, files in os.walk(folder):
        here = Path(root)
        zarrs = [d for d in dirs if is_zarr(here / d)]
        found += [str(here / d) for d in zarrs]
        dirs[:] = sorted(d for d in dirs if d not in zarrs)
        found += [str(here / f) for f in files if Path(f).suffix.lower() in SLIDE_SUFFIXES]
    return sorted(found)


def find_slides(
    sources: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], *,
    labels_from_dirs: bool = False,
) -> SlideSet:
    """Expand paths, globs and folders into a sorted, labelled :class:`SlideSet`.

    Parameters
    ----------
    sources
        A path, a glob (``"data/*.svs"``), a folder, or a list of these.
    labels_from_dirs
        Each source must be one folder whose sub-folders name the classes
        (sorted; label = index); slides are searched recursively in each.

    Raises
    ------
    SlideError
        A glob or folder matches no slide (a missing plain path is reported
        when it is opened).
    """
    try:
        given: list[object] = [sources] if isinstance(sources, str | os.PathLike) else list(
            sources)
    except TypeError:
        given = [sources]
    items = [item for item in given if isinstance(item, str | os.PathLike)]
    if len(items) != len(given):
        raise InvalidArgumentError(
            f"sources must be a path, a glob or a folder, or a list of these; got {sources!r}")
    if not items:
        raise InvalidArgumentError("sources must name at least one slide; got none")
    if labels_from_dirs:
        if len(items) != 1 or not Path(items[0]).is_dir():
            raise InvalidArgumentError(
                "labels_from_dirs needs one folder whose sub-folders name the classes; "
                f"got {[str(i) for i in items]}"
            )
        root = Path(items[0])
        classes = sorted(p.name for p in root.iterdir() if p.is_dir())
        paths, labels = [], []
        for k, name in enumerate(classes):
            found = _slides_in(root / name)
            paths += found
            labels += [k] * len(found)
        if not paths:
            raise SlideError(f"no slide files under the class folders of {str(root)!r}")
        return SlideSet(paths, labels, classes)
    paths = []
    for item in items:
        text = os.fspath(item)
        if Path(text).is_dir() and is_zarr(Path(text)):
            found = [text]  # a Zarr / OME-Zarr image is one slide
        elif Path(text).is_dir():
            found = _slides_in(Path(text))
        elif glob.has_magic(text):
            found = sorted(glob.glob(text, recursive=True))
        else:
            found = [text]  # opening it says what is wrong with it, if anything
        if not found:
            raise SlideError(f"{text!r} matches no slide file")
        paths += found
    return SlideSet(paths, None, [])
