"""Cast and normalize: ``y = x / divisor + offset`` per channel, in float32, then the output dtype.

Every backend evaluates the same float32 operations in the same order (a
correctly rounded division, then an add; the CUDA core uses ``__fdiv_rn`` /
``__fadd_rn`` so the compiler can neither approximate nor fuse them), so NumPy,
CuPy and the host-compiled core agree bit for bit. A division rather than a
multiply by the reciprocal makes ``xception`` equal Keras' ``x / 127.5 - 1``
and ``unit`` equal torchvision's ``x / 255`` bit for bit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias, get_args

import numpy as np
import numpy.typing as npt

from gigapatch.errors import InvalidArgumentError

__all__ = [
    "LAYOUTS", "OUTPUT_DTYPES", "PRESETS", "Layout", "Normalization", "Normalize", "OutputDtype",
    "Preset", "parse_normalize",
]

#: Axis order of output patches: ``"hwc"`` (N, h, w, C) or ``"chw"`` (N, C, h, w).
Layout: TypeAlias = Literal["hwc", "chw"]
#: Float dtype of normalized output.
OutputDtype: TypeAlias = Literal["float32", "float16"]
#: Names of the shipped normalizations (:data:`PRESETS`).
Preset: TypeAlias = Literal["xception", "imagenet", "unit"]
LAYOUTS: tuple[Layout, ...] = get_args(Layout)
OUTPUT_DTYPES: tuple[OutputDtype, ...] = get_args(OutputDtype)

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Normalization:
    """Per-channel ``y = x / divisor + offset`` (one value each means every channel).

    Parameters
    ----------
    divisor, offset
        Tuples of one value or one value per channel, in units of the source
        pixels (0–255 for uint8 scans).
    name
        The preset it came from, or ``"custom"``.
    """

    divisor: tuple[float, ...]
    offset: tuple[float, ...]
    name: str = "custom"

    @classmethod
    def from_mean_std(
        cls, mean: Sequence[float], std: Sequence[float], name: str = "custom"
    ) -> Normalization:
        """``y = (x - mean) / std``, written as ``x / std + (-mean / std)``."""
        mean_a = np.asarray(mean, dtype=np.float64).ravel()
        std_a = np.asarray(std, dtype=np.float64).ravel()
        if mean_a.size == 0 or std_a.size == 0 or np.any(std_a == 0):
            raise InvalidArgumentError(
                f"normalize mean and std must be non-empty with no zero std; got mean={mean!r}, "
                f"std={std!r}"
            )
        return cls(tuple(std_a.tolist()), tuple((-mean_a / std_a).tolist()), name)

    def arrays(
        self, channels: int
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """``(divisor, offset)`` as float32 arrays of length ``channels``."""
        out: list[npt.NDArray[np.float32]] = []
        for label, values in (("divisor", self.divisor), ("offset", self.offset)):
            if len(values) not in (1, channels):
                raise InvalidArgumentError(
                    f"normalize {label} must have 1 or {channels} values (one per channel); "
                    f"got {len(values)} for the {self.name!r} normalization"
                )
            out.append(np.broadcast_to(np.asarray(values, np.float32), (channels,)).copy())
        return out[0], out[1]


PRESETS: dict[Preset, Normalization] = {
    # keras.applications.xception.preprocess_input ("tf" mode): x / 127.5 - 1
    "xception": Normalization((127.5,), (-1.0,), "xception"),
    # torchvision / keras "torch" mode: (x / 255 - mean) / std
    "imagenet": Normalization.from_mean_std(
        [255.0 * m for m in _IMAGENET_MEAN], [255.0 * s for s in _IMAGENET_STD], "imagenet"
    ),
    "unit": Normalization((255.0,), (0.0,), "unit"),
}

#: What the ``normalize`` argument of the kernels takes (see :func:`parse_normalize`).
Normalize: TypeAlias = Preset | Normalization | Mapping[str, Sequence[float]] | None


def parse_normalize(normalize: Normalize | str) -> Normalization | None:
    """Resolve the ``normalize`` argument of the kernels.

    Parameters
    ----------
    normalize
        ``None`` (no cast: output keeps the source dtype), a preset name
        (``"xception"``, ``"imagenet"``, ``"unit"``), a :class:`Normalization`,
        or a mapping with ``divisor``/``offset``, ``scale``/``offset`` (``x * scale
        + offset``, as the divisor ``1 / scale``) or ``mean``/``std`` per channel.
    """
    if normalize is None or isinstance(normalize, Normalization):
        return normalize
    if isinstance(normalize, str):
        if normalize not in PRESETS:
            raise InvalidArgumentError(
                f"normalize must be one of {', '.join(PRESETS)}, a Normalization or a mapping "
                f"with divisor/offset, scale/offset or mean/std; got {normalize!r}"
            )
        return PRESETS[normalize]
    if isinstance(normalize, Mapping):
        keys = set(normalize)
        if keys in ({"scale", "offset"}, {"divisor", "offset"}):
            given = np.ravel(np.asarray(normalize.get("divisor", normalize.get("scale")), float))
            divisor = given if "divisor" in keys else 1.0 / given
            offset = tuple(float(v) for v in np.ravel(normalize["offset"]))
            if divisor.size and offset and np.all(np.isfinite(divisor)) and np.all(divisor):
                return Normalization(tuple(divisor.tolist()), offset)
        elif keys == {"mean", "std"}:
            return Normalization.from_mean_std(normalize["mean"], normalize["std"])
    raise InvalidArgumentError(
        "normalize must be one of xception, imagenet, unit, a Normalization or a mapping with "
        f"divisor/offset, scale/offset or mean/std (no zero divisor); got {normalize!r}"
    )


def parse_output_dtype(
    dtype: npt.DTypeLike | None, normalization: Normalization | None, source: npt.DTypeLike
) -> np.dtype[Any]:
    """The output dtype: the source's without normalization, else float32 (default) or float16."""
    if normalization is None:
        if dtype is not None and np.dtype(dtype) != np.dtype(source):
            raise InvalidArgumentError(
                f"dtype must be None or the block's dtype {np.dtype(source)} when normalize is "
                f"None (no cast without a normalization); got {dtype!r}"
            )
        return np.dtype(source)
    name = "float32" if dtype is None else str(np.dtype(dtype)) if _is_dtype(dtype) else dtype
    if not isinstance(name, str) or name not in OUTPUT_DTYPES:
        raise InvalidArgumentError(
            f"dtype must be one of {', '.join(OUTPUT_DTYPES)} with a normalization; got {dtype!r}"
        )
    return np.dtype(name)


def _is_dtype(value: npt.DTypeLike) -> bool:
    try:
        np.dtype(value)
    except TypeError:
        return False
    return True


def parse_layout(layout: object) -> Layout:
    """``"hwc"`` (channel-last) or ``"chw"`` (channel-first)."""
    if layout == "hwc" or layout == "chw":
        return layout
    raise InvalidArgumentError(f"layout must be one of {', '.join(LAYOUTS)}; got {layout!r}")
