"""``gigapatch verify``: names damaged shards, exits non-zero; ``--repair`` then ``extract
--resume`` restores the bytes of a clean run; ``--quick`` reads indexes only."""

from __future__ import annotations

import shutil

from gigapatch.synth import synthesize
from tests.cli.test_cli import run


def _files(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != "zarr.json"}


def _flip(path, at):
    raw = bytearray(path.read_bytes())
    raw[at] ^= 0x01
    path.write_bytes(bytes(raw))


def test_verify_repair_resume_restores_a_clean_store(tmp_path, capsys):
    slide = synthesize(tmp_path / "a.svs", (700, 900), seed=4)
    args = ["extract", slide, "-o", tmp_path / "s.zarr", "--size", 64, "--shard-size", 8,
            "--quiet"]
    assert run(capsys, *args)[0] == 0
    clean = _files(tmp_path / "s.zarr")
    code, out, _ = run(capsys, "verify", tmp_path / "s.zarr", "--quiet")
    assert code == 0 and out.endswith("all done, every chunk checked\n")
    out_dir = tmp_path / "s.zarr"
    _flip(out_dir / "images" / "c" / "3" / "0" / "0" / "0", 200)  # inside patch 24's bytes
    (out_dir / "images" / "c" / "5" / "0" / "0" / "0").unlink()
    chunk = out_dir / "coords" / "c" / "0" / "0"
    _flip(chunk, chunk.stat().st_size // 2)

    code, out, err = run(capsys, "verify", out_dir, "--quiet")
    lines = err.splitlines()
    assert code == 1 and "Traceback" not in err
    assert f"{out_dir}: array 'coords', chunk c/0/0 (patches 0-139) is damaged: it fails its " \
           "checksum (CRC32C)" in lines
    assert f"{out_dir}: shard 3 (patches 24-31) is marked done but patch 24 fails its checksum " \
           "(CRC32C)" in lines
    assert f"{out_dir}: shard 5 (patches 40-47) is marked done but its file is missing" in lines
    assert f"{out_dir}: damaged shards: 3 5" in lines
    assert lines[-1].endswith("then the same extract command with --resume")

    code, out, err = run(capsys, "verify", out_dir, "--quick", "--quiet")  # indexes only
    assert code == 1 and "shard 3" not in err and "shard 5 (patches 40-47)" in err

    code, out, err = run(capsys, "verify", out_dir, "--repair", "--quiet")
    assert code == 0
    assert f"{out_dir}: repair: cleared the done flag of shard 3" in out.splitlines()
    assert f"{out_dir}: repair: removed chunk c/0/0 of 'coords' (patches 0-139)" in out

    code, out, _ = run(capsys, *args, "--resume")
    assert code == 0 and "wrote 16 patches" in out  # exactly the two damaged shards
    assert run(capsys, "verify", out_dir, "--quiet")[0] == 0
    assert _files(out_dir) == clean


def test_verify_of_a_copy_with_a_foreign_shard(tmp_path, capsys):
    import gigapatch

    a = synthesize(tmp_path / "a.svs", (500, 500), seed=1)
    b = synthesize(tmp_path / "b.svs", (500, 500), seed=2)
    for name, slide in (("a.zarr", a), ("b.zarr", b)):
        gigapatch.extract_to_zarr(slide, gigapatch.grid(slide, 64), tmp_path / name,
                                  shard_size=8)
    shard = "images/c/1/0/0/0"
    shutil.copyfile(tmp_path / "b.zarr" / shard, tmp_path / "a.zarr" / shard)
    code, _, err = run(capsys, "verify", tmp_path / "a.zarr", "--quick", "--quiet")
    assert code == 1 and "its content is not the one marked done (digest mismatch" in err


def test_malformed_metadata_and_damaged_chunks_are_one_line_for_every_command(tmp_path, capsys):
    slide = synthesize(tmp_path / "a.svs", (500, 500), seed=1)
    out = tmp_path / "s.zarr"
    assert run(capsys, "extract", slide, "-o", out, "--size", 64, "--quiet")[0] == 0
    (out / "label" / "zarr.json").write_text("{not json")
    for command in ("info", "verify", "preview"):
        argv = [command, out] + (["-o", tmp_path / "p.png"] if command == "preview" else [])
        code, _, err = run(capsys, *argv)
        assert code == 1 and "Traceback" not in err and err.count("\n") == 1, command
        assert f"store metadata '{out}/label/zarr.json' is malformed" in err, command
    shutil.rmtree(out)
    assert run(capsys, "extract", slide, "-o", out, "--size", 64, "--quiet")[0] == 0
    _flip(out / "label" / "c" / "0", 12)  # a codec (checksum) error in a store
    code, _, err = run(capsys, "info", out)
    assert code == 1 and "Traceback" not in err and err.count("\n") == 1
    assert "array 'label', chunk c/0 (patches 0-48) is damaged" in err
