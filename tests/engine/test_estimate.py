"""Estimates of a plan's store: the per-slide table, the size against a real store, the tiles."""

import dataclasses
import os

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import gigapatch
from gigapatch.engine import Estimate, estimate
from gigapatch.engine.estimate import sample_rows
from gigapatch.engine.sizing import encoder, shard_index_bytes
from gigapatch.engine.tiles import decode_tiles, tile_decodes, touched_tiles
from gigapatch.errors import InvalidArgumentError
from gigapatch.plan import PatchPlan
from gigapatch.plan.labels import find_slides
from gigapatch.sources import describe_file
from gigapatch.store import CODECS
from gigapatch.synth import synthesize


def _files(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize("codec", ["lz4", "zstd", "none", "jpeg:90"])
def test_the_estimated_size_is_within_30_percent_of_the_real_store(square_path, tmp_path, codec):
    plan = gigapatch.grid(square_path, 64, min_tissue=0.2)  # several hundred patches, 64 sampled
    assert len(plan) > 4 * 64
    est = estimate(square_path, plan, codec=codec, workers=2, shard_size=64)
    assert est.sample == 64 and est.patches == len(plan)
    store = gigapatch.extract_to_zarr(square_path, plan, tmp_path / "p.zarr", codec=codec,
                                      shard_size=64, workers=2)
    real = describe_file(store.path)["size"]
    assert abs(est.bytes - real) <= 0.3 * real, (est.bytes, real)
    if codec == "none":  # nothing to guess: every patch takes its pixels' bytes
        assert abs(est.bytes - real) <= 0.01 * real
    assert est.pixel_bytes == len(plan) * 64 * 64 * 3
    assert est.seconds > 0 and est.tile_decodes > 0


def test_a_resampled_random_plan_too(square_path, tmp_path):
    plan = gigapatch.random(square_path, 32, 400, seed=2, mpp=0.5)
    est = estimate(square_path, plan, codec="zstd", workers=1, shard_size=100)
    store = gigapatch.extract_to_zarr(square_path, plan, tmp_path / "p.zarr", codec="zstd",
                                      shard_size=100, workers=1)
    real = describe_file(store.path)["size"]
    assert abs(est.bytes - real) <= 0.3 * real, (est.bytes, real)
    (row,) = est.slides
    assert (row.level, row.factor, row.level_mpp, row.patch_mpp) == (0, 2.0, 0.25, 0.5)


def test_the_table_matches_the_plan(tmp_path):
    for name, seed in (("tumour", 1), ("normal", 2)):
        (tmp_path / name).mkdir()
        synthesize(tmp_path / name / f"{name}.svs", 1024, seed=seed)
    found = find_slides(tmp_path, labels_from_dirs=True)
    plan = gigapatch.grid(found, 128, min_tissue=0.3, level=0)
    est = estimate(found, plan, workers=1, sample=8)
    counts = np.bincount(plan.slide, minlength=2)
    assert [r.name for r in est.slides] == ["normal.svs", "tumour.svs"]
    assert [r.patches for r in est.slides] == counts.tolist()
    assert [r.label for r in est.slides] == ["normal", "tumour"]
    assert est.per_class == {"normal": int(counts[0]), "tumour": int(counts[1])}
    assert all(r.level == 0 and r.factor == 1.0 and r.level_mpp == 0.25 for r in est.slides)
    for row, slide in zip(est.slides, gigapatch.plan.as_slides(found), strict=True):
        mask = gigapatch.plan.masks.tissue_mask(slide)
        assert row.tissue == pytest.approx(mask.mean())
        assert 0.05 < row.tissue < 0.95
    assert est.patches == len(plan) and est.patch_shape == (128, 128, 3)
    assert est.dtype == "uint8" and est.sample == 8


def test_no_mask_no_labels_no_tissue_column(square_path):
    plan = gigapatch.grid(square_path, 256, level=1)
    est = estimate(square_path, plan, workers=1, sample=4)
    (row,) = est.slides
    assert row.tissue is None and row.label is None and est.per_class == {}
    assert (row.level, row.level_mpp, row.patch_mpp, row.patches) == (1, 1.0, 1.0, 4)


def test_an_estimate_writes_nothing(square_path, tmp_path):
    (tmp_path / "keep.txt").write_text("keep")
    before = _files(tmp_path)
    plan = gigapatch.grid(square_path, 128)
    est = estimate(square_path, plan, out=tmp_path / "sub" / "out.zarr", workers=1, sample=8)
    assert est.writing and est.details["write_seconds_per_byte"] > 0
    assert _files(tmp_path) == before
    assert not estimate(square_path, plan, workers=1, sample=8).writing


def test_an_empty_plan_estimates_nothing(square_path):
    empty = np.empty(0, np.int64)
    plan = PatchPlan(empty.astype(np.int32), empty, empty, level=0, size=(64, 64),
                     stride=(64, 64))
    est = estimate(square_path, plan)
    assert isinstance(est, Estimate)
    assert (est.patches, est.bytes, est.seconds, est.sample) == (0, 0, 0.0, 0)
    assert est.slides[0].patches == 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"codec": "jpeg:0"}, r"codec must be one of lz4, zstd, zstd-3, none, jpeg, jpeg:QUALITY "
                              r"\(QUALITY an integer from 1 to 100.*; got 'jpeg:0'"),
        ({"codec": "gzip"}, r"codec must be one of .* or jpeg:source; got 'gzip'"),
        ({"sample": 0}, "sample must be at least 1; got 0"),
        ({"shard_size": 0}, "shard_size must be at least 1; got 0"),
        ({"workers": 0}, "workers must be a positive integer; got 0"),
    ],
)
def test_bad_arguments(square_path, kwargs, match):
    plan = gigapatch.grid(square_path, 512)
    with pytest.raises(InvalidArgumentError, match=match):
        estimate(square_path, plan, **kwargs)


