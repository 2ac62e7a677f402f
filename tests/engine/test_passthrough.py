"""Tile pass-through: which requests qualify, and one clear error naming why one does not."""

import os

import imagecodecs
import numpy as np
import pytest
import tifffile
import zarr

import gigapatch
from gigapatch import testing
from gigapatch.engine import estimate
from gigapatch.engine.passthrough import (
    _black_tile,
    check_passthrough,
    passthrough_problem,
    read_tiles,
)
from gigapatch.errors import (
    CorruptTileError,
    InvalidArgumentError,
    PatchFailedError,
    StoreError,
)
from gigapatch.plan import PatchPlan
from gigapatch.store import PatchStore, ShardLayout
from gigapatch.synth import damage_tile, synthesize
from tests.sources.test_jpeg import _tifffile_tiles


@pytest.fixture(scope="module")
def tables_path(tmp_path_factory):
    """A (1800, 2600) two-level slide, 256² abbreviated JPEG tiles with JPEGTables; edge tiles
    on both axes (1800 = 7·256 + 8, 2600 = 10·256 + 40)."""
    return synthesize(tmp_path_factory.mktemp("pass") / "t.svs", (1800, 2600), seed=3,
                      jpeg_tables=True)


def _plan(ys, xs, **kwargs):
    """A plan of 256² patches of one source at level-0 corners (ys, xs)."""
    return PatchPlan(slide=np.zeros(len(ys), np.int32), y=np.asarray(ys, np.int64),
                     x=np.asarray(xs, np.int64), level=0, size=(256, 256), stride=(256, 256),
                     **kwargs)


@pytest.mark.parametrize("which", ["tables", "complete"])
def test_a_tile_grid_at_a_stored_level_qualifies(which, tables_path, slide_path):
    path = {"tables": tables_path, "complete": slide_path}[which]
    slide = gigapatch.open(path)
    for kwargs in [{}, {"stride": 512}, {"level": 1}, {"mpp": 1.0}, {"magnification": 40},
                   {"mask": "tissue", "min_tissue": 0.5}]:
        plan = gigapatch.grid(slide, 256, **kwargs)
        assert len(plan) and passthrough_problem([slide], plan) is None, kwargs
        assert check_passthrough([slide], plan, "jpeg:source")
        assert not check_passthrough([slide], plan, "lz4")  # only jpeg:source passes through


def test_the_tiles_read_are_the_plans_patches_in_order(tables_path):
    slide = gigapatch.open(tables_path)
    plan = gigapatch.grid(slide, 256, 512, mask="tissue", min_tissue=0.2)
    blobs, failures = read_tiles([slide], plan)
    assert failures == [] and len(blobs) == len(plan)
    for blob, y, x in zip(blobs, plan.y, plan.x, strict=True):
        decoded = imagecodecs.jpeg8_decode(blob)
        assert np.array_equal(decoded, slide.read(int(y), int(x), 256, 256))


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda s: gigapatch.grid(s, 256, 128),
         r"patch 1 at level-0 pixel \(y=0, x=128\) of 't.svs' is not on a corner of its "
         r"256x256 tiles \(the stride 128x128 is not a multiple of the tile size\)"),
        (lambda s: gigapatch.grid(s, 256, padding="same"),
         r"patch 0 at level-0 pixel \(y=-\d+, x=-\d+\) of 't.svs' is not on a corner of its "
         r"256x256 tiles \(the grid does not start on a tile corner\)"),
        (lambda s: gigapatch.grid(s, 256, mpp=0.5),
         r"'t.svs' is resampled \(level 0 read 2x larger and averaged down to the requested "
         r"pixel size\): only a level read as it is passes"),
        (lambda s: gigapatch.grid(s, 128),
         r"the patch size 128x128 is not the 256x256 tiles of 't.svs' level 0"),
        (lambda s: gigapatch.grid(s, 256, 512, dilation=2),
         r"the patches are dilated 2x2 \(a transform of the tiles' pixels\)"),
        (lambda s: gigapatch.random(s, 256, 20, seed=1),
         r"the plan is a random plan: patches at random places are not the file's tiles"),
        (lambda s: _plan([1792 - 256, 1792], [0, 0], padding="same"),
         r"patch 1 at level-0 pixel \(y=1792, x=0\) reaches past the edge of 't.svs' level 0 "
         r"\(1800x2600\): a partial edge tile is padded one way in the file and another in "
         r"the patch; use padding='valid'"),
    ],
    ids=["unaligned-stride", "unaligned-start", "resampled", "size", "dilated", "random",
         "edge-tile"],
)
def test_a_request_that_does_not_qualify_is_one_error_naming_why(tables_path, tmp_path, make,
                                                                  match):
    slide = gigapatch.open(tables_path)
    plan = make(slide)
    assert passthrough_problem([slide], plan) is not None
    with pytest.raises(InvalidArgumentError, match="codec 'jpeg:source' stores each source "
                       "JPEG tile as it is, but " + match + "; choose codec 'jpeg' "):
        gigapatch.extract_to_zarr(slide, plan, tmp_path / "p.zarr", codec="jpeg:source")
    assert not (tmp_path / "p.zarr").exists()  # refused before anything is written


