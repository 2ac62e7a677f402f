"""Saliency maps for weighted sampling: any ``(slide) -> map`` callable is a weight map.

A map is a 2-d non-negative array covering the whole slide at any resolution
(see :func:`gigapatch.random`). Two helpers ship here: :func:`tissue_density`
(the default of ``weights="tissue"``) and :class:`XceptionSaliency`, the
mean activation of Xception's last block (``block14_sepconv2_act``) over a
low-resolution level, for which the ``keras`` extra must be installed.
Both read only low-resolution levels.
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt

from gigapatch.errors import InvalidArgumentError, SlideError
from gigapatch.plan.masks import mask_level, thumbnail, tissue_mask
from gigapatch.sources import Slide

__all__ = ["XceptionSaliency", "tissue_density"]

#: Layer whose mean activation is Xception's saliency.
XCEPTION_LAYER = "block14_sepconv2_act"


def tissue_density(
    slide: Slide, *, mask: npt.NDArray[Any] | None = None, radius: int = 2
) -> npt.NDArray[np.float32]:
    """Local tissue density in [0, 1]: the tissue mask averaged over a small window.

    Parameters
    ----------
    slide
        An open slide.
    mask
        A tissue mask already computed (default: :func:`~gigapatch.plan.masks.tissue_mask`).
    radius
        Half-width of the averaging window, in mask pixels (0: the mask itself).

    Returns
    -------
    numpy.ndarray
        (h, w) float32 map covering the slide.
    """
    from scipy.ndimage import uniform_filter

    mask = tissue_mask(slide) if mask is None else mask
    density: npt.NDArray[np.float32] = np.asarray(mask, np.float32)
    if radius > 0:
        density = uniform_filter(density, size=2 * radius + 1, mode="constant")
    return np.clip(density, 0.0, 1.0)


def _to_numpy(keras: ModuleType, tensor: Any) -> npt.NDArray[Any]:
    """A backend tensor as NumPy (torch tensors directly: ``np.array`` on them warns)."""
    if hasattr(tensor, "detach"):
        return np.asarray(tensor.detach().cpu().numpy())
    return np.asarray(keras.ops.convert_to_numpy(tensor))


class XceptionSaliency:
    """Mean activation of Xception's ``block14_sepconv2_act`` over a slide, upsampled.

    A callable ``(slide) -> map`` for ``gigapatch.random(..., weights=...)``.
    The slide's low-resolution level is fed whole to a fully convolutional
    Xception (``include_top=False``); the channel mean of the last block's
    activations (one value per 32 input pixels) is upsampled bilinearly to
    the input's size. Nothing is downloaded: weights come from a local file,
    or the network stays randomly initialised (for tests).

    Parameters
    ----------
    weights
        Path to a Keras weights file (``.weights.h5``) for
        ``keras.applications.Xception(include_top=False)``, or ``None``.
    level
        Level to read; default the coarsest one with a long side ≥ 1024.
    max_side
        Long side the level is reduced to before the network (≥ 71).
    """

    def __init__(
        self, weights: str | os.PathLike[str] | None = None, *, level: int | None = None,
        max_side: int = 1024,
    ) -> None:
        try:
            import keras
        except ImportError as exc:
            raise InvalidArgumentError(
                f"XceptionSaliency needs keras: pip install 'gigapatch[keras]' ({exc})"
            ) from None
        if weights is not None and not os.path.isfile(weights):
            raise SlideError(f"weights file {str(weights)!r} does not exist")
        if max_side < 71:
            raise InvalidArgumentError(f"max_side must be at least 71; got {max_side}")
        net = keras.applications.Xception(
            include_top=False, weights=None, input_shape=(None, None, 3)
        )
        if weights is not None:
            net.load_weights(os.fspath(weights))
        self._model = keras.Model(net.input, net.get_layer(XCEPTION_LAYER).output)
        self._keras = keras
        self.level = level
        self.max_side = max_side

    def __call__(self, slide: Slide) -> npt.NDArray[np.float32]:
        from scipy.ndimage import zoom

        if slide.channels != 3:
            raise InvalidArgumentError(
                f"XceptionSaliency needs RGB slides; {slide.name!r} has {slide.channels} channels"
            )
        level = mask_level(slide) if self.level is None else slide.check_level(self.level)
        img = thumbnail(slide, level, self.max_side)
        if min(img.shape[:2]) < 71:
            raise InvalidArgumentError(
                f"{slide.name!r} at level {level} is {img.shape[0]}x{img.shape[1]}; Xception "
                "needs at least 71x71 pixels"
            )
        x = img[None] / 127.5 - 1.0  # keras.applications.xception.preprocess_input
        act = _to_numpy(self._keras, self._model(x, training=False))[0]
        saliency = act.mean(axis=-1).astype(np.float32)
        factors = (img.shape[0] / saliency.shape[0], img.shape[1] / saliency.shape[1])
        upsampled: npt.NDArray[np.float32] = zoom(saliency, factors, order=1)
        return np.clip(upsampled, 0.0, None)
