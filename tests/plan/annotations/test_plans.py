"""Plans from annotated regions: labels by coverage, centres in regions, areas in proportion."""

import numpy as np
import pytest
from scipy.stats import chisquare

import gigapatch
from gigapatch.plan.annotations import read_annotations
from gigapatch.synth import synthesize
from tests.plan.annotations.reference import (
    HOLE,
    REGIONS,
    SHAPE0,
    STROMA,
    TUMOR_A,
    TUMOR_B,
    area,
    coverage,
    in_region,
    write_all,
)

CLASSES = ["stroma", "tumor"]
#: Reference coverage this close to the threshold is not compared (raster vs sampling error).
MARGIN = 0.1


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return write_all(tmp_path_factory.mktemp("annotations"))


def _slide():
    return gigapatch.open(np.zeros((*SHAPE0, 3), np.uint8))


def _same(a, b):
    assert np.array_equal(a.slide, b.slide)
    assert np.array_equal(a.y, b.y) and np.array_equal(a.x, b.x)
    assert np.array_equal(a.label, b.label) and a.classes == b.classes


@pytest.mark.parametrize("kind", ["grid", "random", "balanced"])
def test_the_three_formats_give_identical_plans(files, kind):
    plans = []
    for path in files.values():
        if kind == "grid":
            p = gigapatch.grid(_slide(), 48, 32, annotations=path, labels_from_annotations=True)
        else:
            p = gigapatch.random(_slide(), 48, 600, seed=4, annotations=path,
                                 labels_from_annotations=True, balance=kind == "balanced")
        plans.append(p)
    for p in plans[1:]:
        _same(plans[0], p)
    assert len(plans[0]) > 100 and plans[0].classes == ("stroma", "tumor")
    assert set(np.unique(plans[0].label)) == {0, 1}


def _check_labels(plan, footprint, threshold, background=None):
    """Every planned patch's label is the reference's, where the reference is clear; every
    grid position left out is one the reference leaves out."""
    cov = coverage(REGIONS, CLASSES, plan.y, plan.x, footprint)
    best, top = cov.argmax(axis=1), cov.max(axis=1)
    clear = np.abs(top - threshold) > MARGIN
    want = np.where(top >= threshold, best, -1 if background is None else background)
    assert clear.mean() > 0.7
    assert np.array_equal(plan.label[clear], want[clear])
    return cov


@pytest.mark.parametrize("threshold", [0.5, 0.8, 0.3])
def test_grid_labels_are_the_classes_an_independent_point_in_polygon_test_gives(files,
                                                                               threshold):
    size = 40
    plan = gigapatch.grid(_slide(), size, 24, annotations=files["geojson"],
                          labels_from_annotations=True, min_annotation=threshold)
    _check_labels(plan, (size, size), threshold)
    # and no grid position with a clear reference label was left out
    ys, xs = np.meshgrid(np.arange(0, SHAPE0[0] - size + 1, 24),
                         np.arange(0, SHAPE0[1] - size + 1, 24), indexing="ij")
    kept = set(zip(plan.y.tolist(), plan.x.tolist(), strict=True))
    out = np.array([(y, x) not in kept for y, x in zip(ys.ravel(), xs.ravel(), strict=True)])
    cov = coverage(REGIONS, CLASSES, ys.ravel()[out], xs.ravel()[out], (size, size))
    assert (cov.max(axis=1) < threshold + MARGIN).all()
    assert out.sum() > 100


def test_the_smaller_region_wins_where_classes_overlap(files):
    # tumour A lies inside the stroma: patches inside it are tumour, not stroma
    plan = gigapatch.grid(_slide(), 32, annotations=files["asap"], labels_from_annotations=True)
    cy, cx = plan.y + 16, plan.x + 16
    deep = in_region(("tumor", TUMOR_A, []), cy, cx)
    assert deep.sum() > 20
    assert (plan.label[deep & (plan.label >= 0)] == 1).mean() > 0.9


def _centres(plan, footprint):
    return plan.y + footprint[0] / 2, plan.x + footprint[1] / 2


@pytest.mark.parametrize("fmt", ["geojson", "asap", "aperio"])
def test_no_random_centre_lies_in_a_hole_or_outside_every_region(files, fmt):
    plan = gigapatch.random(_slide(), (36, 52), 3000, seed=1, annotations=files[fmt],
                            labels_from_annotations=True, min_annotation=0.3)
    cy, cx = _centres(plan, (36, 52))
    inside = np.zeros(len(plan), bool)
    for r in REGIONS:
        inside |= in_region(r, cy, cx)
    assert inside.all()
    from tests.plan.annotations.reference import inside as ring_inside
    assert not ring_inside(HOLE, cy, cx).any()
    _check_labels(plan, (36, 52), 0.3)


def test_grid_patches_with_background_cover_the_rest(files):
    plan = gigapatch.grid(_slide(), 64, annotations=files["aperio"],
                          labels_from_annotations=True, background="glass")
    assert plan.classes == ("glass", "stroma", "tumor")
    ny, nx = SHAPE0[0] // 64, SHAPE0[1] // 64
    assert len(plan) == ny * nx  # every position, labelled
    cov = coverage(REGIONS, CLASSES, plan.y, plan.x, (64, 64))
    top = cov.max(axis=1)
    clear = np.abs(top - 0.5) > MARGIN
    want = np.where(top >= 0.5, cov.argmax(axis=1) + 1, 0)
    assert np.array_equal(plan.label[clear], want[clear])