def test_a_plan_for_other_sources_is_refused(square_path):
    plan = gigapatch.grid([square_path, square_path], 512)
    with pytest.raises(InvalidArgumentError, match="plan refers to slide 1 but 1 sources"):
        estimate(square_path, plan)


def _plan_of(slides):
    slide = np.asarray(slides, np.int32)
    zeros = np.zeros(len(slide), np.int64)
    return PatchPlan(slide, zeros, zeros, level=0, size=(1, 1), stride=(1, 1))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 40), min_size=1, max_size=8), st.integers(1, 100),
       st.integers(0, 2**32 - 1))
@example([1, 1, 1, 9], 4, 0)  # one slide holds most patches, each other gets its one draw
def test_a_sample_is_spread_over_the_slides(counts, sample, seed):
    plan = _plan_of(np.repeat(np.arange(len(counts)), counts))
    rows = sample_rows(plan, sample, seed)
    n = len(plan)
    assert len(rows) == min(sample, n)
    assert np.array_equal(rows, np.unique(rows)) and rows.min() >= 0 and rows.max() < n
    got = np.bincount(plan.slide[rows], minlength=len(counts))
    if sample < n and len(counts) <= sample:
        assert (got >= 1).all()  # every slide is sampled
        expected = sample * np.asarray(counts) / n
        # in proportion, but for the draws the small slides' guaranteed one each moves away
        slack = 2 + np.count_nonzero(expected < 1)
        assert (np.abs(got - expected) < slack).all()
    assert np.array_equal(rows, sample_rows(plan, sample, seed))  # seeded


def test_tile_decodes_count_each_tile_once_per_shard(square_path):
    slide = gigapatch.open(square_path)
    aligned = gigapatch.grid(slide, 256)  # one tile per patch
    assert tile_decodes([slide], aligned) == len(aligned) == 64
    inside = (aligned.y < 1792) & (aligned.x < 1792)  # shifted, they still fit the slide
    shifted = dataclasses.replace(aligned, y=aligned.y[inside] + 100, x=aligned.x[inside] + 100,
                                  slide=aligned.slide[inside])
    for shard in (1, 7, 64):
        expected = sum(
            len(touched_tiles(slide, 0, shifted.y[a : a + shard], shifted.x[a : a + shard],
                              (256, 256)))
            for a in range(0, len(shifted), shard)
        )
        assert tile_decodes([slide], shifted, shard_size=shard) == expected
    assert tile_decodes([slide], shifted, shard_size=1) == 4 * len(shifted) == 4 * 49
    assert tile_decodes([slide], shifted, shard_size=49) == 64  # all at once: each tile once


