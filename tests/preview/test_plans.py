"""Pictures of plans: boxes where the plan's level-0 footprints scale to, by label colour;
a heat map above max_boxes; the tissue outline; only low levels read."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import zarr

import gigapatch
from gigapatch import preview
from gigapatch.errors import InvalidArgumentError
from gigapatch.preview.canvas import LABEL_COLOURS, MASK_COLOUR, UNLABELLED
from gigapatch.preview.overlay import slide_thumbnail, thumbnail_shape
from gigapatch.testing import sample_rgb

pytest.importorskip("PIL")


def edges(shape, ys, xs, footprint, scale):
    """Where the 1-pixel box outlines of level-0 boxes fall on a thumbnail of ``shape``."""
    out = np.zeros(shape, bool)
    (h0, w0), (sy, sx) = footprint, scale
    for y, x in zip(ys, xs, strict=True):
        y0, x0 = int(np.floor(y * sy)), int(np.floor(x * sx))
        y1 = max(int(np.floor((y + h0) * sy)) - 1, y0)
        x1 = max(int(np.floor((x + w0) * sx)) - 1, x0)
        out[[y0, y1], x0 : x1 + 1] = True
        out[y0 : y1 + 1, [x0, x1]] = True
    return out


def split(image, thumb_shape):
    """(header, body) of a preview: the thumbnail fills the bottom rows, at the left."""
    arr = np.asarray(image)
    th, tw = thumb_shape
    top = arr.shape[0] - th
    return arr[:top], arr[top:, :tw]


@pytest.fixture(scope="module")
def slide(slide_path):
    return gigapatch.open(slide_path)  # 1800x2600, two levels (2600 and 650 wide)


def test_boxes_lie_where_the_plan_scales_to_and_interiors_keep_the_thumbnail(slide):
    plan = gigapatch.grid(slide, 256, 512)  # 4 x 5 boxes that do not touch
    image = preview.plan(slide, plan, mask=None)
    th, tw = thumbnail_shape(slide.shape, 1600)
    assert (th, tw) == (1108, 1600) and image.mode == "RGB"
    assert image.width == 1600 and image.height > th  # the title and legend sit on top
    header, body = split(image, (th, tw))
    thumb = slide_thumbnail(slide, 1600)
    on = edges((th, tw), plan.y, plan.x, (256, 256), (th / 1800, tw / 2600))
    assert on.sum() > 20 * 4 * 100
    assert (body[on] == UNLABELLED).all()
    assert (body[~on] == thumb[~on]).all()  # inside and outside the boxes: the thumbnail
    # the corners of patch 7 (row 1, column 2: level-0 (512, 1024)) in particular
    y0, x0 = int(512 * th / 1800), int(1024 * tw / 2600)
    y1, x1 = int(768 * th / 1800) - 1, int(1280 * tw / 2600) - 1
    for y, x in ((y0, x0), (y0, x1), (y1, x0), (y1, x1)):
        assert tuple(body[y, x]) == UNLABELLED
    assert tuple(body[(y0 + y1) // 2, (x0 + x1) // 2]) == tuple(thumb[(y0 + y1) // 2,
                                                                      (x0 + x1) // 2])
    assert (header < 100).all(axis=2).sum() > 50  # dark text in the header
    assert (header[:, :, 0] == 255).mean() > 0.5  # on a white ground


def test_resampled_patches_are_drawn_with_their_level0_footprint(slide):
    plan = gigapatch.grid(slide, 128, 256, mpp=0.5)  # 128 px at 0.5 µm = 256 level-0 px
    assert plan.read_size(0) == (256, 256)
    image = preview.plan(slide, plan, mask=None, width=800)
    th, tw = thumbnail_shape(slide.shape, 800)
    _, body = split(image, (th, tw))
    on = edges((th, tw), plan.y, plan.x, (256, 256), (th / 1800, tw / 2600))
    assert (body[on] == UNLABELLED).all()
    half = edges((th, tw), plan.y, plan.x, (128, 128), (th / 1800, tw / 2600)) & ~on
    assert not (body[half] == UNLABELLED).all(axis=1).all()


def test_each_label_has_its_colour_and_only_the_chosen_slide_is_drawn(slide):
    plan = gigapatch.grid([slide, slide], 256, 512, labels=[0, 1])
    plan = dataclasses.replace(plan, classes=("normal", "tumour"))
    th, tw = thumbnail_shape(slide.shape, 600)
    mine = plan.slide == 1
    assert mine.sum() == len(plan) // 2
    on = edges((th, tw), plan.y[mine], plan.x[mine], (256, 256), (th / 1800, tw / 2600))
    pictures = [preview.plan(slide, plan, slide_index=k, mask=None, width=600) for k in (0, 1)]
    both = preview.plan([slide, slide], plan, slide_index=1, mask=None, width=600)
    assert np.array_equal(np.asarray(both), np.asarray(pictures[1]))
    for k, image in enumerate(pictures):
        header, body = split(image, (th, tw))
        assert (body[on] == LABEL_COLOURS[k]).all()
        assert (header == LABEL_COLOURS[k]).all(axis=2).any()  # its legend swatch
        assert not (header == LABEL_COLOURS[1 - k]).all(axis=2).any()
    assert LABEL_COLOURS[0] != LABEL_COLOURS[1]


def test_a_heat_map_replaces_the_boxes_above_max_boxes(slide):
    plan = gigapatch.grid(slide, 256, 128)  # overlapping: up to 4 patches on a pixel
    th, tw = thumbnail_shape(slide.shape, 600)
    boxes = preview.plan(slide, plan, mask=None, width=600, max_boxes=len(plan))
    heat = preview.plan(slide, plan, mask=None, width=600, max_boxes=len(plan) - 1)
    assert boxes.size == heat.size
    _, body = split(heat, (th, tw))
    thumb = slide_thumbnail(slide, 600)
    covered = np.zeros((th, tw), bool)
    sy, sx = th / 1800, tw / 2600
    for y, x in zip(plan.y, plan.x, strict=True):
        covered[int(np.floor(y * sy)) : int(np.floor((y + 256) * sy)),
                int(np.floor(x * sx)) : int(np.floor((x + 256) * sx))] = True
    assert (body[~covered] == thumb[~covered]).all()
    assert (body[covered] != thumb[covered]).any(axis=1).mean() > 0.95  # tinted
    assert not (body == UNLABELLED).all(axis=2).any()  # no box outline anywhere
    # more patches on a pixel, a redder (less green) tint: the middle has 4, a corner 1
    assert body[th // 2, tw // 2, 1] < body[2, 2, 1]
    _, box_body = split(boxes, (th, tw))
    assert (box_body == UNLABELLED).all(axis=2).sum() > 1000


def test_the_tissue_outline_is_drawn_when_asked_or_when_the_plan_used_tissue(slide):
    plain = gigapatch.grid(slide, 256, 512)
    tissue = gigapatch.grid(slide, 256, 512, min_tissue=0.5)
    th, tw = thumbnail_shape(slide.shape, 600)

    def outline_pixels(image):
        return int((split(image, (th, tw))[1] == MASK_COLOUR).all(axis=2).sum())

    assert outline_pixels(preview.plan(slide, plain, width=600)) == 0  # auto: the plan used none
    assert outline_pixels(preview.plan(slide, tissue, width=600)) > 200
    assert outline_pixels(preview.plan(slide, tissue, mask=None, width=600)) == 0
    assert outline_pixels(preview.plan(slide, plain, mask="tissue", width=600)) > 200


def test_a_mask_array_is_outlined_where_it_covers_the_slide(slide):
    mask = np.zeros((180, 260), bool)
    mask[45:135, 65:195] = True  # level-0 rows 450..1350, columns 650..1950
    plan = gigapatch.grid(slide, 256, 512)
    th, tw = thumbnail_shape(slide.shape, 600)
    _, body = split(preview.plan(slide, plan, mask=mask, width=600, max_boxes=0), (th, tw))
    line = (body == MASK_COLOUR).all(axis=2)
    ys, xs = np.nonzero(line)
    assert abs(ys.min() - 450 * th / 1800) <= 1 and abs(ys.max() + 1 - 1350 * th / 1800) <= 1
    assert abs(xs.min() - 650 * tw / 2600) <= 1 and abs(xs.max() + 1 - 1950 * tw / 2600) <= 1
    assert line.sum() < 2 * (np.ptp(ys) + np.ptp(xs)) + 8  # a 1-pixel outline, not a fill


def _spy_levels(slide, monkeypatch):
    """Record the level of every read the slide's reader serves (read_level and read_many)."""
    levels = []
    for name in ("read_level", "read_many"):
        real = getattr(slide._reader, name, None)
        if real is None:
            continue

        def spy(level, *args, _real=real):
            levels.append(level)
            return _real(level, *args)

        monkeypatch.setattr(slide._reader, name, spy)
    return levels


