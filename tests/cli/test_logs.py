"""Logs for batch jobs: ``--log FILE``, ``-v``/``-q``, and plain progress lines every N seconds
when stderr is not a terminal."""

import io
import logging
import re

import pytest

import gigapatch
from gigapatch.cli import logs as cli_logs
from gigapatch.cli import main
from gigapatch.cli.logs import ProgressBar

STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_log_file_records_the_run(slide_path, tmp_path, capsys):
    log = tmp_path / "run.log"
    out = tmp_path / "p.zarr"
    code, _, err = run(capsys, "--log", log, "extract", slide_path, "-o", out, "--size", 256,
                       "--shard-size", 16, "--workers", 1)
    assert code == 0
    text = log.read_text()
    assert re.search(rf"^{STAMP} INFO gigapatch.engine.run: extract: 70 patches from 1 slide\(s\)"
                     rf" in 5 shards to {re.escape(str(out))}; 5 shards to do$", text, re.M)
    assert re.search(rf"^{STAMP} INFO gigapatch.progress: extract: 70/70 patches \(100.0 %\), "
                     r"[\d,]+ patches/s, elapsed \d+:\d\d$", text, re.M)
    assert re.search(rf"^{STAMP} INFO gigapatch.engine.run: extract: done, 70 patches in ", text,
                     re.M)
    assert "shard 0 done" not in text  # shard by shard: with -v
    # stderr (not a terminal): the last progress line only (the run took < 30 s), no log lines
    assert err.splitlines() == [line.split(": ", 1)[1] for line in text.splitlines()
                                if "gigapatch.progress" in line]
    log.unlink()
    run(capsys, "extract", slide_path, "-o", out, "--size", 256, "--shard-size", 16,
        "--overwrite", "--log", log, "-v")
    text = log.read_text()
    assert re.search(rf"^{STAMP} DEBUG gigapatch.engine.run: shard \d done: \d+ of 70 patches$",
                     text, re.M)
    assert f"DEBUG gigapatch.engine.run: slide 0: {slide_path}, 70 patches" in text


def test_the_log_file_records_a_failure_with_its_traceback(tmp_path, capsys):
    log = tmp_path / "run.log"
    code, _, err = run(capsys, "info", tmp_path / "missing.svs", "--log", log)
    assert code == 1 and "Traceback" not in err
    text = log.read_text()
    assert re.search(rf"^{STAMP} ERROR gigapatch.cli: gigapatch info: error: "
                     rf"'{re.escape(str(tmp_path))}/missing.svs' does not exist$", text, re.M)
    assert "Traceback (most recent call last)" in text
    assert text.rstrip().endswith("does not exist")


