"""Every failure a user can meet ends in one stderr line and a non-zero exit, no traceback
(the traceback only with --debug): a killed worker, a full disk, permission denied, Ctrl-C
and SIGTERM (which say how far the run got and how to finish it), a bug."""

import errno
import os
import re
import signal
import subprocess
import sys
import time

import dask
import pytest

import gigapatch
from gigapatch import testing
from gigapatch.cli import extract as extract_command
from gigapatch.cli import main
from gigapatch.cli.logs import ProgressBar
from gigapatch.engine import run as engine
from gigapatch.store import PatchStore


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str) -> str:
    """The single line of ``err``, after checking there is one and no traceback."""
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_a_killed_worker_names_the_shard_and_the_slide(slide_path, tmp_path, capsys,
                                                       monkeypatch):
    distributed = pytest.importorskip("distributed")
    monkeypatch.setattr(extract_command, "as_slides",
                        lambda found: [testing.dying_slide(s.path) for s in found])
    with (dask.config.set({"distributed.scheduler.allowed-failures": 0}),
          distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                   dashboard_address=":0") as cluster):
        code, _, err = run(capsys, "extract", slide_path, "-o", tmp_path / "p.zarr", "--size",
                           256, "--scheduler", cluster.scheduler_address, "-q")
    assert code == 1
    assert re.fullmatch(
        r"gigapatch extract: error: a worker process died running shard \d+ \(slide odd.svs\) "
        r"\(killed by the system, most often for lack of memory: run with fewer workers "
        r"\(--workers\) or give each more memory\)", one_line(err))


def _write_to_a_full_disk(images, index, data, *, sync=True):
    with open("/dev/full", "wb") as fh:  # the kernel's own ENOSPC
        fh.write(data.tobytes())
        fh.flush()


def test_a_full_disk_names_the_file_and_the_bytes(slide_path, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(engine, "write_shard", _write_to_a_full_disk)
    code, _, err = run(capsys, "extract", slide_path, "-o", tmp_path / "p.zarr", "--size", 256,
                       "--workers", 1, "-q")
    assert code == 1
    assert re.fullmatch(
        r"gigapatch extract: error: no space left on the device writing '.*p.zarr/images/c/\d+"
        r"/0/0/0' \(up to 13.1 MiB for this shard\): free space or write the store elsewhere, "
        r"then run the same command with --resume", one_line(err))


def test_a_full_disk_anywhere_else_names_the_file(slide_path, tmp_path, capsys, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "p.zarr"))

    monkeypatch.setattr(engine, "create_store", full)
    code, _, err = run(capsys, "extract", slide_path, "-o", tmp_path / "p.zarr", "--size", 256)
    assert code == 1
    assert one_line(err) == (f"gigapatch extract: error: no space left on the device writing "
                             f"'{tmp_path / 'p.zarr'}': free space or write elsewhere")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_permission_denied_names_the_path(slide_path, tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    code, _, err = run(capsys, "extract", slide_path, "-o", locked / "p.zarr", "--size", 256)
    assert code == 1
    assert "permission denied: " in one_line(err) and str(locked) in err


def test_permission_denied_from_the_store_names_the_path(slide_path, tmp_path, capsys,
                                                         monkeypatch):
    def denied(path, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))

    monkeypatch.setattr(engine, "create_store", denied)
    code, _, err = run(capsys, "extract", slide_path, "-o", tmp_path / "p.zarr", "--size", 256)
    assert code == 1
    assert one_line(err) == f"gigapatch extract: error: permission denied: " \
                            f"'{tmp_path / 'p.zarr'}'"


def test_a_log_file_that_cannot_be_written_is_one_line(slide_path, tmp_path, capsys):
    code, _, err = run(capsys, "info", slide_path, "--log", tmp_path / "no" / "run.log")
    assert code == 1
    assert one_line(err) == f"gigapatch info: error: {tmp_path / 'no' / 'run.log'}: No such " \
                            "file or directory"


def test_ctrl_c_says_how_far_the_run_got_and_resume_finishes_it(slide_path, tmp_path, capsys,
                                                                monkeypatch):
    out = tmp_path / "p.zarr"
    calls = []
    original = ProgressBar.__call__

    def interrupt_after_three(self, done, total):
        original(self, done, total)
        calls.append(done)
        if len(calls) == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(ProgressBar, "__call__", interrupt_after_three)
    code, _, err = run(capsys, "extract", slide_path, "-o", out, "--size", 128, "--shard-size",
                       16, "--workers", 1, "-q")
    assert code == 130 and calls[-1] == 3 * 16
    # the flags set together with the third shard's (a batch whose files were durable) stay
    done = PatchStore(out).shards_done
    assert done >= 3
    assert one_line(err) == (f"gigapatch extract: interrupted: {done} of 18 shards done; run the "
                             "same command with --resume")
    monkeypatch.setattr(ProgressBar, "__call__", original)
    code, out_text, err = run(capsys, "extract", slide_path, "-o", out, "--size", 128,
                              "--shard-size", 16, "--workers", 1, "--resume", "-q")
    assert code == 0 and err == "" and f"({done * 16} were already done)" in out_text
    assert PatchStore(out).complete and PatchStore(out).verify() == []


