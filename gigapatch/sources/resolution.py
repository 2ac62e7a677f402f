"""From a wanted pixel size to the level read and the resampling factor.

Real scans are mostly 40× (0.25 µm/px) with levels 4× apart, so the 20×
(0.5 µm/px) patches most pipelines train on exist on no level: they are read
from a finer level and downsampled by area averaging. This module decides,
for one slide and one target:

* a level whose pixel size is within ``tolerance`` (default 2 %) of the
  target is read as it is (the coarsest such level, factor 1);
* otherwise the coarsest level **finer** than the target is read, and each
  patch of ``size`` target pixels is cut as ``round(size · factor)`` pixels of
  that level, then area-averaged down to ``size`` (``factor`` = target mpp /
  level mpp, > 1); a factor within the tolerance of an integer is rounded to
  it (exact f × f block means, the fast path), as a level within the tolerance
  is read as is;
* a target finer than level 0 is an error naming the slide's finest mpp: no
  silent upsampling.

Magnification (objective power) converts to a pixel size through the slide's
own recorded magnification when it has one (Aperio ``AppMag``, OpenSlide's
``objective-power``): ``mpp = mpp₀ · mag₀ / X``; otherwise through the usual
convention ``mpp = 10 / X`` (40× ≈ 0.25 µm/px, 20× ≈ 0.5).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from gigapatch.errors import InvalidArgumentError, check_positive

if TYPE_CHECKING:
    from gigapatch.sources.slide import Slide

__all__ = [
    "MPP_TOLERANCE",
    "Resolution",
    "check_request",
    "check_tolerance",
    "read_size",
    "resolve_resolution",
    "target_mpp",
]

#: Relative difference between a level's mpp and the target under which the level is read as is.
MPP_TOLERANCE = 0.02

#: How a patch gets from the level read to the target pixel size.
Method = Literal["none", "area-integer", "area"]


def read_size(size: int, factor: float) -> int:
    """Level pixels a patch of ``size`` target pixels spans: ``round(size · factor)``, ≥ size.

    Integer factors give an exact multiple (299 at factor 2 reads 598), so each
    output pixel is the mean of a whole f × f block.
    """
    return max(int(size), round(size * factor))


def check_tolerance(tolerance: object, *, name: str = "mpp_tolerance") -> float:
    """``tolerance`` as a float in [0, 0.5)."""
    if isinstance(tolerance, bool) or not isinstance(tolerance, int | float) or not (
        0 <= tolerance < 0.5
    ):
        raise InvalidArgumentError(
            f"{name} must be a number in [0, 0.5) (a fraction, 0.02 = 2 %); got {tolerance!r}"
        )
    return float(tolerance)


def check_request(level: int | None, mpp: float | None, magnification: float | None,
                  tolerance: object) -> float:
    """Check what a caller asks for, whatever the slide: a tolerance in [0, 0.5), a level that
    is an integer >= 0, at most one of ``level`` and ``mpp``/``magnification``, not both of
    those, each positive. Returns the tolerance as a float.

    Raises
    ------
    InvalidArgumentError
        Naming the argument.
    """
    tolerance = check_tolerance(tolerance)
    if level is not None and (isinstance(level, bool) or not isinstance(level, int | np.integer)
                              or level < 0):
        raise InvalidArgumentError(f"level must be an integer >= 0; got {level!r}")
    if level is not None and (mpp is not None or magnification is not None):
        raise InvalidArgumentError(
            f"give level or mpp/magnification, not both; got level={level}, mpp={mpp}, "
            f"magnification={magnification}"
        )
    if mpp is not None and magnification is not None:
        raise InvalidArgumentError(
            f"give mpp or magnification, not both; got mpp={mpp}, magnification={magnification}"
        )
    if mpp is not None:
        check_positive("mpp", mpp)
    if magnification is not None:
        check_positive("magnification", magnification)
    return tolerance


def target_mpp(slide: Slide, *, mpp: float | None = None,
               magnification: float | None = None) -> float:
    """The target pixel size in µm for ``mpp`` or ``magnification`` (exactly one given, as
    :func:`check_request` checks)."""
    if mpp is not None:
        return check_positive("mpp", mpp)
    if magnification is None:
        raise InvalidArgumentError("give mpp or magnification")
    mag = check_positive("magnification", magnification)
    own = slide.magnification
    if own is not None and slide.mpp is not None:
        return slide.mpp * own / mag
    return 10.0 / mag


@dataclass(frozen=True)
class Resolution:
    """Where and how one slide's patches are read for one target pixel size.

    Attributes
    ----------
    level
        The pyramid level read.
    factor
        Target mpp / level mpp: 1 when the level is read as it is, > 1 when
        patches are downsampled.
    mpp
        The target pixel size in µm, ``None`` when planning by level.
    level_mpp
        The pixel size of the level read, ``None`` when the slide records none.
    """

    level: int
    factor: float = 1.0
    mpp: float | None = None
    level_mpp: float | None = None

    @property
    def patch_mpp(self) -> float | None:
        """The pixel size the patches have: the level's mpp times the factor (the target, or
        within the tolerance of it)."""
        return None if self.level_mpp is None else self.level_mpp * self.factor

    @property
    def method(self) -> Method:
        """``"none"``, ``"area-integer"`` (f × f block means) or ``"area"`` (INTER_AREA-like)."""
        if self.factor == 1.0:
            return "none"
        return "area-integer" if float(self.factor).is_integer() else "area"

    def read_size(self, size: tuple[int, int]) -> tuple[int, int]:
        """(height, width) in level pixels that a patch of ``size`` target pixels spans."""
        return read_size(size[0], self.factor), read_size(size[1], self.factor)

    def record(self) -> dict[str, object]:
        """JSON-ready description (what the store records per source)."""
        return {
            "level": self.level,
            "target_mpp": self.mpp,
            "level_mpp": self.level_mpp,
            "patch_mpp": self.patch_mpp,
            "factor": self.factor,
            "resampling": self.method,
        }


def resolve_resolution(
    slide: Slide,
    *,
    level: int | None = None,
    mpp: float | None = None,
    magnification: float | None = None,
    tolerance: float = MPP_TOLERANCE,
) -> Resolution:
    """The level and resampling factor for ``level``, ``mpp`` or ``magnification``.

    Raises
    ------
    InvalidArgumentError
        More than one of them given; a non-positive value; the slide records
        no pixel size (for ``mpp``); the target is finer than level 0.
    """
    tolerance = check_request(level, mpp, magnification, tolerance)
    if mpp is None and magnification is None:
        lvl = slide.check_level(0 if level is None else level)
        base = slide.mpp
        return Resolution(lvl, 1.0, None, None if base is None else base * slide.levels[lvl]
                          .downsample[1])
    target = target_mpp(slide, mpp=mpp, magnification=magnification)
    if slide.mpp is None:
        which = ""
        if len(slide.series) > 1:  # another image of the file may record one (an SVS's main)
            own = slide.series[slide.series_index]
            which = f" series {own.index}" + (f" ({own.name!r})" if own.name else "")
        raise InvalidArgumentError(
            f"{slide.name!r}{which} does not record its pixel size (mpp); choose a level "
            "instead" + (" or another series" if which else "")
        )
    have = [slide.mpp * lvl.downsample[1] for lvl in slide.levels]
    close = [k for k, m in enumerate(have) if abs(m - target) <= tolerance * target]
    if close:
        k = close[-1]
        return Resolution(k, 1.0, target, have[k])
    finer = [k for k, m in enumerate(have) if m < target]
    if not finer:
        listing = ", ".join(f"{k}: {m:.4g}" for k, m in enumerate(have))
        asked = "" if magnification is None else f"magnification {magnification:g} = "
        raise InvalidArgumentError(
            f"{asked}mpp {target:.4g} is finer than level 0 of {slide.name!r} ({have[0]:.4g} "
            f"µm/px, its finest); gigapatch does not upsample (levels' mpp: {listing})"
        )
    k = max(finer, key=lambda i: have[i])
    factor = target / have[k]
    # an integer factor whose output pixel size is within the tolerance of the target is used
    # as is (0.5 from a 0.2527 µm/px scan: 2 × 2 block means of 0.5054 µm/px, 1 % off), exactly
    # as a level within the tolerance is read as is; 1e-6 absorbs 0.5 / 0.25 = 1.9999999
    if abs(factor - round(factor)) <= max(tolerance, 1e-6) * factor:
        factor = float(round(factor))
    return Resolution(k, factor, target, have[k])