@pytest.fixture(scope="module")
def big_slide(tmp_path_factory):
    """A 32768² OME-Zarr pyramid (levels 32768, 8192, 2048, 512); only 2048 and 512 hold
    pixels: reading the others would read nothing but the fill value."""
    path = tmp_path_factory.mktemp("big") / "big.ome.zarr"
    small = sample_rgb(512, 512, seed=5)
    mid = np.repeat(np.repeat(small, 4, axis=0), 4, axis=1)
    group = zarr.open_group(path, mode="w", zarr_format=3)
    datasets = []
    for k, side in enumerate((32768, 8192, 2048, 512)):
        arr = group.create_array(str(k), shape=(3, side, side), dtype=np.uint8,
                                 chunks=(3, 512, 512), fill_value=0)
        if side <= 2048:
            arr[...] = np.moveaxis(mid if side == 2048 else small, 2, 0)
        scale = [1.0, 0.25 * 4**k, 0.25 * 4**k]
        datasets.append({"path": str(k),
                         "coordinateTransformations": [{"type": "scale", "scale": scale}]})
    axes = [{"name": "c", "type": "channel"},
            {"name": "y", "type": "space", "unit": "micrometer"},
            {"name": "x", "type": "space", "unit": "micrometer"}]
    group.attrs["ome"] = {"version": "0.5",
                          "multiscales": [{"name": "big", "axes": axes, "datasets": datasets}]}
    return path


