"""A corrupt tile stops extraction with an error naming the file and the tile, never a patch."""

import shutil

import numpy as np
import pytest

import gigapatch
from gigapatch.errors import CorruptTileError
from gigapatch.store import PatchStore
from gigapatch.synth import damage_tile


@pytest.fixture(scope="module")
def damaged(slide_path, tmp_path_factory):
    """slide_path with level-0 tile (row 1, column 2) damaged so that libjpeg only warns."""
    path = tmp_path_factory.mktemp("engine-damage") / "warn.svs"
    shutil.copy(slide_path, path)
    return damage_tile(path, 0, 1, 2, how="entropy")


MESSAGE = (r"warn.svs': cannot decode level 0 tile \(row 1, column 2\): .*premature end of data "
           r"segment")


@pytest.mark.parametrize("kwargs", [{"workers": 2}, {"scheduler": "processes", "workers": 2},
                                    {"scheduler": "synchronous"}])
def test_extract_raises_naming_the_file_and_tile(damaged, kwargs):
    plan = gigapatch.grid(damaged, 256)
    with pytest.raises(CorruptTileError, match=MESSAGE) as info:
        gigapatch.extract(damaged, plan, block_size=8, **kwargs)
    assert (info.value.row, info.value.column) == (1, 2)


def test_extract_to_zarr_raises_and_never_marks_the_shard_done(damaged, tmp_path):
    plan = gigapatch.grid(damaged, 200, 180)
    with pytest.raises(CorruptTileError, match=MESSAGE):
        gigapatch.extract_to_zarr(damaged, plan, tmp_path / "p.zarr", shard_size=4, workers=1)
    # shards whose patches need the bad tile are not marked done; a resume redoes them
    store = PatchStore(tmp_path / "p.zarr")
    assert not store.complete
    y, x = plan.y, plan.x
    needs = (y < 512) & (y + 200 > 256) & (x < 768) & (x + 200 > 512)
    assert needs.any()
    assert not store.done[np.flatnonzero(needs) // 4].any()


def test_resampled_patches_need_the_tile_too(damaged):
    plan = gigapatch.grid(damaged, 128, mpp=0.5)  # 2x from level 0
    with pytest.raises(CorruptTileError, match=MESSAGE):
        gigapatch.extract(damaged, plan, workers=1)
