"""Pictures of a patch store: a contact sheet of sampled patches, and one source's boxes."""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Any

import numpy as np

from gigapatch.errors import InvalidArgumentError, StoreError, check_int, check_seed
from gigapatch.plan.masks import resolve_mask
from gigapatch.preview.canvas import (
    BACKGROUND,
    MAX_WIDTH,
    fit_text,
    font,
    label_name,
    line_height,
    require_pil,
    with_header,
)
from gigapatch.preview.overlay import annotate, box_extents, slide_thumbnail, to_rgb8
from gigapatch.preview.plans import describe_patches
from gigapatch.preview.regions import outlines, recorded_regions
from gigapatch.sources import open_slide
from gigapatch.store import PatchStore

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["sheet", "store_boxes"]

#: Pixels between sheet cells and around them.
GAP = 6
#: Caption text size (pixels) and lines: slide name, (y, x), label.
CAPTION_FONT = 11
CAPTION_LINES = 3
_READ = 64  # patches read at a time


def _open(store: Any) -> PatchStore:
    if isinstance(store, PatchStore):
        return store
    if isinstance(store, str | os.PathLike):
        return PatchStore(store)
    raise InvalidArgumentError(
        f"store must be a PatchStore or the path of one; got {type(store).__name__}"
    )


def _classes(store: PatchStore) -> list[str]:
    return [str(c) for c in (store.plan.get("classes") or store.attrs.get("classes") or [])]


def _name(source: dict[str, Any], k: int) -> str:
    path = source.get("path")
    return str(source.get("name") or (os.path.basename(path) if path else f"source {k}"))


def _source_index(store: PatchStore, which: Any) -> int:
    """The index of a source given by index, name, file name or path."""
    sources = store.sources
    names = [_name(src, k) for k, src in enumerate(sources)]
    if isinstance(which, int | np.integer) and not isinstance(which, bool):
        if 0 <= which < len(sources):
            return int(which)
        raise InvalidArgumentError(
            f"source must be in the range [0, {len(sources) - 1}] for {str(store.path)!r}; "
            f"got {which}"
        )
    if isinstance(which, str | os.PathLike):
        text = os.fspath(which)
        hits = [k for k, src in enumerate(sources)
                if text in (names[k], src.get("path"))
                or (src.get("path") and os.path.basename(src["path"]) == text)]
        if len(hits) == 1:
            return hits[0]
    raise InvalidArgumentError(
        f"source must be an index or the name of exactly one source of {str(store.path)!r} "
        f"({', '.join(names)}); got {which!r}"
    )


def store_boxes(
    store: Any,
    source: Any = 0,
    *,
    slide: Any = None,
    mask: Any = "auto",
    max_boxes: int = 5000,
    width: int = 1600,
) -> Image.Image:
    """Draw where a store's patches came from on one of its sources.

    Parameters
    ----------
    store
        A :class:`~gigapatch.PatchStore` or its path.
    source
        Which source: its index, its name (``store.sources[k]["name"]``), file
        name or path.
    slide
        The slide to draw on (a path, array or `Slide`), when the recorded path
        is gone or was an in-memory array; default: open the recorded path.
    mask, max_boxes, width
        As :func:`gigapatch.preview.plan` (``"auto"`` outlines tissue when
        the store's plan used a tissue mask).

    Returns
    -------
    PIL.Image.Image
        The picture :func:`gigapatch.preview.plan` draws, for the stored
        patches: each box is the patch's footprint, ``read_size`` pixels of
        the level read (the patch size, or its dilated span, for stores that
        do not record it) times the level's downsample.
    """
    require_pil()
    from PIL import Image

    st = _open(store)
    k = _source_index(st, source)
    src = st.sources[k]
    width = check_int("width", width, 64, MAX_WIDTH)
    max_boxes = check_int("max_boxes", max_boxes, 0)
    if slide is None:
        if not src.get("path"):
            raise StoreError(
                f"source {k} of {str(st.path)!r} was not a file (an in-memory array): "
                "pass slide= to draw on it"
            )
        slide = src["path"]
    s = open_slide(slide)
    level = s.check_level(int(src.get("level", 0)))
    dy, dx = src.get("downsample") or s.levels[level].downsample
    rh, rw = _read_size(st, src)
    rows = st.slide == k
    coords = st.coords[rows]
    plan = st.plan
    auto = isinstance(mask, str) and mask == "auto"
    used = "tissue" in (plan.get("mask"), plan.get("weights"))
    tissue = resolve_mask(("tissue" if used else None) if auto else mask, s)
    thumb = slide_thumbnail(s, width)
    (th, tw), (h0, w0) = thumb.shape[:2], s.shape
    ext = box_extents(coords[:, 0], coords[:, 1], (rh * dy, rw * dx), (th / h0, tw / w0))
    lines, line_keys = outlines(recorded_regions(plan, k), _classes(st), (th / h0, tw / w0))
    img, keys = annotate(thumb, ext, st.label[rows], _classes(st), max_boxes=max_boxes,
                         mask=tissue, lines=lines, line_keys=line_keys)
    mpp = src.get("target_mpp") or src.get("level_mpp") or (s.mpp * dx if s.mpp else None)
    h, w = st.patch_shape[:2]
    title = (f"{_name(src, k)} · " + describe_patches(len(coords), (h, w), mpp, level,
                                                      float(src.get("factor", 1.0)))
             + f" · source {k + 1} of {len(st.sources)} in {st.path.name}")
    return with_header(Image.fromarray(img), title, keys, width)


