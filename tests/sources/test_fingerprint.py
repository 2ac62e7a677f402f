"""The content fingerprint: the same for the same bytes, different for another scan at the same
size and time."""

from __future__ import annotations

import os
import shutil

import numpy as np
import zarr

from gigapatch.sources import fingerprint
from gigapatch.synth import synthesize


def _same_size(a, b):
    """Pad the smaller of two files with zeros after its end (a TIFF ignores them)."""
    size = max(a.stat().st_size, b.stat().st_size)
    for p in (a, b):
        with open(p, "ab") as fh:
            fh.write(bytes(size - p.stat().st_size))


def test_a_tiff_fingerprint_depends_on_content_not_on_name_or_time(tmp_path):
    a = synthesize(tmp_path / "a.svs", (600, 700), seed=1)
    b = synthesize(tmp_path / "b.svs", (600, 700), seed=2)
    _same_size(a, b)
    copy = tmp_path / "copy.svs"
    shutil.copyfile(a, copy)
    os.utime(copy, (0, 0))
    fa = fingerprint(a)
    assert fa.startswith("sha256:") and len(fa) == 7 + 64
    assert fingerprint(copy) == fa
    assert fingerprint(b) != fa and a.stat().st_size == b.stat().st_size


def test_a_rewritten_last_tile_changes_the_fingerprint(tmp_path):
    import tifffile

    a = synthesize(tmp_path / "a.svs", (600, 700), seed=1)
    before = fingerprint(a)
    with tifffile.TiffFile(a) as tif:
        page = tif.pages[0]
        offset, count = page.dataoffsets[-1], page.databytecounts[-1]
    with open(a, "r+b") as fh:  # same size, same byte counts: only a tile's bytes differ
        fh.seek(offset + count // 2)
        byte = fh.read(1)
        fh.seek(offset + count // 2)
        fh.write(bytes([byte[0] ^ 0xFF]))
    assert fingerprint(a) != before


def test_other_files_and_folders(tmp_path):
    raw = tmp_path / "x.bin"
    raw.write_bytes(bytes(3 << 20))
    before = fingerprint(raw)
    with open(raw, "r+b") as fh:
        fh.seek(len(bytes(3 << 20)) - 10)
        fh.write(b"\1")
    assert fingerprint(raw) != before
    z = zarr.create_array(tmp_path / "s.zarr", shape=(64, 64), chunks=(32, 32), dtype="u1")
    z[:] = 1
    before = fingerprint(tmp_path / "s.zarr")
    assert fingerprint(tmp_path / "s.zarr") == before
    z[:] = np.arange(64 * 64).reshape(64, 64) % 251
    assert fingerprint(tmp_path / "s.zarr") != before