def _lzw(path, **kwargs):
    image = testing.sample_rgb(512, 512, seed=1)
    tifffile.imwrite(path, image, tile=(256, 256), photometric="rgb", metadata=None, **kwargs)
    return path


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda d: _lzw(d / "l.tif", compression="lzw"),
         r"'l.tif': level 0 is stored with lzw compression, not JPEG"),
        (lambda d: _lzw(d / "z.tif", compression="zlib"),
         r"'z.tif': level 0 is stored with adobe_deflate compression, not JPEG"),
        (lambda d: testing.write_zarr(d / "a.zarr", testing.sample_rgb(512, 512)),
         r"'a.zarr' is a zarr-v3 source, not a TIFF of JPEG tiles read with tifffile"),
        (lambda d: testing.sample_rgb(512, 512),
         r"'array' is a array source, not a TIFF of JPEG tiles read with tifffile"),
        (lambda d: testing.write_tiff(d / "u.tif", np.zeros((512, 512), np.uint16),
                                      compression="zlib"),
         r"'u.tif' holds uint16 pixels, not uint8"),
    ],
    ids=["lzw", "deflate", "zarr", "array", "uint16"],
)
def test_a_source_without_jpeg_tiles_is_named(tmp_path, make, match):
    source = make(tmp_path)
    plan = gigapatch.grid(source, 256)
    with pytest.raises(InvalidArgumentError, match=match):
        gigapatch.extract_to_zarr(source, plan, tmp_path / "p.zarr", codec="jpeg:source")


def test_the_first_source_that_does_not_qualify_is_named(tables_path, tmp_path):
    other = _lzw(tmp_path / "l.tif", compression="lzw")
    slides = [gigapatch.open(tables_path), gigapatch.open(other)]
    plan = gigapatch.grid(slides, 256)
    assert passthrough_problem(slides[:1], plan.take(plan.slide == 0)) is None
    assert passthrough_problem(slides, plan) == (
        "'l.tif': level 0 is stored with lzw compression, not JPEG")


@pytest.mark.parametrize("channels", [1, 3])
def test_a_black_tile_decodes_to_exact_zeros(channels):
    from gigapatch.sources.jpeg import JpegTiles

    out = np.full((256, 128, channels), 7, np.uint8)
    JpegTiles(None, force_rgb=False, samples=channels).decode(_black_tile(256, 128, channels),
                                                              out=out)
    assert not out.any()