def _read_size(st: PatchStore, src: dict[str, Any]) -> tuple[int, int]:
    """Level pixels a stored patch covers: recorded ``read_size``, else its (dilated) span."""
    if src.get("read_size"):
        rh, rw = src["read_size"]
        return int(rh), int(rw)
    size = st.plan.get("size") or st.patch_shape[:2]
    rate = st.plan.get("dilation") or (1, 1)
    sh, sw = ((int(n) - 1) * int(r) + 1 for n, r in zip(size, rate, strict=True))
    return sh, sw


def _fit(patch: np.ndarray, tile: int) -> Image.Image:
    """A patch as an RGB picture whose larger side is ``tile`` (box filter down, nearest up)."""
    from PIL import Image

    im = Image.fromarray(to_rgb8(patch))
    scale = tile / max(im.width, im.height)
    if scale == 1:
        return im
    size = (max(1, round(im.width * scale)), max(1, round(im.height * scale)))
    return im.resize(size, Image.Resampling.BOX if scale < 1 else Image.Resampling.NEAREST)


def sheet(
    store: Any,
    *,
    n: int = 64,
    label: int | list[int] | None = None,
    seed: int = 0,
    columns: int | None = None,
    tile: int = 128,
) -> Image.Image:
    """A contact sheet: ``n`` patches of a store, sampled with a seed, captioned, in a grid.

    Parameters
    ----------
    store
        A :class:`~gigapatch.PatchStore` or its path.
    n
        Patches to show (all of them when the store, or the label, has fewer).
    label
        Only patches of this label (or these labels).
    seed
        Seed of the sample: the same seed shows the same patches.
    columns
        Cells per row; default ``ceil(sqrt(n))``.
    tile
        Side of a cell's picture in pixels: a patch is scaled to it, keeping its
        aspect, by a box filter (``Image.resize(..., Image.Resampling.BOX)``;
        nearest neighbour when enlarged) and centred.

    Returns
    -------
    PIL.Image.Image
        A title line, then the cells in store order, row by row: each the
        patch over three caption lines (slide name, level-0 ``(y, x)``, class
        name or label). ``image.info["patches"]`` lists the store index of each
        cell and ``image.info["cells"]`` the (top, left) pixel of its picture.
        Only patches of completely written shards are sampled.
    """
    require_pil()
    from PIL import Image, ImageDraw

    st = _open(store)
    n = check_int("n", n, 1)
    tile = check_int("tile", tile, 16, MAX_WIDTH)
    seed = check_seed(seed)
    if columns is not None:
        columns = check_int("columns", columns)
    picked = st.select(label=label).indices if label is not None else np.arange(len(st))
    picked = picked[st.done[picked // st.shard_size]]
    if not len(picked):
        what = f" with label {label!r}" if label is not None else ""
        raise InvalidArgumentError(
            f"store {str(st.path)!r} has no complete patches{what} to show"
        )
    count = min(n, len(picked))
    chosen = np.sort(np.random.default_rng(seed).choice(picked, size=count, replace=False))
    columns = min(count, math.ceil(math.sqrt(count)) if columns is None
                  else check_int("columns", columns))
    face = font(CAPTION_FONT)
    lh = line_height(face)
    cell_w, cell_h = tile + GAP, tile + CAPTION_LINES * lh + GAP
    rows = math.ceil(count / columns)
    body = Image.new("RGB", (GAP + columns * cell_w, GAP + rows * cell_h), BACKGROUND)
    draw = ImageDraw.Draw(body)
    coords, slides, labels = st.coords[chosen], st.slide[chosen], st.label[chosen]
    names = [_name(src, k) for k, src in enumerate(st.sources)]
    classes = _classes(st)
    cells: list[tuple[int, int]] = []
    for start in range(0, count, _READ):
        patches = np.asarray(st.images[chosen[start : start + _READ]])
        for j, patch in enumerate(patches):
            i = start + j
            left, top = GAP + (i % columns) * cell_w, GAP + (i // columns) * cell_h
            im = _fit(patch, tile)
            at = (left + (tile - im.width) // 2, top + (tile - im.height) // 2)
            body.paste(im, at)
            cells.append((at[1], at[0]))
            y, x = (int(v) for v in coords[i])
            lines = (names[int(slides[i])], f"({y}, {x})", label_name(int(labels[i]), classes))
            for r, text in enumerate(lines):
                draw.text((left, top + tile + 1 + r * lh), fit_text(text, face, tile),
                          fill=(0, 0, 0), font=face)
    which = f" of label {label}" if label is not None else ""
    title = f"{st.path.name} · {count} of {len(st):,} patches{which} · seed {seed}"
    image = with_header(body, title, [], body.width)
    offset = image.height - body.height
    image.info["patches"] = [int(v) for v in chosen]
    image.info["cells"] = [(t + offset, left) for t, left in cells]
    return image