def test_verbosity_on_stderr(slide_path, tmp_path, capsys):
    data = slide_path.read_bytes()
    cut = tmp_path / "cut.svs"
    cut.write_bytes(data[: len(data) // 2])
    code, out, err = run(capsys, "info", cut)  # warnings show by default
    assert code == 0 and out
    assert err == (f"gigapatch: warning: '{cut}' is truncated: 40 of 88 segments of level 0 end "
                   "past the end of the file (509969 bytes); reading them is an error\n")
    assert run(capsys, "info", cut, "-q")[2] == ""  # errors only
    code, _, err = run(capsys, "-v", "extract", slide_path, "-o", tmp_path / "p.zarr", "--size",
                       256, "--workers", 1)
    assert code == 0
    assert "gigapatch: extract: 70 patches from 1 slide(s) in 1 shards" in err
    assert "gigapatch: extract: done, 70 patches" in err
    assert "shard 0 done" not in err
    _, _, err = run(capsys, "extract", slide_path, "-o", tmp_path / "p.zarr", "--size", 256,
                    "--workers", 1, "--overwrite", "-vv")
    assert "gigapatch: debug: shard 0 done: 70 of 70 patches" in err
    _, _, err = run(capsys, "extract", slide_path, "-o", tmp_path / "p.zarr", "--size", 256,
                    "--workers", 1, "--overwrite", "-q")
    assert err == ""  # no progress either


def test_global_flags_go_before_or_after_the_command(slide_path, tmp_path, capsys):
    for argv in (["-q", "--log", tmp_path / "a.log", "info", slide_path],
                 ["info", slide_path, "-q", "--log", tmp_path / "b.log"]):
        code, out, err = run(capsys, *argv)
        assert code == 0 and out and err == ""
    assert (tmp_path / "a.log").exists() and (tmp_path / "b.log").exists()
    code, _, err = run(capsys, "info", slide_path, "--progress-every", "0")
    assert code == 2
    assert err == ("gigapatch info: error: argument --progress-every: expected a number of "
                   "seconds > 0, got '0'\n")


def test_the_library_logs_under_the_gigapatch_logger(slide_path, tmp_path, caplog):
    plan = gigapatch.grid(slide_path, 256)
    with caplog.at_level(logging.DEBUG, logger="gigapatch"):
        gigapatch.extract_to_zarr(slide_path, plan, tmp_path / "p.zarr", workers=1)
    names = {r.name for r in caplog.records}
    assert names == {"gigapatch.engine.run"}
    assert [r.levelname for r in caplog.records].count("INFO") == 2  # start, end


class _Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_plain_progress_lines_every_n_seconds_when_not_a_terminal(monkeypatch, caplog):
    clock = _Clock()
    monkeypatch.setattr(cli_logs.time, "perf_counter", clock)
    stderr = io.StringIO()  # not a terminal
    monkeypatch.setattr("sys.stderr", stderr)
    bar = ProgressBar("extract", every=30, already=100)
    caplog.set_level(logging.INFO, logger="gigapatch.progress")
    for t in range(0, 101, 5):  # a shard every 5 s: 10 patches/s after the 100 already done
        clock.now = float(t)
        bar(100 + 10 * t, 1100)
    lines = stderr.getvalue().splitlines()
    assert lines == [
        "extract: 400/1,100 patches (36.4 %), 10 patches/s, elapsed 0:30, ETA 1:10",
        "extract: 700/1,100 patches (63.6 %), 10 patches/s, elapsed 1:00, ETA 0:40",
        "extract: 1,000/1,100 patches (90.9 %), 10 patches/s, elapsed 1:30, ETA 0:10",
        "extract: 1,100/1,100 patches (100.0 %), 10 patches/s, elapsed 1:40",
    ]
    assert [r.getMessage() for r in caplog.records] == lines  # the same lines go to --log
    quiet = ProgressBar("extract", quiet=True, every=30)
    clock.now = 200.0
    quiet(1, 1)
    assert stderr.getvalue().splitlines() == lines  # quiet: nothing on stderr…
    assert caplog.records[-1].getMessage().startswith("extract: 1/1 patches")  # …the log has it


def test_the_progress_clock_starts_at_a_first_call_that_reports_nothing_done(monkeypatch):
    clock = _Clock()
    monkeypatch.setattr(cli_logs.time, "perf_counter", clock)
    stderr = io.StringIO()
    monkeypatch.setattr("sys.stderr", stderr)
    clock.now = 0.0
    bar = ProgressBar("extract", every=30)  # made before a 60 s synthesis (the demo)
    clock.now = 60.0
    bar(0, 40)  # the extraction starts
    clock.now = 64.0
    bar(40, 40)
    assert stderr.getvalue() == "extract: 40/40 patches (100.0 %), 10 patches/s, elapsed 0:04\n"
    clock.now = 100.0
    late = ProgressBar("extract", every=30)  # no starting call: counts from its making
    clock.now = 104.0
    late(20, 40)
    clock.now = 108.0
    late(40, 40)
    assert stderr.getvalue().splitlines()[-1] == (
        "extract: 40/40 patches (100.0 %), 5 patches/s, elapsed 0:08")


@pytest.mark.parametrize(("seconds", "text"), [(0, "0:00"), (75, "1:15"), (3725, "1:02:05")])
def test_clock(seconds, text):
    assert cli_logs._clock(seconds) == text
