"""Pictures of stores: a contact sheet of exactly n seeded, captioned patches, and the stored
patches' boxes on their source."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import zarr

import gigapatch
from gigapatch import preview
from gigapatch.errors import InvalidArgumentError, StoreError
from gigapatch.preview.canvas import LABEL_COLOURS
from gigapatch.preview.overlay import slide_thumbnail, thumbnail_shape
from gigapatch.preview.stores import GAP
from gigapatch.testing import sample_rgb
from tests.preview.test_plans import edges, split

Image = pytest.importorskip("PIL.Image")


@pytest.fixture(scope="module")
def store(slide_path, tmp_path_factory):
    """Two sources (the same file twice), labels 0 and 1 named, 128-px patches at 0.5 µm/px
    (256 level-0 pixels each), shards of 8."""
    slide = gigapatch.open(slide_path)
    plan = gigapatch.grid([slide, slide], 128, 256, mpp=0.5, labels=[0, 1])
    plan = dataclasses.replace(plan, classes=("normal", "tumour"))
    out = tmp_path_factory.mktemp("stores") / "two.zarr"
    return gigapatch.extract_to_zarr([slide, slide], plan, out, shard_size=8, workers=1)


def cell(image, top, left, tile):
    return np.asarray(image)[top : top + tile, left : left + tile]


def test_a_sheet_has_exactly_n_captioned_cells_each_its_patch(store):
    assert len(store) == 40
    image = preview.sheet(store, n=12, tile=64, columns=4, seed=3)
    patches, cells = image.info["patches"], image.info["cells"]
    assert len(patches) == len(set(patches)) == 12 and patches == sorted(patches)
    assert image.width == GAP + 4 * (64 + GAP)
    tops, lefts = sorted({t for t, _ in cells}), sorted({left for _, left in cells})
    assert len(tops) == 3 and lefts == [GAP + c * (64 + GAP) for c in range(4)]
    caption = tops[1] - tops[0] - 64 - GAP
    assert caption >= 30 and image.height == tops[-1] + 64 + caption + GAP
    for index, (top, left) in zip(patches, cells, strict=True):
        expected = Image.fromarray(store[index]).resize((64, 64), Image.Resampling.BOX)
        assert np.array_equal(cell(image, top, left, 64), np.asarray(expected))
        words = np.asarray(image)[top + 64 : top + 64 + caption, left : left + 64]
        assert (words < 100).all(axis=2).sum() > 30  # three lines of dark text
    # patches shown at their own size when tile is the patch size
    full = preview.sheet(store, n=2, tile=128, seed=3)
    (top, left), index = full.info["cells"][0], full.info["patches"][0]
    assert np.array_equal(cell(full, top, left, 128), store[index])


def test_the_sample_is_seeded_and_capped_at_what_the_store_holds(store):
    a = preview.sheet(store, n=10, tile=32, seed=1).info["patches"]
    assert preview.sheet(store, n=10, tile=32, seed=1).info["patches"] == a
    assert preview.sheet(store, n=10, tile=32, seed=2).info["patches"] != a
    everything = preview.sheet(store, n=1000, tile=32)
    assert everything.info["patches"] == list(range(40))
    assert len({left for _, left in everything.info["cells"]}) == 7  # ceil(sqrt(40))
    few = preview.sheet(store, n=3, tile=32, columns=8)  # no empty columns
    assert few.width == GAP + 3 * (32 + GAP) and len(few.info["cells"]) == 3


def test_a_label_filter_shows_only_that_label(store):
    image = preview.sheet(store, n=8, tile=32, label=1)
    assert len(image.info["patches"]) == 8
    assert (store.label[image.info["patches"]] == 1).all()
    with pytest.raises(InvalidArgumentError, match=r"label 7 is not a label or class name of "
                                                    r"the store; labels: 0 'normal', 1 'tumour'"):
        preview.sheet(store, label=7)
    named = preview.sheet(store, n=8, tile=32, label="tumour")  # a class name works too
    assert named.info["patches"] == image.info["patches"]


def test_patches_of_unfinished_shards_are_not_shown(store, tmp_path):
    import shutil

    copy = tmp_path / "copy.zarr"
    shutil.copytree(store.path, copy)
    group = zarr.open_group(copy, mode="r+")
    group["done"][1:] = False  # only shard 0 (patches 0..7) is done
    image = preview.sheet(copy, n=64, tile=32)
    assert image.info["patches"] == list(range(8))


def test_store_boxes_draws_each_stored_footprint_in_its_label_colour(store, slide_path):
    slide = gigapatch.open(slide_path)
    th, tw = thumbnail_shape(slide.shape, 800)
    thumb = slide_thumbnail(slide, 800)
    for name in ("odd.svs", str(slide_path)):  # both sources have that name and path
        with pytest.raises(InvalidArgumentError,
                           match=r"exactly one source of .*\(odd\.svs, odd\.svs\)"):
            preview.store_boxes(store, name, width=800)
    image = preview.store_boxes(store, 1, width=800, mask=None)
    assert image.width == 800 and image.height > th
    _, body = split(image, (th, tw))
    ys, xs = store.coords[store.slide == 1].T
    on = edges((th, tw), ys, xs, (256, 256), (th / 1800, tw / 2600))  # read_size: 256 level-0
    assert (body[on] == LABEL_COLOURS[1]).all()
    assert (body[~on] == thumb[~on]).all()


def test_store_boxes_without_read_size_uses_the_patch_size(slide_path, tmp_path):
    slide = gigapatch.open(slide_path)
    plan = gigapatch.grid(slide, 128, 512)
    out = gigapatch.extract_to_zarr(slide, plan, tmp_path / "old.zarr", workers=1)
    group = zarr.open_group(out.path, mode="r+")
    attrs = dict(group.attrs["gigapatch"])
    attrs["sources"] = [{k: v for k, v in s.items() if k != "read_size"}
                        for s in attrs["sources"]]
    group.attrs["gigapatch"] = attrs
    image = preview.store_boxes(out.path, "odd.svs", width=800, mask=None)
    th, tw = thumbnail_shape(slide.shape, 800)
    _, body = split(image, (th, tw))
    on = edges((th, tw), plan.y, plan.x, (128, 128), (th / 1800, tw / 2600))
    assert (body[on] == (0, 0, 0)).all()


def test_store_boxes_of_an_array_source_needs_the_slide(tmp_path):
    pixels = sample_rgb(300, 400, seed=1)
    store = gigapatch.extract_to_zarr(pixels, gigapatch.grid(pixels, 100), tmp_path / "a.zarr",
                                      workers=1)
    with pytest.raises(StoreError, match="pass slide= to draw on it"):
        preview.store_boxes(store, 0)
    image = preview.store_boxes(store, 0, slide=pixels, width=400)
    _, body = split(image, (300, 400))
    assert (body[0, :99] == (0, 0, 0)).all() and (body[1:99, 1:99] == pixels[1:99, 1:99]).all()
    with pytest.raises(InvalidArgumentError, match=r"source must be in the range \[0, 0\]"):
        preview.store_boxes(store, 3)
    with pytest.raises(InvalidArgumentError, match="store must be a PatchStore or the path"):
        preview.sheet(42)
