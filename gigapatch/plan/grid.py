"""Grid plans with the exact semantics of ``tf.image.extract_patches``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from gigapatch.errors import (
    InvalidArgumentError,
    OnError,
    Pair,
    SlideError,
    check_on_error,
    parse_pair,
)
from gigapatch.plan.annotations.loading import AnnotationSpec
from gigapatch.plan.annotations.planning import annotated_slides
from gigapatch.plan.core import (
    PADDINGS,
    Padding,
    PatchPlan,
    PlanRows,
    as_slides,
    check_fill,
    check_fraction,
    resolution_params,
    resolve_labels,
    resolve_resolutions,
    to_level0,
)
from gigapatch.plan.labels import skipped_slide
from gigapatch.plan.masks import MaskSpec, footprint_fraction, resolve_mask, spread
from gigapatch.sources.resolution import MPP_TOLERANCE

__all__ = ["PADDINGS", "axis_positions", "describe", "grid"]


def axis_positions(
    n: int, size: int, stride: int, dilation: int, padding: Padding
) -> npt.NDArray[np.int64]:
    """Top-left positions along one axis of ``n`` pixels, as ``tf.image.extract_patches``.

    A patch of ``size`` samples at rate ``dilation`` spans
    ``(size - 1) * dilation + 1`` pixels. VALID: ``ceil((n - span + 1) / stride)``
    patches at ``0, stride, …`` (none when the span exceeds ``n``). SAME:
    ``ceil(n / stride)`` patches; the input is padded by
    ``max((out - 1) * stride + span - n, 0)``, the low side getting half
    rounded down, so positions start at ``-pad_low``.
    """
    span = (size - 1) * dilation + 1
    if padding == "valid":
        out = max(-(-(n - span + 1) // stride), 0)
        return np.arange(out, dtype=np.int64) * stride
    out = -(-n // stride)
    pad = max((out - 1) * stride + span - n, 0)
    return np.arange(out, dtype=np.int64) * stride - pad // 2


def grid(
    sources: Any,
    size: Pair,
    stride: Pair | None = None,
    *,
    padding: Padding = "valid",
    dilation: Pair = 1,
    level: int | None = None,
    mpp: float | None = None,
    magnification: float | None = None,
    mpp_tolerance: float = MPP_TOLERANCE,
    fill: float = 0,
    mask: MaskSpec | Sequence[MaskSpec] = None,
    min_tissue: float = 0.0,
    labels: Sequence[int] | None = None,
    annotations: AnnotationSpec = None,
    labels_from_annotations: bool = False,
    min_annotation: float | None = None,
    background: str | None = None,
    include_classes: str | Sequence[str] | None = None,
    exclude_classes: str | Sequence[str] | None = None,
    on_error: OnError = "stop",
) -> PatchPlan:
    """Plan a regular grid of patches over every slide.

    Positions, counts and padding are those of ``tf.image.extract_patches``
    with ``sizes=size``, ``strides=stride``, ``rates=dilation`` (see
    :func:`axis_positions`), computed in pixels of the target resolution and
    stored in level-0 pixels. Patches are ordered slide by slide, row-major.

    When the target pixel size lies between pyramid levels (20× from a 40×
    scan), the grid is laid over the image as it would be at the target:
    ``floor(n / f)`` target pixels along an axis of ``n`` level pixels
    (``f`` the resampling factor), patch ``p`` starting at level pixel
    ``floor(p · f)``; each patch is read as ``round(size · f)`` level pixels
    and area-averaged to ``size``.

    Parameters
    ----------
    sources
        A path, array, `Slide` or `SlideSet`, or a sequence of them.
    size
        Patch (height, width) in target pixels (pixels of the level when no
        ``mpp``/``magnification`` is given), or one int for both.
    stride
        Step between patches in target pixels; defaults to ``size``.
    padding
        ``"valid"``: only patches wholly inside; ``"same"``: ``ceil(n / stride)``
        patches per axis, pixels outside the image take ``fill``.
    dilation
        Sampling rate inside a patch (TF's ``rates``); an int or (ry, rx).
    level, mpp, magnification
        Level to cut from (default 0), or a target pixel size in µm, or an
        objective power (40× ≈ 0.25 µm/px, 20× ≈ 0.5; from the slide's
        recorded magnification when it has one): each slide reads the level
        within ``mpp_tolerance`` of the target, else its coarsest finer level,
        downsampled by area averaging (:meth:`Slide.resolution`).
    mpp_tolerance
        Relative difference under which a level counts as the target (0.02).
    fill
        Value of out-of-image pixels with ``padding="same"``.
    mask
        Tissue map: ``"tissue"`` (computed from a low-resolution level), a
        2-d array or a mask file covering the slide at any resolution, a
        ``(slide) -> map`` callable, or a list of these, one per slide.
    min_tissue
        Keep only patches whose footprint is at least this fraction tissue;
        above 0 without ``mask``, the mask is ``"tissue"``.
    labels
        One class label per slide (default: a `SlideSet`'s, else none).
    annotations
        Regions drawn on the slides (``docs/annotations.md``): an annotation
        file (QuPath GeoJSON, ASAP XML, Aperio XML) for one slide, a folder
        holding ``NAME.geojson`` / ``NAME.json`` / ``NAME.xml`` per slide
        ``NAME.*``, regions in memory, or a list with one per slide. Alone, a
        mask: only patches at least ``min_annotation`` covered by regions are
        kept.
    labels_from_annotations
        Label each patch by the class covering the largest fraction of its
        footprint, when at least ``min_annotation``; others are left out (or
        labelled ``background``). Class names (sorted) become ``classes``.
    min_annotation
        Fraction of a footprint that must be covered (default 0.5), in (0, 1].
    background
        Class name of patches no class covers enough (with
        ``labels_from_annotations``); ``min_tissue`` still applies.
    include_classes, exclude_classes
        Only regions of these classes, or none of these (names or lists).
    on_error
        ``"stop"`` (default): a slide that cannot be planned raises: its
        pixels cannot be read while planning (its tissue mask), it cannot be read
        at the level or pixel size asked (no recorded mpp, a target finer than
        its level 0, a level it lacks), or a patch does not fit in it.
        ``"skip"``: it gets no patches and is recorded in
        ``plan.extra["skipped"]`` (``{path, name, reason}``).

    Returns
    -------
    PatchPlan
        With ``tissue`` (fraction per patch) when a mask was used, and
        ``patch_labels`` with ``labels_from_annotations``.
    """
    slides = as_slides(sources)
    on_error = check_on_error(on_error)
    size = parse_pair("size", size)
    stride = size if stride is None else parse_pair("stride", stride)
    dilation = parse_pair("dilation", dilation)
    if padding not in PADDINGS:
        raise InvalidArgumentError(f"padding must be 'valid' or 'same'; got {padding!r}")
    fill = check_fill(fill, slides)
    min_tissue = check_fraction("min_tissue", min_tissue)
    resolutions, failed = resolve_resolutions(slides, level, mpp, magnification, mpp_tolerance,
                                              on_error)
    slide_labels, classes = resolve_labels(sources, slides, labels)
    if mask is None and min_tissue > 0:
        mask = "tissue"
    shared = mask is None or isinstance(mask, str) or callable(mask)
    masks = spread("mask", mask, len(slides), shared)
    regions = annotated_slides(
        annotations, slides, slide_labels, labels_from_annotations=labels_from_annotations,
        min_annotation=min_annotation, background=background, include_classes=include_classes,
        exclude_classes=exclude_classes)
    if regions is not None and regions.labels:
        classes = regions.classes
    span = [(k - 1) * r + 1 for k, r in zip(size, dilation, strict=True)]
    rows = PlanRows()
    skipped: list[dict[str, str]] = []
    for k, (slide, res) in enumerate(zip(slides, resolutions, strict=True)):
        if k in failed:  # on_error="skip": it cannot be read at what was asked
            skipped.append(failed[k])
            continue
        lvl, f = res.level, res.factor
        lh, lw = slide.levels[lvl].shape
        th, tw = (lh, lw) if f == 1.0 else (int(lh // f), int(lw // f))  # target pixels
        if padding == "valid" and (span[0] > th or span[1] > tw):
            at = f"level {lvl}" if f == 1.0 else f"mpp {res.mpp:.4g} (µm/px)"
            small = InvalidArgumentError(
                f"size {size[0]}x{size[1]} does not fit in {slide.name!r} at {at} "
                f"({th}x{tw} pixels)"
                + (f" with dilation {dilation[0]}x{dilation[1]}" if dilation != (1, 1) else "")
            )
            if on_error == "stop":
                raise small
            skipped.append(skipped_slide(slide, small))
            continue
        py = axis_positions(th, size[0], stride[0], dilation[0], padding)
        px = axis_positions(tw, size[1], stride[1], dilation[1], padding)
        if f != 1.0:
            py, px = np.floor(py * f).astype(np.int64), np.floor(px * f).astype(np.int64)
        y, x = to_level0(np.repeat(py, len(px)), np.tile(px, len(py)), slide, lvl)
        try:
            m = resolve_mask(masks[k], slide)
        except SlideError as exc:  # the mask's level does not read
            if on_error == "stop":
                raise
            skipped.append(skipped_slide(slide, exc))
            continue
        dy, dx = slide.levels[lvl].downsample
        rh, rw = res.read_size((span[0], span[1]))
        frac = lab = None
        if regions is not None:
            keep, lab = regions.judge(regions.coverage(k, slide, (rh * dy, rw * dx))(y, x))
            y, x, lab = y[keep], x[keep], None if lab is None else lab[keep]
        if m is not None:
            frac = footprint_fraction(m, slide.shape, y, x, (rh * dy, rw * dx))
            keep = frac >= min_tissue
            y, x, frac = y[keep], x[keep], frac[keep]
            lab = None if lab is None else lab[keep]
        rows.add(k, y, x, frac, lab)
    extra = {
        **resolution_params(mpp, magnification, mpp_tolerance,
                            [r for k, r in enumerate(resolutions) if k not in failed]),
        "min_tissue": min_tissue,
        "mask": describe(mask),
        **(regions.params if regions is not None else {}),
        **({"skipped": skipped} if skipped else {}),
    }
    return PatchPlan(
        **rows.arrays(resolutions), size=size, stride=stride, kind="grid", padding=padding,
        dilation=dilation, fill=fill, extra=extra, slide_labels=slide_labels, classes=classes,
    )


def describe(spec: Any) -> str | None:
    """A short JSON-ready name of a mask or weights spec."""
    if spec is None or isinstance(spec, str):
        return spec
    if isinstance(spec, list | tuple):
        return "per-slide"
    if callable(spec):
        return getattr(spec, "__name__", type(spec).__name__)
    return "array" if hasattr(spec, "shape") else str(spec)
