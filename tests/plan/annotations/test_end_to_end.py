"""Regions through the whole chain: store labels and class names, the per-source record,
``info``, the dry run, the command line and the preview's outlines."""

import hashlib

import numpy as np
import pytest

import gigapatch
from gigapatch import preview
from gigapatch.cli import main
from gigapatch.engine import estimate
from gigapatch.preview.canvas import LABEL_COLOURS, REGION_COLOUR
from gigapatch.preview.overlay import thumbnail_shape
from gigapatch.store import PatchStore, summarize
from gigapatch.synth import synthesize
from tests.plan.annotations.reference import REGIONS, SHAPE0, STROMA, TUMOR_B, write_all


@pytest.fixture(scope="module")
def scan(tmp_path_factory):
    return synthesize(tmp_path_factory.mktemp("e2e") / "slide.svs", SHAPE0, seed=5)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return write_all(tmp_path_factory.mktemp("e2e-annotations"))


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_store_holds_patch_labels_class_names_and_the_file_fingerprint(scan, files, tmp_path):
    plan = gigapatch.grid(scan, 64, annotations=files["asap"], labels_from_annotations=True)
    store = gigapatch.extract_to_zarr(scan, plan, tmp_path / "s.zarr", workers=1)
    assert np.array_equal(store.label, plan.label)
    assert store.class_names == ("stroma", "tumor")
    rec = store.sources[0]["annotations"]
    assert rec["sha256"] == hashlib.sha256(files["asap"].read_bytes()).hexdigest()
    assert rec["path"] == str(files["asap"].resolve()) and rec["format"] == "asap"
    lines = dict(summarize(store))
    counts = np.bincount(plan.label)
    assert lines["label 0  "] == f"stroma: {counts[0]} patches from 1 slide"
    assert lines["label 1  "] == f"tumor: {counts[1]} patches from 1 slide"
    assert lines["  regions"].startswith(f"{rec['path']} (asap, 3 regions, sha256 "
                                         f"{rec['sha256'][:12]})")
    assert "regions from annotations as labels (min coverage 0.5)" in lines["plan"]
    # resuming the same request keeps the store
    again = gigapatch.extract_to_zarr(scan, plan, tmp_path / "s.zarr", workers=1, resume=True)
    assert np.array_equal(again.label, plan.label)


def test_the_dry_run_counts_patches_per_class(scan, files):
    plan = gigapatch.grid(scan, 64, annotations=files["geojson"], labels_from_annotations=True,
                          background="other")
    est = estimate(scan, plan, sample=4)
    counts = np.bincount(plan.label, minlength=3)
    assert est.per_class == {"other": counts[0], "stroma": counts[1], "tumor": counts[2]}


def test_extract_and_info_from_the_command_line(scan, files, tmp_path, capsys):
    out = tmp_path / "cli.zarr"
    code, text, err = run(capsys, "extract", scan, "-o", out, "--size", 64, "--random", 60,
                          "--seed", 1, "--balanced", "--annotations", files["aperio"],
                          "--labels-from-annotations", "--min-annotation", 0.6,
                          "--include-class", "tumor", "--include-class", "stroma", "--quiet")
    assert code == 0, err
    assert "wrote 60 random patches of 64x64 from 1 slide(s) in 2 classes" in text
    store = PatchStore(out)
    assert np.bincount(store.label).tolist() == [30, 30]
    assert store.plan["min_annotation"] == 0.6
    code, text, err = run(capsys, "info", out)
    assert code == 0 and "label 0   stroma: 30 patches" in text and "  regions" in text


