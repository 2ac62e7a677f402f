"""What a lossy store costs in pixels: the PSNR of a sample of its patches, kept in its attrs.

A JPEG store (``jpeg:QUALITY``, ``jpeg:source``) records, in
``attrs["gigapatch"]``, ``quality`` (the JPEG quality, or ``"source"``),
``psnr_db`` (the PSNR in dB of a fixed-seed sample of its patches as they
read back, against the same patches uncompressed; None when they read back
identical) and ``psnr_sample`` (patches sampled). The engine measures it when a
run ends (:func:`gigapatch.engine.quality.record_store_quality`); ``gigapatch
info`` prints it (:func:`quality_line`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import zarr

from gigapatch.store.codecs import CodecSpec, codec_of
from gigapatch.store.durable import fsync_dir
from gigapatch.store.format import ATTRS_KEY

__all__ = ["psnr_db", "quality_line", "record_quality"]


def psnr_db(reference: npt.NDArray[Any], decoded: npt.NDArray[Any], peak: float = 255.0) -> \
        float | None:
    """The PSNR in dB of ``decoded`` against ``reference`` (same shape), over all their values
    pooled; None when they are identical (an infinite PSNR)."""
    if reference.shape != decoded.shape:
        raise ValueError(f"shapes differ: {reference.shape} vs {decoded.shape}")
    if not reference.size:
        return None
    if np.array_equal(reference, decoded):  # tile pass-through: the same pixels, cheaply
        return None
    total = 0.0  # the squared error in slices of a few MiB: no float64 copy of the whole sample
    flat_ref, flat_dec = reference.reshape(-1), decoded.reshape(-1)
    for start in range(0, flat_ref.size, 1 << 20):
        part = (flat_ref[start : start + (1 << 20)].astype(np.float64)
                - flat_dec[start : start + (1 << 20)])
        total += float(np.dot(part, part))
    mse = total / reference.size
    return None if mse == 0 else 10 * math.log10(peak * peak / mse)


def record_quality(group: zarr.Group, codec: CodecSpec, psnr: float | None, sample: int, *,
                   sync: bool = True) -> None:
    """Record a lossy store's codec quality and the PSNR of ``sample`` patches in its attrs."""
    attrs: dict[str, Any] = dict(group.attrs[ATTRS_KEY])  # type: ignore[arg-type]
    attrs.update(quality=codec.quality, psnr_db=None if psnr is None else round(psnr, 2),
                 psnr_sample=int(sample))
    group.attrs[ATTRS_KEY] = attrs  # zarr replaces zarr.json whole
    root = getattr(group.store, "root", None)
    if sync and root is not None:
        fsync_dir(Path(root))


def quality_line(attrs: dict[str, Any]) -> str | None:
    """What ``info`` says of a store's codec quality: None for a lossless store."""
    codec = codec_of(attrs)
    if codec is None or codec.lossless:
        return None
    kind = ("the source's own JPEG tiles, copied" if codec.quality == "source"
            else f"JPEG quality {codec.quality}, 4:2:0")
    if "psnr_sample" not in attrs:
        return f"{kind}; PSNR not measured (the run did not finish)"
    psnr, sample = attrs.get("psnr_db"), attrs["psnr_sample"]
    what = "identical to" if psnr is None else f"PSNR {psnr:.1f} dB against"
    return f"{kind}; {what} the uncompressed patches ({sample} sampled)"
