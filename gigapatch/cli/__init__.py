"""The ``gigapatch`` command: parses arguments and calls the library, nothing more.

One module per command, each with ``add_parser(subparsers)`` and
``run(args) -> int`` (:class:`~gigapatch.cli.common.Command`); adding a
command is adding its module to :data:`COMMANDS`. Every failure ends in one
line on stderr and a non-zero exit, without a traceback unless ``--debug``
(:mod:`gigapatch.cli.reporting`). The global flags ``-v``, ``-q``, ``--log FILE``,
``--progress-every`` and ``--debug`` go before or after the command's name
(:mod:`gigapatch.cli.logs`).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from gigapatch import __version__
from gigapatch.cli import bench, demo, extract, info, preview, synth, verify
from gigapatch.cli.common import Command, Parser
from gigapatch.cli.logs import add_global_arguments, logging_to, sigterm
from gigapatch.cli.reporting import run_reporting_errors

__all__ = ["COMMANDS", "EXIT_BROKEN_PIPE", "build_parser", "main"]

#: Exit status when stdout's reader went away (``| head``): 128 + SIGPIPE, as a shell reports it.
EXIT_BROKEN_PIPE = 141

#: The commands, in the order ``gigapatch --help`` lists them.
COMMANDS: tuple[Command, ...] = (demo, synth, info, extract, preview, verify, bench)


def build_parser() -> Parser:
    """The argument parser of the ``gigapatch`` command."""
    parser = Parser(prog="gigapatch", description="Whole-slide images to training patches.")
    parser.add_argument("--version", action="version", version=f"gigapatch {__version__}")
    add_global_arguments(parser)
    subparsers = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for command in COMMANDS:
        sub = command.add_parser(subparsers)
        add_global_arguments(sub, suppress=True)
        sub.set_defaults(run=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``gigapatch`` command; return its exit status.

    When stdout is closed early (``gigapatch info X | head -1``), it ends
    quietly with :data:`EXIT_BROKEN_PIPE`, as the Python docs advise for
    SIGPIPE: the rest of stdout goes to ``os.devnull``, so flushing it at exit
    cannot fail again.
    """
    try:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as exc:  # --help, --version, or a usage error already printed
            return int(exc.code or 0)
        run: Callable[[argparse.Namespace], int] = args.run
        prog = f"gigapatch {args.command}"
        status = run_reporting_errors(prog, lambda a: _logged(prog, run, a), args)
        sys.stdout.flush()  # a pipe closed early fails here, not in the interpreter's exit
        return status
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


def _logged(prog: str, run: Callable[[argparse.Namespace], int],
            args: argparse.Namespace) -> int:
    """``run(args)`` with the logs routed as the global flags ask (its failure, too, goes to
    ``--log``), and SIGTERM stopping it as Ctrl-C does."""
    def stoppable(a: argparse.Namespace) -> int:
        with sigterm():
            return run(a)

    with logging_to(args):
        return run_reporting_errors(prog, stoppable, args)
