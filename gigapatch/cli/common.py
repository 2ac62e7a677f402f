"""What every command shares: the parser, argument types, the progress bar, error reporting.

Every failure ends in one line on stderr (``gigapatch <command>: error:
...``) and a non-zero exit: 2 for bad arguments, 1 for files and stores that
cannot be used, 130 when interrupted (:mod:`gigapatch.cli.reporting`). Logs and
progress: :mod:`gigapatch.cli.logs`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import NoReturn, Protocol, TypeAlias, TypeVar

from gigapatch.cli.logs import ProgressBar
from gigapatch.cli.reporting import run_reporting_errors
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
    "tolerance",
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
#: ``--mpp-tolerance``: the library's bound (a level within half the target would be a different
#: magnification)
tolerance = number(float, lambda v: 0 <= v < 0.5, "a fraction in [0, 0.5), e.g. 0.02 for 2 %")
def series_choice(text: str) -> int | str:
    """``--series``: an index (digits) or a name."""
    return int(text) if text.isdigit() else text


positive_float = number(float, lambda v: 0 < v < float("inf"), "a positive number")
