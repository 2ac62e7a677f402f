"""A JPEG store records the PSNR of a sample, and reads back within it."""

from __future__ import annotations

import numpy as np
import pytest

import gigapatch
from gigapatch.errors import InvalidArgumentError, StoreError
from gigapatch.store.quality import psnr_db


@pytest.fixture(scope="module")
def plan_and_patches(square_path):
    plan = gigapatch.grid(square_path, 96, min_tissue=0.5)
    return plan, gigapatch.extract(square_path, plan, workers=1)


@pytest.mark.parametrize(("codec", "quality", "bound"), [("jpeg", 90, 38), ("jpeg:60", 60, 32)])
def test_a_jpeg_store_reads_back_within_its_recorded_psnr(square_path, tmp_path,
                                                          plan_and_patches, codec, quality,
                                                          bound):
    plan, patches = plan_and_patches
    store = gigapatch.extract_to_zarr(square_path, plan, tmp_path / "j.zarr", codec=codec,
                                      shard_size=16, workers=2)
    attrs = store.attrs
    assert attrs["codec"] == f"jpeg:{quality}" and attrs["quality"] == quality
    assert attrs["psnr_sample"] == min(64, len(plan))
    whole = psnr_db(patches, store[:])
    assert attrs["psnr_db"] > bound and whole > bound  # synthetic tissue
    assert abs(whole - attrs["psnr_db"]) < 1.5, (whole, attrs["psnr_db"])


def test_a_lossless_store_records_no_psnr(square_path, tmp_path, plan_and_patches):
    plan, patches = plan_and_patches
    store = gigapatch.extract_to_zarr(square_path, plan, tmp_path / "l.zarr", workers=1)
    assert "psnr_db" not in store.attrs and np.array_equal(store[:], patches)


def test_jpeg_quality_is_part_of_the_request_a_resume_checks(square_path, tmp_path,
                                                             plan_and_patches):
    plan, _ = plan_and_patches
    out = tmp_path / "j.zarr"
    gigapatch.extract_to_zarr(square_path, plan, out, codec="jpeg", shard_size=16, workers=1)
    again = gigapatch.extract_to_zarr(square_path, plan, out, codec="jpeg:90", shard_size=16,
                                      workers=1, resume=True)
    assert again.complete
    with pytest.raises(StoreError, match=r"differs in codec \(jpeg:90 vs jpeg:95\)"):
        gigapatch.extract_to_zarr(square_path, plan, out, codec="jpeg:95", shard_size=16,
                                  workers=1, resume=True)


@pytest.mark.parametrize(("codec", "match"), [
    ("jpeg:abc", r"codec must be one of .*; got 'jpeg:abc'"),
    (3, r"codec must be one of .*; got 3"),
    ("jpeg:source", r"codec 'jpeg:source' stores each source JPEG tile as it is, but the patch "
                    r"size 512x512 is not the 256x256 tiles"),
])
def test_a_bad_codec_is_refused_before_anything_is_written(square_path, tmp_path, codec, match):
    plan = gigapatch.grid(square_path, 512)
    with pytest.raises(InvalidArgumentError, match=match):
        gigapatch.extract_to_zarr(square_path, plan, tmp_path / "x.zarr", codec=codec)
    assert not (tmp_path / "x.zarr").exists()


def test_jpeg_on_16_bit_patches_is_refused(tmp_path):
    image = np.zeros((64, 64, 3), np.uint16)
    with pytest.raises(InvalidArgumentError, match=r"codec 'jpeg:90' needs uint8 patches of 1 "
                       r"or 3 channels; got uint16 patches of 3 channel\(s\)"):
        gigapatch.extract_to_zarr(image, gigapatch.grid(image, 32), tmp_path / "x.zarr",
                                  codec="jpeg")
    assert not (tmp_path / "x.zarr").exists()
