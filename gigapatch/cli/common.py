"""What every command shares: the parser, argument types, the progress bar, error reporting.

Every user error ends in one line on stderr (``gigapatch <command>: error:
...``) and a non-zero exit: 2 for bad arguments, 1 for files and stores that
cannot be used, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Callable
from typing import NoReturn, Protocol, TypeAlias, TypeVar

from gigapatch.errors import GigapatchError, InvalidArgumentError
from gigapatch.store.summary import human_bytes

#: What ``add_subparsers`` returns, that each command adds its parser to.
Subparsers: TypeAlias = "argparse._SubParsersAction[Parser]"

__all__ = [
    "Command",
    "Parser",
    "ProgressBar",
    "Subparsers",
    "fraction",
    "human_bytes",
    "natural_int",
    "number",
    "positive_float",
    "positive_int",
    "run_reporting_errors",
]

N = TypeVar("N", int, float)


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, without the usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


class Command(Protocol):
    """A command module: ``add_parser`` adds its subcommand, ``run`` runs it."""

    def add_parser(self, subparsers: Subparsers) -> argparse.ArgumentParser:
        """Add the command's parser to ``subparsers`` and return it."""
        ...

    def run(self, args: argparse.Namespace) -> int:
        """Run the command on parsed ``args``; return its exit status."""
        ...


def number(
    convert: Callable[[str], N], ok: Callable[[N], bool], expected: str
) -> Callable[[str], N]:
    """An argparse ``type``: ``convert`` the text, keep the value where ``ok``.

    Anything else is an ``ArgumentTypeError`` saying ``expected`` and what was given.
    """

    def parse(text: str) -> N:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


positive_int = number(int, lambda v: v > 0, "a positive integer")
natural_int = number(int, lambda v: v >= 0, "an integer >= 0")
fraction = number(float, lambda v: 0 <= v <= 1, "a number in [0, 1]")
def series_choice(text: str) -> int | str:
    """``--series``: an index (digits) or a name."""
    return int(text) if text.isdigit() else text


positive_float = number(float, lambda v: 0 < v < float("inf"), "a positive number")


class ProgressBar:
    """A one-line progress display on a terminal; silent otherwise, or when ``quiet``."""

    def __init__(self, label: str, *, quiet: bool = False, unit: str = "patches") -> None:
        self.label = label
        self.unit = unit
        self.enabled = sys.stderr.isatty() and not quiet
        self.start = time.perf_counter()
        self._last = 0.0

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if done < total and now - self._last < 0.1:
            return
        self._last = now
        elapsed = max(now - self.start, 1e-9)
        rate = done / elapsed
        eta = (total - done) / rate if rate > 0 else 0.0
        width = 30
        filled = int(width * done / total) if total else width
        sys.stderr.write(
            f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total} {self.unit} "
            f"{rate:,.0f}/s ETA {eta:,.0f}s "
        )
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def _one_line_warning(prog: str) -> Callable[..., None]:
    def show(message: Warning | str, *args: object, **kwargs: object) -> None:
        print(f"{prog}: warning: {message}", file=sys.stderr)

    return show


def run_reporting_errors(
    prog: str, run: Callable[[argparse.Namespace], int], args: argparse.Namespace
) -> int:
    """``run(args)``, with every user error turned into one stderr line and an exit status.

    Bad arguments exit 2, files and stores that cannot be used 1, an interrupt 130;
    a closed stdout (``BrokenPipeError``) is left to :func:`gigapatch.cli.main`. A
    warning shown meanwhile is one stderr line too (``PROG: warning: ...``).
    """
    try:
        with warnings.catch_warnings():  # restores the previous display on exit
            warnings.showwarning = _one_line_warning(prog)
            return run(args)
    except InvalidArgumentError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader of stdout left (| head): main ends quietly
        raise
    except (GigapatchError, OSError) as exc:
        if isinstance(exc, GigapatchError) or exc.filename is None:
            message = str(exc) or type(exc).__name__
        else:
            message = f"{exc.filename}: {exc.strerror}"
        print(f"{prog}: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; partial output is not marked complete", file=sys.stderr)
        return 130
