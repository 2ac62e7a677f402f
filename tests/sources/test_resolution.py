"""Level and factor for a target pixel size: within 2 % as is, else the coarsest finer level."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gigapatch
from gigapatch.errors import InvalidArgumentError
from gigapatch.sources import Level, Slide
from gigapatch.sources.resolution import read_size, resolve_resolution
from gigapatch.synth import synthesize


@pytest.fixture(scope="module")
def slide40(tmp_path_factory):
    """A 40x slide: 0.25 µm/px, levels 4x apart (0.25, 1.0), AppMag 40."""
    return gigapatch.open(synthesize(tmp_path_factory.mktemp("s") / "40x.svs", 2048, seed=2))


class _Geometry:
    """A reader with geometry only: the resolution logic never reads pixels."""

    format = "test"
    dtype = np.dtype(np.uint8)
    channels = 3
    magnification = None

    def __init__(self, mpp, shape, downsamples):
        self.mpp = mpp
        self.levels = tuple(
            Level((shape[0] // d, shape[1] // d), (float(d), float(d)), (256, 256), "none")
            for d in downsamples
        )

    def read_level(self, level, y, x, out):
        raise AssertionError("resolution must not read pixels")

    def close(self):
        pass


def _pyramid(mpp: float | None, shape=(40000, 30000), downsamples=(1, 4, 16)) -> Slide:
    """A slide of the given level-0 mpp and levels 4x apart (geometry only)."""
    return Slide(_Geometry(mpp, shape, downsamples), name="geo", reopen=(None, ()))


def test_a_level_within_two_percent_is_read_as_it_is(slide40):
    assert slide40.magnification == 40.0 and slide40.mpp == 0.25
    r = slide40.resolution(mpp=1.0)
    assert (r.level, r.factor, r.method) == (1, 1.0, "none")
    r = slide40.resolution(mpp=1.015)  # 1.5 % off level 1
    assert (r.level, r.factor) == (1, 1.0)
    r = slide40.resolution(mpp=1.03, tolerance=0.05)
    assert (r.level, r.factor) == (1, 1.0)


def test_between_levels_the_coarsest_finer_level_is_downsampled(slide40):
    r = slide40.resolution(mpp=0.5)
    assert (r.level, r.factor, r.method, r.mpp, r.level_mpp) == (0, 2.0, "area-integer", 0.5,
                                                                   0.25)
    assert r.read_size((299, 299)) == (598, 598)
    r = slide40.resolution(mpp=0.3)
    assert (r.level, r.method) == (0, "area") and r.factor == pytest.approx(1.2)
    assert r.read_size((299, 256)) == (359, 307)
    r = slide40.resolution(mpp=1.03)  # 3 % off level 1: read level 1 and downsample a little
    assert r.level == 1 and r.factor == pytest.approx(1.03)
    r = slide40.resolution(mpp=3.0)  # between 1.0 and 4.0 (no level 2 on a 2048² slide)
    assert (r.level, r.factor, r.method) == (1, 3.0, "area-integer")


def test_a_factor_near_an_integer_is_snapped_within_the_tolerance():
    real = _pyramid(0.2527)  # Aperio's usual 40x pixel size
    r = real.resolution(mpp=0.5)
    assert (r.level, r.factor, r.method) == (0, 2.0, "area-integer")
    assert r.patch_mpp == pytest.approx(0.5054) and r.read_size((299, 299)) == (598, 598)
    r = real.resolution(mpp=0.5, tolerance=0.0)
    assert r.method == "area" and r.factor == pytest.approx(0.5 / 0.2527)
    assert r.read_size((299, 299)) == (592, 592)


def test_magnification_uses_the_recorded_objective_power(slide40):
    assert slide40.resolution(magnification=20) == slide40.resolution(mpp=0.5)
    assert slide40.resolution(magnification=10).level == 1
    # a scanner that records 0.2527 µm/px at 40x: 20x is 0.5054 µm/px, not 0.5
    odd = _pyramid(0.2527)
    assert odd.magnification is None
    assert odd.resolution(magnification=20).mpp == pytest.approx(0.5)  # 10 / X without AppMag


def test_finer_than_level_0_is_an_error_naming_the_finest_mpp(slide40):
    with pytest.raises(InvalidArgumentError, match=r"mpp 0\.1 is finer than level 0 of "
                       r"'40x\.svs' \(0\.25 µm/px, its finest\); gigapatch does not upsample"):
        slide40.resolution(mpp=0.1)
    with pytest.raises(InvalidArgumentError, match=r"mpp 0\.125 is finer than level 0"):
        slide40.resolution(magnification=80)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"mpp": 0}, "mpp must be a positive finite number; got 0"),
        ({"mpp": float("inf")}, "mpp must be a positive finite number; got inf"),
        ({"mpp": "0.5"}, "mpp must be a positive finite number; got '0.5'"),
        ({"magnification": -20}, "magnification must be a positive finite number; got -20"),
        ({"mpp": 0.5, "magnification": 20}, "give mpp or magnification, not both"),
        ({"mpp": 0.5, "level": 1}, "give level or mpp/magnification, not both"),
        ({"mpp": 0.5, "tolerance": 0.7}, r"mpp_tolerance must be a number in \[0, 0\.5\)"),
    ],
)
def test_bad_targets_name_the_argument(slide40, kwargs, match):
    with pytest.raises(InvalidArgumentError, match=match):
        resolve_resolution(slide40, **kwargs)


def test_no_recorded_pixel_size_is_an_error_for_mpp_not_for_levels():
    bare = _pyramid(None)
    assert bare.resolution(level=1).level == 1
    with pytest.raises(InvalidArgumentError, match="does not record its pixel size"):
        bare.resolution(mpp=0.5)


@settings(max_examples=200, deadline=None)
@given(
    mpp0=st.floats(0.1, 1.0),
    ratio=st.floats(1.0, 40.0),
    tolerance=st.sampled_from([0.0, 0.02, 0.1]),
)
def test_the_choice_is_the_coarsest_level_not_coarser_than_the_target(mpp0, ratio, tolerance):
    slide = _pyramid(mpp0)
    target = mpp0 * ratio
    r = slide.resolution(mpp=target, tolerance=tolerance)
    have = [mpp0 * lv.downsample[1] for lv in slide.levels]
    assert r.level_mpp == pytest.approx(have[r.level])
    if r.factor == 1.0:
        assert abs(have[r.level] - target) <= tolerance * target + 1e-12
    else:
        exact = target / have[r.level]
        assert have[r.level] < target
        if r.factor != pytest.approx(exact):  # snapped to an integer within the tolerance
            assert r.factor == round(exact) and abs(r.factor - exact) <= tolerance * exact
        assert abs(r.patch_mpp - target) <= max(tolerance, 1e-6) * target * 1.0001
        # no coarser level would have done: each is either coarser than the target or is this one
        assert all(m >= target or m <= have[r.level] for m in have)
        assert not any(abs(m - target) <= tolerance * target for m in have)


@given(size=st.integers(1, 2000), factor=st.floats(1.0, 16.0))
def test_read_size_covers_the_patch_and_is_exact_for_integer_factors(size, factor):
    n = read_size(size, factor)
    assert n >= size and abs(n - size * factor) <= 0.5 + 1e-9 * size * factor
    assert read_size(size, float(round(factor))) == size * round(factor)
