"""``Slide.read_region``: OpenSlide's (x, y) / (width, height) reads, the same pixels."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gigapatch
from gigapatch import testing
from gigapatch.errors import InvalidArgumentError
from gigapatch.sources.openslide import load_openslide

openslide = load_openslide()
needs_openslide = pytest.mark.skipif(openslide is None,
                                     reason="the openslide extra is not installed")

# (x, y, level, width, height): inside, crossing the right/bottom edges, the top-left
# corner, wholly outside; level-1 locations are multiples of its downsample (4)
REGIONS = [
    (10, 20, 0, 50, 40), (2580, 1790, 0, 50, 40), (-5, -7, 0, 20, 30), (3000, 0, 0, 10, 10),
    (12, 20, 1, 50, 40), (600, 472, 1, 60, 50), (-4, -8, 1, 20, 20), (2588, 1788, 1, 30, 30),
    (2400, 1600, 1, 100, 100), (-400, -400, 1, 50, 50),
]


@needs_openslide
@pytest.mark.parametrize("reader", ["tifffile", "openslide"])
@pytest.mark.parametrize("region", REGIONS)
def test_read_region_equals_openslide(slide_path, reader, region):
    x, y, level, width, height = region
    theirs = openslide.OpenSlide(str(slide_path)).read_region((x, y), level, (width, height))
    slide = gigapatch.open(slide_path, reader=reader)
    assert slide.levels[1].downsample == (4.0, 4.0)
    ours = slide.read_region((x, y), level, (width, height))
    assert ours.dtype == np.uint8 and ours.shape == (height, width, 3)
    assert np.array_equal(ours, np.asarray(theirs.convert("RGB")))
    rgba = slide.read_region((x, y), level, (width, height), as_rgba=True)
    assert rgba.shape == (height, width, 4)
    assert np.array_equal(rgba, np.asarray(theirs))  # alpha 255 inside, 0 (and black) outside


@needs_openslide
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_read_region_equals_openslide_anywhere_on_the_pixel_grid(slide_path, data):
    slide = gigapatch.open(slide_path)
    theirs = openslide.OpenSlide(str(slide_path))
    level = data.draw(st.integers(0, 1), label="level")
    d = int(slide.levels[level].downsample[0])
    lh, lw = slide.levels[level].shape
    lx = data.draw(st.integers(-60, lw + 10), label="lx")
    ly = data.draw(st.integers(-60, lh + 10), label="ly")
    w, h = data.draw(st.integers(1, 90), label="w"), data.draw(st.integers(1, 90), label="h")
    want = np.asarray(theirs.read_region((lx * d, ly * d), level, (w, h)))
    got = slide.read_region((lx * d, ly * d), level, (w, h), as_rgba=True)
    assert np.array_equal(got, want)


def test_read_region_is_read_transposed_with_black_outside():
    image = testing.sample_rgb(40, 60, seed=2)
    slide = gigapatch.open(image)
    assert np.array_equal(slide.read_region((5, 7), 0, (20, 10)), slide.read(7, 5, 10, 20))
    edge = slide.read_region((50, -3), 0, (15, 6), as_rgba=True)
    assert np.array_equal(edge[3:, :10, :3], image[:3, 50:])
    assert (edge[:3, :, :3] == 0).all() and (edge[:, 10:, :3] == 0).all()
    assert (edge[3:, :10, 3] == 255).all() and (edge[:3, :, 3] == 0).all()
    assert (edge[:, 10:, 3] == 0).all()
    grey = gigapatch.open(image[..., :1].copy())
    assert np.array_equal(grey.read_region((0, 0), 0, (4, 4)),
                          np.repeat(image[:4, :4, :1], 3, axis=2))


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (((1.5, 0), 0, (4, 4)), r"location must be a pair of integers \(x, y\); got \(1.5, 0\)"),
        (((0, 0, 0), 0, (4, 4)), "location must be a pair of integers"),
        (((0, 0), 0, (0, 4)), r"size must be a pair of positive integers \(width, height\)"),
        (((0, 0), 0, 4), "size must be a pair of positive integers"),
        (((0, 0), 3, (4, 4)), r"level must be in the range \[0, 0\]"),
    ],
)
def test_read_region_errors(args, match):
    slide = gigapatch.open(testing.sample_rgb(8, 8))
    with pytest.raises(InvalidArgumentError, match=match):
        slide.read_region(*args)


def test_read_region_wants_8_bit_rgb_or_grey():
    slide = gigapatch.open(np.zeros((8, 8, 2), np.uint16))
    with pytest.raises(InvalidArgumentError, match=r"read_region gives 8-bit RGB; .* has 2 "
                                                   r"channels of uint16: use slide.read"):
        slide.read_region((0, 0), 0, (4, 4))