@pytest.mark.parametrize(("flags", "code", "match"), [
    (["--background", "x"], 2, "background needs annotations"),
    (["--annotations", "{geojson}", "--background", "x"], 2,
     "background labels patches no region covers: it needs labels_from_annotations"),
    (["--annotations", "nope.geojson"], 1, "annotations 'nope.geojson' does not exist"),
    (["--annotations", "{geojson}", "--min-annotation", "0"], 2,
     "--min-annotation must be in (0, 1]"),
    (["--annotations", "{geojson}", "--exclude-class", "bone"], 2,
     "exclude_classes names ['bone'], which no annotation has"),
    (["--annotations", "{geojson}", "--random", "5", "--weights", "tissue"], 2,
     "weights and annotations exclude each other"),
])
def test_bad_flags_are_one_line_and_an_exit_status(scan, files, tmp_path, capsys, flags, code,
                                                   match):
    flags = [f.format(geojson=files["geojson"]) for f in flags]
    got, _, err = run(capsys, "extract", scan, "--size", 64, "--dry-run", *flags)
    assert got == code
    assert match in err and err.count("\n") == 1 and "Traceback" not in err


def _body(image, slide, width):
    th, tw = thumbnail_shape(slide.shape, width)
    arr = np.asarray(image)
    return arr[arr.shape[0] - th :, :tw], (th / slide.shape[0], tw / slide.shape[1])


def test_the_preview_outlines_regions_in_their_class_colour_under_the_boxes(scan, files):
    slide = gigapatch.open(scan)
    plan = gigapatch.grid(slide, 64, 256, annotations=files["geojson"],
                          labels_from_annotations=True)
    image = preview.plan(slide, plan, width=800)
    body, (sy, sx) = _body(image, slide, 800)
    for k, colour in enumerate(LABEL_COLOURS[:2]):
        assert (body == colour).all(axis=2).sum() > 100, k
    # the stroma outline runs along its exterior: the midpoint of its top edge is on it
    (xa, ya), (xb, yb) = STROMA[0], STROMA[1]
    my, mx = int((ya + yb) / 2 * sy), int((xa + xb) / 2 * sx)
    patch = body[my - 2 : my + 3, mx - 2 : mx + 3]
    assert (patch == LABEL_COLOURS[0]).all(axis=2).any()
    # tumour B's outline: its first vertex
    y, x = int(TUMOR_B[0, 1] * sy), int(TUMOR_B[0, 0] * sx)
    assert (body[y - 2 : y + 3, x - 2 : x + 3] == LABEL_COLOURS[1]).all(axis=2).any()
    none = _body(preview.plan(slide, plan, width=800, regions=None), slide, 800)[0]
    assert (none == LABEL_COLOURS[0]).all(axis=2).sum() < (body == LABEL_COLOURS[0]).all(
        axis=2).sum()
    # as a mask, outlines take the one region colour; given regions are drawn too
    mask = gigapatch.grid(slide, 64, 256, annotations=files["geojson"])
    body, _ = _body(preview.plan(slide, mask, width=800), slide, 800)
    assert (body == REGION_COLOUR).all(axis=2).sum() > 100
    plain = gigapatch.grid(slide, 64, 256)
    body, _ = _body(preview.plan(slide, plain, width=800, regions=files["aperio"]), slide, 800)
    assert (body == REGION_COLOUR).all(axis=2).sum() > 100
    assert len(REGIONS) == 3


def test_a_store_preview_outlines_the_regions_it_was_planned_with(scan, files, tmp_path):
    plan = gigapatch.grid(scan, 64, 256, annotations=files["aperio"], labels_from_annotations=True)
    store = gigapatch.extract_to_zarr(scan, plan, tmp_path / "p.zarr", workers=1)
    body, (sy, sx) = _body(preview.store_boxes(store, 0, width=600), gigapatch.open(scan), 600)
    assert (body == LABEL_COLOURS[1]).all(axis=2).sum() > 50
    # no box lies on the middle of the stroma's top edge (y ~ 165): only its outline
    (xa, ya), (xb, yb) = STROMA[0], STROMA[1]
    my, mx = int((ya + yb) / 2 * sy), int((xa + xb) / 2 * sx)
    assert (body[my - 2 : my + 3, mx - 2 : mx + 3] == LABEL_COLOURS[0]).all(axis=2).any()