def test_ctrl_c_before_the_store_exists(slide_path, tmp_path, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(engine, "create_store", interrupted)
    code, _, err = run(capsys, "extract", slide_path, "-o", tmp_path / "p.zarr", "--size", 256)
    assert code == 130
    assert one_line(err) == f"gigapatch extract: interrupted: nothing was written to " \
                            f"{tmp_path / 'p.zarr'}"


@pytest.fixture(scope="module")
def long_job(tmp_path_factory):
    """A slide whose extraction takes many seconds at 4 patches a shard on one worker."""
    return gigapatch.synthesize(tmp_path_factory.mktemp("long") / "long.svs", 2048, seed=5)


@pytest.mark.parametrize(("sig", "code", "kind"), [(signal.SIGINT, 130, "interrupted"),
                                                   (signal.SIGTERM, 143, "terminated")])
def test_a_real_signal_stops_the_run_with_one_line(long_job, tmp_path, sig, code, kind):
    out = tmp_path / "p.zarr"
    cmd = [sys.executable, "-m", "gigapatch.cli", "extract", str(long_job), "-o", str(out),
           "--size", "32", "--shard-size", "4", "--workers", "1", "--progress-every", "0.05"]
    # SIGINT back to its default in the child: a test run started in the background from a
    # non-interactive shell ignores SIGINT, the child would inherit that, and Python only
    # turns SIGINT into KeyboardInterrupt when it is not ignored at start-up
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    first = proc.stderr.readline()  # the first progress line: shards are being written
    assert first.startswith("extract: "), first
    time.sleep(0.2)
    proc.send_signal(sig)
    _, rest = proc.communicate(timeout=120)
    assert proc.returncode == code, rest
    assert "Traceback" not in rest
    last = rest.strip().splitlines()[-1]
    match = re.fullmatch(rf"gigapatch extract: {kind}: (\d+) of 1024 shards done; run the same "
                         r"command with --resume", last)
    assert match, last
    assert 0 < int(match.group(1)) < 1024
    assert [line for line in rest.splitlines() if not line.startswith("extract: ")] == [last]
    assert PatchStore(out).shards_done == int(match.group(1))


def test_a_bug_is_one_line_and_debug_shows_its_traceback(slide_path, capsys, monkeypatch):
    def bug(*args, **kwargs):
        return 1 / 0

    monkeypatch.setattr(engine, "resolve_device", bug)
    code, _, err = run(capsys, "extract", slide_path, "-o", "x.zarr", "--size", 256)
    assert code == 1
    assert one_line(err) == ("gigapatch extract: error: internal error: ZeroDivisionError: "
                             "division by zero (run the same command with --debug for the "
                             "traceback, and please report it)")
    code, _, err = run(capsys, "--debug", "extract", slide_path, "-o", "x.zarr", "--size", 256)
    assert code == 1
    assert err.startswith("Traceback (most recent call last):")
    assert "1 / 0" in err and err.splitlines()[-1].startswith("gigapatch extract: error: "
                                                              "internal error: ")


def test_debug_shows_the_traceback_of_a_user_error_too(tmp_path, capsys):
    code, _, err = run(capsys, "info", tmp_path / "missing.svs", "--debug")
    assert code == 1
    assert "Traceback" in err and "gigapatch.errors.SlideError" in err
    assert err.splitlines()[-1] == (f"gigapatch info: error: '{tmp_path / 'missing.svs'}' "
                                    "does not exist")
    code, _, err = run(capsys, "info", tmp_path / "missing.svs")
    assert one_line(err) == err.strip() and code == 1


def test_a_corrupt_tile_is_one_line_naming_the_file_and_tile(slide_path, tmp_path, capsys):
    import shutil

    from gigapatch.synth import damage_tile

    path = damage_tile(shutil.copy(slide_path, tmp_path / "bad.svs"), 0, 2, 3, how="flip")
    code, _, err = run(capsys, "extract", path, "-o", tmp_path / "p.zarr", "--size", 256)
    assert code == 1
    assert re.fullmatch(r"gigapatch extract: error: '.*bad.svs': cannot decode level 0 tile "
                        r"\(row 2, column 3\): data at byte \d+: Corrupt JPEG data: \d+ "
                        r"extraneous bytes before marker 0xd9 \(use --on-error skip to leave out "
                        r"what cannot be read\)", one_line(err))
