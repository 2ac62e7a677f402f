"""``on_error="skip"`` while planning: a slide that cannot be read at the pixel size or level
asked, or that a patch does not fit in, is left out with its reason; ``"stop"`` raises; an
argument wrong for every slide raises either way."""

import numpy as np
import pytest
import tifffile

import gigapatch
from gigapatch.cli import main
from gigapatch.errors import InvalidArgumentError
from gigapatch.store import PatchStore
from gigapatch.synth import synthesize


@pytest.fixture(scope="module")
def slides(tmp_path_factory):
    """A 40x slide (0.25 µm/px, two levels), a 20x one (0.5, one level), one recording no
    pixel size, a tiny one."""
    root = tmp_path_factory.mktemp("unreachable")
    synthesize(root / "s40.svs", 2048, mpp=0.25, seed=1, workers=1)
    synthesize(root / "s20.svs", 1024, mpp=0.5, seed=2, workers=1)
    tifffile.imwrite(root / "plain.tif", np.full((512, 512, 3), 200, np.uint8), tile=(256, 256))
    synthesize(root / "tiny.svs", 256, mpp=0.25, seed=3, workers=1)
    return {p.stem: str(p) for p in root.iterdir()}


def _reasons(plan) -> dict[str, str]:
    return {s["name"]: s["reason"] for s in plan.extra["skipped"]}


@pytest.mark.parametrize("kind", ["grid", "random"])
def test_a_slide_that_cannot_reach_the_target_is_skipped_with_its_reason(slides, kind):
    sources = [slides["s40"], slides["s20"], slides["plain"]]
    make = {"grid": lambda **kw: gigapatch.grid(sources, 64, **kw),
            "random": lambda **kw: gigapatch.random(sources, 64, 30, seed=0, **kw)}[kind]
    with pytest.raises(InvalidArgumentError, match=r"mpp 0\.3 is finer than level 0 of "
                                                   r"'s20\.svs' \(0\.5 µm/px, its finest\)"):
        make(mpp=0.3)
    plan = make(mpp=0.3, on_error="skip")
    assert set(np.unique(plan.slide).tolist()) == {0} and len(plan) > 0
    reasons = _reasons(plan)
    assert set(reasons) == {"s20.svs", "plain.tif"}
    assert "mpp 0.3 is finer than level 0 of 's20.svs'" in reasons["s20.svs"]
    assert reasons["plain.tif"] == ("'plain.tif' does not record its pixel size (mpp); choose "
                                    "a level instead")
    assert plan.params()["target_mpp"] == 0.3 and plan.factor_of(0) == pytest.approx(1.2)
    if kind == "random":  # the left-out slides' shares go to the one left
        assert len(plan) == 30


def test_a_slide_a_patch_does_not_fit_in_is_skipped(slides):
    sources = [slides["s40"], slides["tiny"]]
    for make in (lambda **kw: gigapatch.grid(sources, 299, mpp=0.5, **kw),
                 lambda **kw: gigapatch.random(sources, 299, 10, seed=0, mpp=0.5, **kw)):
        with pytest.raises(InvalidArgumentError, match="size 299x299 does not fit in 'tiny.svs' "
                                                       r"at mpp 0\.5 \(µm/px\) \(128x128 pixels\)"):
            make()
        plan = make(on_error="skip")
        assert set(np.unique(plan.slide).tolist()) == {0}
        assert "does not fit in 'tiny.svs'" in _reasons(plan)["tiny.svs"]
    assert len(plan) == 10  # the random plan: all 10 from the slide a patch fits in


def test_balanced_shares_go_to_the_slides_left_in_each_class(slides):
    sources = [slides["s40"], slides["s20"], slides["tiny"], slides["s40"]]
    plan = gigapatch.random(sources, 64, 40, seed=0, mpp=0.3, labels=[0, 0, 1, 1],
                            balance=True, on_error="skip")
    assert set(_reasons(plan)) == {"s20.svs"}  # tiny holds 64² at 0.3 µm/px (77² read)
    per_slide = np.bincount(plan.slide, minlength=4).tolist()
    assert per_slide == [20, 0, 10, 10]  # class 0: all 20 from s40; class 1: 10 and 10


def test_a_level_a_slide_lacks_is_skipped(slides):
    plan = gigapatch.grid([slides["s40"], slides["tiny"]], 64, level=1, on_error="skip")
    assert set(np.unique(plan.slide).tolist()) == {0}
    assert "tiny.svs" in _reasons(plan) and "level" in _reasons(plan)["tiny.svs"]


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"mpp": -1}, "mpp must be"),
    ({"mpp": 0.5, "mpp_tolerance": 0.7}, r"mpp_tolerance must be a number in \[0, 0\.5\)"),
    ({"mpp": 0.5, "magnification": 20}, "give mpp or magnification, not both"),
    ({"level": 0, "mpp": 0.5}, "give level or mpp/magnification, not both"),
    ({"magnification": 0}, "magnification must be"),
    ({"level": -1}, r"level must be an integer >= 0; got -1"),
    ({"level": "1"}, r"level must be an integer >= 0; got '1'"),
])
def test_arguments_wrong_for_every_slide_raise_even_with_skip(slides, kwargs, match):
    with pytest.raises(InvalidArgumentError, match=match):
        gigapatch.grid([slides["s40"], slides["s20"]], 64, on_error="skip", **kwargs)


def test_cli_skip_reports_the_slide_and_extracts_the_others(slides, tmp_path, capsys):
    out = tmp_path / "p.zarr"
    code = main(["extract", slides["s40"], slides["s20"], "-o", str(out), "--size", "64",
                 "--mpp", "0.3", "--random", "12", "--seed", "0", "--on-error", "skip", "-q"])
    _, err = capsys.readouterr()
    assert code == 0, err
    store = PatchStore(out)
    assert len(store) > 0 and set(np.unique(store.slide).tolist()) == {0}
    assert "mpp 0.3 is finer than level 0 of 's20.svs'" in str(store.plan["skipped"])


def test_every_slide_left_out_is_an_empty_plan_not_a_crash(slides):
    plan = gigapatch.grid([slides["s20"], slides["plain"]], 64, mpp=0.3, on_error="skip")
    assert len(plan) == 0 and set(_reasons(plan)) == {"s20.svs", "plain.tif"}


def test_cli_says_why_a_plan_of_left_out_slides_has_nothing_to_write(slides, tmp_path, capsys):
    out = tmp_path / "p.zarr"
    code = main(["extract", slides["s20"], slides["plain"], "-o", str(out), "--size", "64",
                 "--mpp", "0.3", "--on-error", "skip", "-q"])
    _, err = capsys.readouterr()
    assert code == 2 and err.count("\n") == 1 and not out.exists()
    assert err.startswith("gigapatch extract: error: the plan holds no patches: nothing to write "
                          "(slides left out: s20.svs: mpp 0.3 is finer than level 0 of 's20.svs'")
    assert "plain.tif: 'plain.tif' does not record its pixel size (mpp)" in err