def _pieces():
    """Disjoint parts of the union: stroma less tumour A, tumour A, tumour B."""
    stroma = area(STROMA) - area(HOLE) - area(TUMOR_A)
    return np.array([stroma, area(TUMOR_A), area(TUMOR_B)])


def test_random_centres_cover_each_region_in_proportion_to_its_area(files):
    n = 20_000
    plan = gigapatch.random(_slide(), 32, n, seed=9, annotations=files["geojson"],
                            min_annotation=1e-9)  # as a mask: keep every centre drawn
    assert len(plan) == n and (plan.label == -1).all()
    cy, cx = _centres(plan, (32, 32))
    in_a = in_region(("tumor", TUMOR_A, []), cy, cx)
    in_b = in_region(("tumor", TUMOR_B, []), cy, cx)
    in_s = in_region(REGIONS[0], cy, cx) & ~in_a
    assert (in_a | in_b | in_s).all() and not (in_s & in_b).any()
    counts = np.array([in_s.sum(), in_a.sum(), in_b.sum()])
    expected = _pieces() / _pieces().sum() * n
    assert chisquare(counts, expected).pvalue > 1e-3  # an overlap counts once


def test_balanced_sampling_splits_over_classes_and_background(files):
    plan = gigapatch.random(_slide(), 40, 900, seed=2, annotations=files["asap"],
                            labels_from_annotations=True, balance=True, background="other")
    assert plan.classes == ("other", "stroma", "tumor")
    assert np.bincount(plan.label).tolist() == [300, 300, 300]
    cov = coverage(REGIONS, CLASSES, plan.y, plan.x, (40, 40))
    bg = plan.label == 0
    assert (cov[bg].max(axis=1) < 0.5 + MARGIN).all()


def test_include_and_exclude_classes(files):
    only = gigapatch.grid(_slide(), 48, annotations=files["geojson"],
                          labels_from_annotations=True, include_classes=["tumor"])
    assert only.classes == ("tumor",) and (only.label == 0).all()
    cy, cx = _centres(only, (48, 48))
    assert not (in_region(REGIONS[0], cy, cx) & ~in_region(("t", TUMOR_A, []), cy, cx)).any()
    without = gigapatch.grid(_slide(), 48, annotations=files["geojson"],
                             labels_from_annotations=True, exclude_classes="tumor")
    assert without.classes == ("stroma",)
    # as a mask without labels, the tumour regions alone
    mask = gigapatch.grid(_slide(), 48, annotations=files["geojson"], include_classes="tumor")
    assert mask.classes == () and len(mask) == len(only)


def test_annotations_as_a_mask_keep_labels_from_elsewhere(files):
    plan = gigapatch.grid(_slide(), 48, annotations=files["geojson"], labels=[3])
    assert (plan.label == 3).all() and len(plan) > 100
    cov = coverage(REGIONS, CLASSES, plan.y, plan.x, (48, 48)).sum(axis=1)
    assert (cov > 0.5 - MARGIN).all()


def test_plans_record_the_annotation_file_and_its_fingerprint(files):
    plan = gigapatch.grid(_slide(), 48, annotations=files["asap"], labels_from_annotations=True)
    rec = plan.params()["annotations"][0]
    ann = read_annotations(files["asap"])
    assert rec == {"path": ann.path, "sha256": ann.sha256, "format": "asap", "regions": 3,
                   "classes": ["stroma", "tumor"], "skipped": 0}
    assert plan.params()["min_annotation"] == 0.5
    assert plan.params()["labels_from_annotations"] is True


@pytest.fixture(scope="module")
def scan(tmp_path_factory):
    """A 40x (0.25 um/px) synthetic scan with levels 1 and 4x smaller, shaped as SHAPE0."""
    return synthesize(tmp_path_factory.mktemp("scan") / "scan.svs", SHAPE0, seed=2)


@pytest.mark.parametrize("where", [{"mpp": 0.5}, {"level": 1}, {"mpp": 0.6}])
def test_labels_hold_at_any_resolution(files, scan, where):
    slide = gigapatch.open(scan)
    plan = gigapatch.grid(slide, 24, annotations=files["geojson"], labels_from_annotations=True,
                          **where)
    k = 0
    dy = slide.levels[plan.level_of(k)].downsample[0]
    footprint = plan.read_size(k)[0] * dy, plan.read_size(k)[1] * dy
    assert footprint[0] > 24  # patches cover more level-0 pixels than their size
    _check_labels(plan, footprint, 0.5)
    rnd = gigapatch.random(slide, 24, 500, seed=0, annotations=files["aperio"],
                           labels_from_annotations=True, **where)
    cy, cx = _centres(rnd, footprint)
    inside = np.zeros(len(rnd), bool)
    for r in REGIONS:
        inside |= in_region(r, cy, cx)
    assert inside.all()
    _check_labels(rnd, footprint, 0.5)


def test_min_tissue_still_applies_with_annotations(files, scan):
    slide = gigapatch.open(scan)
    plain = gigapatch.grid(slide, 64, annotations=files["geojson"], labels_from_annotations=True,
                           background="bg")
    masked = gigapatch.grid(slide, 64, annotations=files["geojson"],
                            labels_from_annotations=True, background="bg", min_tissue=0.5)
    assert 0 < len(masked) < len(plain) and masked.tissue is not None
    assert (masked.tissue >= 0.5).all()
    kept = {(y, x): lab for y, x, lab in zip(plain.y.tolist(), plain.x.tolist(),
                                             plain.label.tolist(), strict=True)}
    assert all(kept[(y, x)] == lab for y, x, lab in zip(masked.y.tolist(), masked.x.tolist(),
                                                         masked.label.tolist(), strict=True))
