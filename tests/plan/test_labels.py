"""Many slides: paths, globs and class folders, with labels per slide and per patch."""

import numpy as np
import pytest
import tifffile

import gigapatch
from gigapatch.errors import InvalidArgumentError, SlideError
from gigapatch.plan.labels import find_slides


@pytest.fixture
def classes(tmp_path):
    """root/{benign,tumor}/...tif: 2 benign slides (one nested), 1 tumor slide."""
    rng = np.random.default_rng(0)
    files = ["benign/a.tif", "benign/sub/b.tiff", "tumor/c.tif"]
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        tifffile.imwrite(tmp_path / name, rng.integers(0, 255, (64, 80, 3), dtype=np.uint8))
    (tmp_path / "benign" / "notes.txt").write_text("not a slide")
    (tmp_path / "empty").mkdir()
    return tmp_path


def test_class_folders_label_their_slides(classes):
    found = find_slides(classes, labels_from_dirs=True)
    assert found.classes == ["benign", "empty", "tumor"]
    assert [p.rsplit("/", 1)[1] for p in found] == ["a.tif", "b.tiff", "c.tif"]
    assert found.labels == [0, 0, 2] and len(found) == 3


def test_plans_carry_the_labels_per_slide_and_per_patch(classes):
    found = find_slides(classes, labels_from_dirs=True)
    plan = gigapatch.random(found, 16, 4, seed=0, per_slide=True)
    assert plan.slide_labels == (0, 0, 2) and plan.classes == ("benign", "empty", "tumor")
    assert plan.label.tolist() == [0] * 8 + [2] * 4
    balanced = gigapatch.random(found, 16, 10, seed=0, balance=True)
    assert np.bincount(balanced.label).tolist() == [5, 0, 5]
    grid = gigapatch.grid(found, 32, labels=[1, 1, 0])
    assert grid.label.tolist() == [1] * 4 + [1] * 4 + [0] * 4
    assert gigapatch.grid(classes / "tumor" / "c.tif", 32).label.tolist() == [-1] * 4


def test_paths_globs_and_folders_expand_sorted(classes):
    assert len(find_slides(str(classes / "*" / "*.tif"))) == 2
    assert len(find_slides(str(classes / "**" / "*.tif*"))) == 3
    assert len(find_slides(classes / "benign")) == 2
    found = find_slides([classes / "tumor" / "c.tif", classes / "benign"])
    assert found.labels is None and found.classes == [] and len(found) == 3


def test_discovery_errors(classes):
    with pytest.raises(SlideError, match=r"'.*\*\.svs' matches no slide file"):
        find_slides(str(classes / "*.svs"))
    with pytest.raises(SlideError, match="matches no slide file"):
        find_slides(classes / "empty")
    with pytest.raises(InvalidArgumentError, match="labels_from_dirs needs one folder"):
        find_slides([classes, classes], labels_from_dirs=True)
    with pytest.raises(SlideError, match="no slide files under the class folders"):
        find_slides(classes / "empty", labels_from_dirs=True)
    with pytest.raises(InvalidArgumentError, match="at least one slide"):
        find_slides([])
