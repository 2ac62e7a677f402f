"""What the commands share: argument types, the one-line parser, the progress bar, exit codes."""

import argparse
import errno
import io
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gigapatch.cli import COMMANDS, build_parser
from gigapatch.cli.common import (
    Parser,
    ProgressBar,
    fraction,
    natural_int,
    positive_float,
    positive_int,
    run_reporting_errors,
)
from gigapatch.cli.reporting import Interrupted, Terminated
from gigapatch.errors import InvalidArgumentError, StoreError, WorkerError


@given(st.integers(-10**6, 10**6))
def test_integer_types_take_exactly_their_range(value):
    for parse, ok, expected in ((positive_int, value > 0, "a positive integer"),
                                (natural_int, value >= 0, "an integer >= 0")):
        if ok:
            assert parse(str(value)) == value
        else:
            with pytest.raises(argparse.ArgumentTypeError,
                               match=rf"^expected {expected}, got '{value}'$"):
                parse(str(value))


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_float_types_take_exactly_their_range(value):
    for parse, ok, expected in ((fraction, 0 <= value <= 1, r"a number in \[0, 1\]"),
                                (positive_float, 0 < value < math.inf, "a positive number")):
        if ok:
            assert parse(repr(value)) == value
        else:
            with pytest.raises(argparse.ArgumentTypeError, match=rf"^expected {expected}, got"):
                parse(repr(value))


@pytest.mark.parametrize("parse", [positive_int, natural_int, fraction, positive_float])
@pytest.mark.parametrize("text", ["", "abc", "1e", "0x10"])
def test_types_refuse_what_is_no_number(parse, text):
    with pytest.raises(argparse.ArgumentTypeError, match=f"got {text!r}$"):
        parse(text)


def test_integer_types_refuse_fractions():
    with pytest.raises(argparse.ArgumentTypeError, match=r"got '2\.5'"):
        positive_int("2.5")
    assert math.isclose(positive_float("2.5"), 2.5)


def test_the_parser_errs_in_one_line_with_exit_2(capsys):
    parser = Parser(prog="gigapatch thing")
    parser.add_argument("--n", type=positive_int)
    with pytest.raises(SystemExit) as exc:
        parser.parse_args(["--n", "0"])
    assert exc.value.code == 2
    assert capsys.readouterr().err == (
        "gigapatch thing: error: argument --n: expected a positive integer, got '0'\n"
    )


def test_every_command_is_registered_in_order():
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert list(sub.choices) == ["demo", "synth", "info", "extract", "preview", "verify", "bench"]
    for command, parser in zip(COMMANDS, sub.choices.values(), strict=True):
        assert parser.get_default("run") is command.run
        assert command.__name__ == f"gigapatch.cli.{parser.prog.split()[-1]}"


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_draws_on_a_terminal_only(monkeypatch):
    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    bar = ProgressBar("extract")
    bar(0, 4)
    bar(1, 4)  # within 0.1 s of the last draw: skipped
    bar(4, 4)  # the end is always drawn, with a newline
    lines = terminal.getvalue().split("\r")[1:]
    assert len(lines) == 2
    assert lines[0].startswith("extract [" + "." * 30 + "] 0/4 patches ")
    assert lines[1].startswith("extract [" + "#" * 30 + "] 4/4 patches ")
    assert lines[1].endswith("s \n")
    quiet = ProgressBar("extract", quiet=True)
    quiet(4, 4)
    monkeypatch.setattr("sys.stderr", io.StringIO())  # not a terminal
    ProgressBar("extract")(4, 4)
    assert terminal.getvalue().count("\r") == 2


def _raising(exc):
    def run(args):
        raise exc

    return run


@pytest.mark.parametrize(
    ("exc", "code", "line"),
    [
        (InvalidArgumentError("size must be at least 1; got 0"), 2,
         "gigapatch x: error: size must be at least 1; got 0"),
        (StoreError("store 'a.zarr' does not exist"), 1,
         "gigapatch x: error: store 'a.zarr' does not exist"),
        (FileNotFoundError(2, "No such file or directory", "b.svs"), 1,
         "gigapatch x: error: b.svs: No such file or directory"),
        (OSError(), 1, "gigapatch x: error: OSError"),
        (KeyboardInterrupt(), 130,
         "gigapatch x: interrupted: partial output is not marked complete"),
        (Terminated(), 143, "gigapatch x: terminated: partial output is not marked complete"),
        (Interrupted("3 of 8 shards done; run the same command with --resume"), 130,
         "gigapatch x: interrupted: 3 of 8 shards done; run the same command with --resume"),
        (Interrupted("1 of 8 shards done", terminated=True), 143,
         "gigapatch x: terminated: 1 of 8 shards done"),
        (OSError(errno.ENOSPC, "No space left on device"), 1,
         "gigapatch x: error: no space left on the device writing the output: free space or "
         "write elsewhere"),
        (OSError(errno.ENOSPC, "No space left on device", "o.zarr/c/0"), 1,
         "gigapatch x: error: no space left on the device writing 'o.zarr/c/0': free space or "
         "write elsewhere"),
        (PermissionError(errno.EACCES, "Permission denied", "/data/o.zarr"), 1,
         "gigapatch x: error: permission denied: '/data/o.zarr'"),
        (PermissionError(errno.EPERM, "Operation not permitted"), 1,
         "gigapatch x: error: permission denied (Operation not permitted)"),
        (OSError(errno.EROFS, "Read-only file system", "/ro/o.zarr"), 1,
         "gigapatch x: error: read-only file system: cannot write '/ro/o.zarr'"),
        (MemoryError(), 1, "gigapatch x: error: out of memory: run with fewer workers "
                           "(--workers) or smaller shards (--shard-size)"),
        (WorkerError("a worker process died running shard 3 (slide a.svs) (…)"), 1,
         "gigapatch x: error: a worker process died running shard 3 (slide a.svs) (…)"),
    ],
)
def test_errors_become_one_line_and_an_exit_status(capsys, exc, code, line):
    assert run_reporting_errors("gigapatch x", _raising(exc), argparse.Namespace()) == code
    out, err = capsys.readouterr()
    assert out == "" and err == line + "\n"


def test_bugs_are_one_line_that_asks_for_a_report(capsys):
    status = run_reporting_errors("gigapatch x", _raising(ZeroDivisionError("division by zero")),
                                  argparse.Namespace())
    assert status == 1
    assert capsys.readouterr().err == (
        "gigapatch x: error: internal error: ZeroDivisionError: division by zero (run the same "
        "command with --debug for the traceback, and please report it)\n")
    assert run_reporting_errors("gigapatch x", lambda args: 0, argparse.Namespace()) == 0


def test_debug_prints_the_traceback_before_the_line(capsys):
    status = run_reporting_errors("gigapatch x", _raising(StoreError("store 'a.zarr' is odd")),
                                  argparse.Namespace(debug=True))
    assert status == 1
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):")
    assert err.endswith("gigapatch.errors.StoreError: store 'a.zarr' is odd\n"
                        "gigapatch x: error: store 'a.zarr' is odd\n")