def test_previewing_a_big_slide_reads_only_a_low_level(big_slide, monkeypatch):
    slide = gigapatch.open(big_slide)
    assert [lvl.shape[0] for lvl in slide.levels] == [32768, 8192, 2048, 512]
    levels = _spy_levels(slide, monkeypatch)
    plan = gigapatch.grid(slide, 512, min_tissue=0.5)
    assert 100 < len(plan) < 4096
    image = preview.plan(slide, plan)
    assert levels and set(levels) == {2}, sorted(set(levels))
    _, body = split(image, (1600, 1600))
    assert (body == UNLABELLED).all(axis=2).sum() > 10 * len(plan)
    assert (body == MASK_COLOUR).all(axis=2).any()


def test_a_tiff_pyramid_is_read_at_level_1_when_level_0_is_more_than_twice_the_width(
    square_path, monkeypatch
):
    slide = gigapatch.open(square_path)  # 2048, 512
    levels = _spy_levels(slide, monkeypatch)
    preview.plan(slide, gigapatch.grid(slide, 256), mask="tissue", width=600)
    assert levels and set(levels) == {1}


def test_bad_arguments_are_one_clear_error(slide):
    plan = gigapatch.grid(slide, 256, 512)
    with pytest.raises(InvalidArgumentError, match=r"slide_index must be in the range \[0, 0\]"):
        preview.plan(slide, plan, slide_index=1)
    with pytest.raises(InvalidArgumentError, match="width must be at least 64; got 10"):
        preview.plan(slide, plan, width=10)
    with pytest.raises(InvalidArgumentError, match=r"max_boxes must be an integer; got 1\.5"):
        preview.plan(slide, plan, max_boxes=1.5)
    with pytest.raises(InvalidArgumentError, match="plan must be a PatchPlan; got dict"):
        preview.plan(slide, {"y": [0]})
    with pytest.raises(InvalidArgumentError, match="one slide or the plan's 1 sources; got 2"):
        preview.plan([slide, slide], plan)
