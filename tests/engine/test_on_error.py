"""``on_error="skip"``: slides that cannot be opened are left out, a tile that does not decode
fails only the patches that need it; ``"stop"`` ends the run at the first, and a resume with
``skip`` finishes it."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import zarr

import gigapatch
from gigapatch.cli import main
from gigapatch.errors import CorruptTileError, InvalidArgumentError, PatchFailedError
from gigapatch.feed.batches import iter_batches
from gigapatch.feed.source import FeedSource
from gigapatch.feed.torch import PatchDataset
from gigapatch.plan.labels import find_slides
from gigapatch.store import PatchStore, summarize, verify_store
from gigapatch.store.flags import set_flag
from gigapatch.synth import damage_tile, synthesize

SIZE = 128  # patch side = tile side: each patch needs exactly one level-0 tile
BAD = {"garbage.tif", "truncated.tif", "corrupt.tif", "empty.tif"}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """20 small slides; 4 broken: not a TIFF, truncated, a corrupt tile, zero bytes."""
    root = tmp_path_factory.mktemp("on-error")
    for k in range(16):
        synthesize(root / f"s{k:02d}.tif", (600, 700), tile=SIZE, seed=k, workers=1)
    (root / "garbage.tif").write_bytes(b"this is not a slide\n" * 50)
    synthesize(root / "truncated.tif", (600, 700), tile=SIZE, seed=100, workers=1)
    data = (root / "truncated.tif").read_bytes()
    (root / "truncated.tif").write_bytes(data[: len(data) // 3])
    synthesize(root / "corrupt.tif", (600, 700), tile=SIZE, seed=101, workers=1)
    damage_tile(root / "corrupt.tif", 0, 1, 2, how="entropy")
    (root / "empty.tif").write_bytes(b"")
    return root


def _good_paths(folder: Path) -> list[str]:
    return sorted(str(p) for p in folder.glob("s*.tif"))


def _patches_needing(plan, k: int, row: int, column: int) -> np.ndarray:
    mine = plan.slide == k
    return mine & (plan.y // SIZE == row) & (plan.x // SIZE == column)


def test_skip_leaves_out_bad_slides_and_the_patches_of_a_bad_tile(folder, tmp_path):
    slides = find_slides(str(folder)).open(on_error="skip")
    assert {Path(s["path"]).name for s in slides.skipped} >= {"garbage.tif", "empty.tif"}
    plan = gigapatch.grid(slides, SIZE, on_error="skip")
    out = tmp_path / "p.zarr"
    store = gigapatch.extract_to_zarr(slides, plan, out, shard_size=16, workers=2,
                                      on_error="skip")
    names = [s.name for s in slides]
    k = names.index("corrupt.tif")
    bad = _patches_needing(plan, k, 1, 2)
    if "truncated.tif" in names:  # opened (its tables survive): its lost tiles fail instead
        bad |= np.isin(plan.slide, [names.index("truncated.tif")]) & (store.status != 0)
    assert _patches_needing(plan, k, 1, 2).sum() == 1
    assert np.array_equal(np.flatnonzero(store.status), np.flatnonzero(bad))
    found = verify_store(store)
    assert found.ok, found.problems
    assert found.failed == int(bad.sum())
    # every readable patch is the one an in-memory extract of the good slides gives
    good = gigapatch.grid(_good_paths(folder), SIZE)
    expected = gigapatch.extract(_good_paths(folder), good, workers=1)
    ok_rows = store.select().indices
    good_slides = np.isin(plan.slide, [names.index(Path(p).name) for p in _good_paths(folder)])
    assert np.array_equal(store[np.flatnonzero(good_slides)], expected)
    assert set(ok_rows) == set(np.flatnonzero(~bad))
    corrupt_ok = np.flatnonzero((plan.slide == k) & ~bad)
    assert np.array_equal(store[corrupt_ok], gigapatch.extract(
        slides, plan.take(corrupt_ok), workers=1))
    with pytest.raises(PatchFailedError, match=rf"patch {np.flatnonzero(bad)[0]} failed to "
                                               r"extract: .*corrupt.tif.*row 1, column 2"):
        store[int(np.flatnonzero(bad)[0])]
    # every feed leaves the failed patches out
    seen = np.concatenate([idx for _, _, idx in iter_batches(store, 64)])
    assert set(seen.tolist()) == set(ok_rows.tolist())
    assert np.array_equal(FeedSource(store).indices, ok_rows)
    everything = store.select(include_failed=True)
    assert len(everything) == len(store)
    assert np.array_equal(FeedSource(everything).indices, ok_rows)
    assert len(PatchDataset(store)) == len(ok_rows)
    report = json.loads((out / "report.json").read_text())
    listed = {Path(s["path"]).name for s in report["skipped_slides"]}
    listed |= {s["name"] for s in report["failed_slides"]}
    assert listed == BAD
    assert report["failed"] == int(bad.sum())
    info = dict(summarize(store))
    assert "garbage.tif" in info["skipped"] and "empty.tif" in info["skipped"]
    assert "corrupt.tif" in info["failed"]


def test_stop_raises_at_a_bad_tile_and_resume_with_skip_finishes(folder, tmp_path):
    paths = [*_good_paths(folder)[:3], str(folder / "corrupt.tif")]
    plan = gigapatch.grid(paths, SIZE)
    out = tmp_path / "p.zarr"
    with pytest.raises(CorruptTileError, match=r"corrupt.tif.*row 1, column 2"):
        gigapatch.extract_to_zarr(paths, plan, out, shard_size=8, workers=1)
    before = PatchStore(out).shards_done
    assert before < PatchStore(out).n_shards
    store = gigapatch.extract_to_zarr(paths, plan, out, shard_size=8, workers=1,
                                      resume=True, on_error="skip")
    assert store.complete and store.failed_count == 1
    assert verify_store(store).ok
    # a resume that redoes the failed patch's shard resets its status first
    shard = int(np.flatnonzero(store.status)[0]) // 8
    set_flag(zarr.open_group(out, mode="r+"), shard, 0)
    again = gigapatch.extract_to_zarr(paths, plan, out, shard_size=8, workers=1,
                                      resume=True, on_error="skip")
    assert again.failed_count == 1 and again.complete


def test_on_error_is_checked(folder, tmp_path):
    path = str(folder / "s00.tif")
    message = "on_error must be one of 'stop', 'skip'; got 'ignore'"
    with pytest.raises(InvalidArgumentError, match=message):
        find_slides(path).open(on_error="ignore")
    with pytest.raises(InvalidArgumentError, match=message):
        gigapatch.grid(path, SIZE, on_error="ignore")
    with pytest.raises(InvalidArgumentError, match=message):
        gigapatch.random(path, SIZE, 3, 0, on_error="ignore")
    with pytest.raises(InvalidArgumentError, match=message):
        gigapatch.extract_to_zarr(path, gigapatch.grid(path, SIZE), tmp_path / "x.zarr",
                                  on_error="ignore")
    assert not (tmp_path / "x.zarr").exists()


def test_stop_names_the_file_when_opening(folder):
    with pytest.raises(gigapatch.errors.SlideError, match=r"empty\.tif"):
        find_slides([str(folder / "s00.tif"), str(folder / "empty.tif")]).open()


def _cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_stop_then_resume_with_skip(folder, tmp_path, capsys):
    out = tmp_path / "cli.zarr"
    code, _, err = _cli(capsys, "extract", folder, "-o", out, "--size", SIZE, "-q")
    assert code == 1 and "Traceback" not in err
    line, = err.splitlines()
    assert line.startswith("gigapatch extract: error: ")
    assert "(use --on-error skip to leave out what cannot be read)" in line
    assert any(name in line for name in BAD)
    code, stdout, err = _cli(capsys, "extract", folder, "-o", out, "--size", SIZE, "-q",
                             "--resume", "--on-error", "skip", "--workers", "2")
    assert code == 0, err
    assert "left out: " in stdout and "report.json" in stdout
    code, stdout, _ = _cli(capsys, "verify", out)
    assert code == 0 and "failed to extract" in stdout
    code, stdout, _ = _cli(capsys, "info", out)
    assert code == 0
    for name in BAD - {"truncated.tif"}:
        assert name in stdout
    assert os.path.exists(out / "report.json")


def test_a_damaged_status_chunk_is_repaired_by_redoing_its_shards(folder, tmp_path):
    paths = [*_good_paths(folder)[:2], str(folder / "corrupt.tif")]
    plan = gigapatch.grid(paths, SIZE)
    out = tmp_path / "p.zarr"
    first = gigapatch.extract_to_zarr(paths, plan, out, shard_size=8, workers=1,
                                      on_error="skip")
    failed = first.status.copy()
    chunk = out / "status" / "c" / "0"
    chunk.write_bytes(chunk.read_bytes()[:-1] + b"\x00")  # a flipped checksum byte
    store = PatchStore(out)
    found = verify_store(store)
    assert not found.ok and "status" in found.problems[0]
    gigapatch.store.repair_store(store, found)
    again = gigapatch.extract_to_zarr(paths, plan, out, shard_size=8, workers=1,
                                      on_error="skip", resume=True)
    assert np.array_equal(again.status, failed) and verify_store(again).ok