def test_a_cut_tile_stops_the_run_or_is_a_black_tile_reported(tables_path, tmp_path):
    path = tmp_path / "d.svs"
    path.write_bytes(tables_path.read_bytes())
    damage_tile(path, 0, 0, 1, how="truncate")
    slide = gigapatch.open(path)
    plan = gigapatch.grid(slide, 256).rows(0, 3)
    with pytest.raises(CorruptTileError, match=r"\(row 0, column 1\): its JPEG stream has no "
                                               r"end marker"):
        read_tiles([slide], plan)
    blobs, failures = read_tiles([slide], plan, on_error="skip")
    assert [(row, k) for row, k, _ in failures] == [(1, 0)]
    assert "no end marker" in failures[0][2]
    assert blobs[1] == _black_tile(256, 256, 3)
    assert not imagecodecs.jpeg8_decode(blobs[1]).any()
    assert np.array_equal(imagecodecs.jpeg8_decode(blobs[2]), slide.read(0, 512, 256, 256))


# --------------------------------------------------------------------------- stores


def _chunks(path):
    """Every chunk of a store's images as stored, without its CRC32C."""
    layout = ShardLayout.of(zarr.open_group(path, mode="r")["images"])
    chunks = []
    for shard in range(layout.n_shards):
        fd, table = layout.open_shard(shard)
        try:
            for offset, nbytes in table[: len(layout.patches(shard))].tolist():
                chunks.append(os.pread(fd, nbytes - 4, offset))  # without the CRC32C
        finally:
            os.close(fd)
    return chunks