def test_touched_tiles_of_a_region(square_path):
    slide = gigapatch.open(square_path)  # 2048², 256² tiles: 8 across
    assert touched_tiles(slide, 0, [0], [0], (256, 256)).tolist() == [0]
    assert touched_tiles(slide, 0, [255], [255], (2, 2)).tolist() == [0, 1, 8, 9]
    assert touched_tiles(slide, 0, [-10], [2040], (20, 20)).tolist() == [7]  # outside: none
    assert touched_tiles(slide, 1, [0], [0], (512, 512)).tolist() == [0, 1, 2, 3]


def test_decode_tiles_reads_each_tile_once_whole(tmp_path, monkeypatch):
    slide = gigapatch.open(synthesize(tmp_path / "odd.svs", (600, 700), seed=0))  # edge tiles
    seen = []

    def record(ys, xs, h, w, level, out):
        seen.extend((int(y), int(x), h, w) for y, x in zip(ys, xs, strict=True))
        assert out.shape == (len(ys), h, w, 3)
        return out

    monkeypatch.setattr(slide, "read_regions", record)
    tiles = touched_tiles(slide, 0, [0], [0], (600, 700))
    decode_tiles(slide, 0, tiles, workers=2)
    across = 3
    expected = {(t // across * 256, t % across * 256, min(256, 600 - t // across * 256),
                 min(256, 700 - t % across * 256)) for t in tiles.tolist()}
    assert len(seen) == len(tiles) == 9 and set(seen) == expected


@pytest.mark.parametrize("codec", [*CODECS, "jpeg:90", "jpeg:60"])
def test_a_patch_encodes_as_zarr_stores_it(tmp_path, codec):
    import zarr

    from gigapatch.store.codecs import codec_chain, parse_codec

    patch = np.random.default_rng(0).integers(0, 60, (32, 32, 3), dtype=np.uint8)
    serializer, compressors = codec_chain(parse_codec(codec))
    arr = zarr.create_array(tmp_path / "a.zarr", shape=(1, 32, 32, 3), chunks=(1, 32, 32, 3),
                            dtype=np.uint8, serializer=serializer, compressors=compressors)
    arr[0] = patch
    chunk = next(p for p in (tmp_path / "a.zarr").rglob("*") if p.is_file()
                 and p.name != "zarr.json")
    assert len(encoder(codec, np.uint8)(patch)) == os.path.getsize(chunk)
    assert shard_index_bytes(300, 256) == 2 * (16 * 256 + 4)


def test_a_jpeg_estimate_is_far_smaller_than_a_lossless_one(square_path):
    plan = gigapatch.grid(square_path, 128, min_tissue=0.2)
    lz4, jpeg = (estimate(square_path, plan, codec=c, workers=1, sample=16)
                 for c in ("lz4", "jpeg"))
    assert jpeg.codec == "jpeg:90" and lz4.codec == "lz4"
    assert jpeg.image_bytes * 5 < lz4.image_bytes, (jpeg.image_bytes, lz4.image_bytes)
    # jpeg:source is the tiles' own size (tests/engine/test_passthrough.py), for plans that
    # pass through only: 128² patches of 256² tiles do not
    with pytest.raises(InvalidArgumentError, match="patch size 128x128 is not the 256x256"):
        estimate(square_path, plan, codec="jpeg:source", workers=1, sample=16)


def test_a_jpeg_estimate_of_patches_jpeg_cannot_hold_is_refused(tmp_path):
    image = np.zeros((64, 64, 3), np.uint16)
    with pytest.raises(InvalidArgumentError, match="codec 'jpeg:80' needs uint8 patches of 1 or "
                       r"3 channels; got uint16 patches of 3 channel\(s\)"):
        estimate(image, gigapatch.grid(image, 32), codec="jpeg:80")