@pytest.mark.parametrize("which", ["tables", "complete", "rgb", "grey"])
def test_chunks_are_the_source_tiles_and_decode_to_them_bit_for_bit(which, tables_path,
                                                                     slide_path, tmp_path):
    image = testing.sample_rgb(700, 900, seed=7)
    path = {"tables": lambda: tables_path, "complete": lambda: slide_path,
            "rgb": lambda: testing.write_abbreviated_jpeg(tmp_path / "r.tif", image, tile=256),
            "grey": lambda: testing.write_abbreviated_jpeg(tmp_path / "g.tif", image[..., 0],
                                                           tile=256)}[which]()
    slide = gigapatch.open(path)
    plan = gigapatch.grid(slide, 256)
    out = tmp_path / "p.zarr"
    store = gigapatch.extract_to_zarr(slide, plan, out, codec="jpeg:source", shard_size=4)
    assert store.complete and store.verify() == [] and len(store) == len(plan)
    tiles, _ = _tifffile_tiles(path)  # tifffile's decode of every tile of level 0
    across = -(-slide.shape[1] // 256)
    index = (plan.y // 256) * across + plan.x // 256
    expected = tiles[index]
    assert np.array_equal(store[:].reshape(expected.shape), expected)
    images = zarr.open_group(out, mode="r")["images"]  # zarr alone, once gigapatch is imported
    assert np.array_equal(images[:].reshape(expected.shape), expected)
    # copied, not re-encoded: each chunk is the tile's standalone stream
    assert _chunks(out) == slide.jpeg_tiles(0, index.tolist())


def test_only_the_plans_tissue_tiles_are_stored(tables_path, tmp_path):
    plan = gigapatch.grid(tables_path, 256, mask="tissue", min_tissue=0.5)
    everything = gigapatch.grid(tables_path, 256)
    assert 0 < len(plan) < len(everything)
    store = gigapatch.extract_to_zarr(tables_path, plan, tmp_path / "p.zarr",
                                      codec="jpeg:source", shard_size=8, workers=2)
    gigapatch.extract_to_zarr(tables_path, plan, tmp_path / "q.zarr", codec="jpeg:source",
                              shard_size=8, workers=2, scheduler="processes")
    assert _chunks(tmp_path / "q.zarr") == _chunks(tmp_path / "p.zarr")
    assert np.array_equal(store.coords, np.stack([plan.y, plan.x], axis=1))
    assert np.allclose(store.tissue, plan.tissue)
    reference = gigapatch.extract(tables_path, plan)  # the decoding path: the same pixels
    assert np.array_equal(store[:], reference)
    attrs = PatchStore(tmp_path / "p.zarr").attrs
    assert attrs["codec"] == "jpeg:source" and attrs["quality"] == "source"
    assert attrs["psnr_db"] is None and attrs["psnr_sample"] > 0  # a sample read back exact


def test_verify_finds_a_damaged_shard_and_resume_rewrites_the_same_bytes(tables_path, tmp_path):
    plan = gigapatch.grid(tables_path, 256, level=0)
    out = tmp_path / "p.zarr"
    gigapatch.extract_to_zarr(tables_path, plan, out, codec="jpeg:source", shard_size=8)
    before = _chunks(out)
    shard = out / "images" / "c" / "2" / "0" / "0" / "0"
    good = shard.read_bytes()
    shard.write_bytes(good[:100])  # cut short
    assert any("shard 2" in p and "truncated" in p for p in PatchStore(out).verify())
    (out / "images" / "c" / "5" / "0" / "0" / "0").unlink()
    store = gigapatch.extract_to_zarr(tables_path, plan, out, codec="jpeg:source",
                                      shard_size=8, resume=True)
    assert store.verify() == [] and _chunks(out) == before and shard.read_bytes() == good
    with pytest.raises(StoreError, match=r"differs in codec \(jpeg:source vs jpeg:90\)"):
        gigapatch.extract_to_zarr(tables_path, plan, out, codec="jpeg:90", shard_size=8,
                                  resume=True)


def test_a_cut_tile_fails_its_patch_only_with_skip(tables_path, tmp_path):
    path = tmp_path / "d.svs"
    path.write_bytes(tables_path.read_bytes())
    damage_tile(path, 0, 1, 2, how="truncate")
    plan = gigapatch.grid(path, 256)
    with pytest.raises(CorruptTileError, match=r"\(row 1, column 2\)"):
        gigapatch.extract_to_zarr(path, plan, tmp_path / "a.zarr", codec="jpeg:source")
    store = gigapatch.extract_to_zarr(path, plan, tmp_path / "b.zarr", codec="jpeg:source",
                                      on_error="skip")
    bad = int(np.flatnonzero((plan.y == 256) & (plan.x == 512))[0])
    assert store.failed_count == 1 and store.status[bad] == 1
    assert store.verify() == []
    with pytest.raises(PatchFailedError, match="its JPEG stream has no end marker"):
        store[bad]
    assert not zarr.open_group(tmp_path / "b.zarr", mode="r")["images"][bad].any()  # black
    assert np.array_equal(store[bad + 1], gigapatch.open(path).read(256, 768, 256, 256))


def test_the_command_line_copies_tiles_and_names_why_it_cannot(tables_path, tmp_path, capsys):
    from gigapatch.cli import main

    out = tmp_path / "p.zarr"
    args = ["extract", str(tables_path), "-o", str(out), "--size", "256", "--codec",
            "jpeg:source", "--quiet"]
    assert main(args) == 0
    assert main(["info", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "the source's own JPEG tiles, copied; identical to the uncompressed patches" in printed
    assert main(["verify", str(out)]) == 0
    capsys.readouterr()
    assert main([*args[:-1], "--stride", "200", "--overwrite", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not on a corner of its 256x256 tiles (the stride 200x200" in err[0]


def test_the_dry_run_size_of_a_pass_through_store_is_its_tiles_sizes(tables_path, tmp_path):
    plan = gigapatch.grid(tables_path, 256, mask="tissue", min_tissue=0.2)
    est = estimate(tables_path, plan, codec="jpeg:source", shard_size=8,
                             sample=len(plan))  # every patch sampled: exact
    assert est.tile_decodes == 0  # nothing is decoded
    gigapatch.extract_to_zarr(tables_path, plan, tmp_path / "p.zarr", codec="jpeg:source",
                              shard_size=8)
    shards = (tmp_path / "p.zarr" / "images" / "c").rglob("*")
    assert est.image_bytes == sum(p.stat().st_size for p in shards if p.is_file())
    with pytest.raises(InvalidArgumentError, match=r"jpeg:source.*random plan"):
        estimate(tables_path, gigapatch.random(tables_path, 256, 5, seed=0),
                           codec="jpeg:source")
