"""Every failure a user can meet, as one line on stderr and an exit status — never a traceback.

:func:`describe` turns an exception into ``(status, kind, message)``; the command line
prints ``gigapatch <command>: <kind>: <message>`` and exits with ``status``:

======  =====================================================================================
status  failures
======  =====================================================================================
2       bad arguments (:class:`~gigapatch.errors.InvalidArgumentError`, argparse's own)
1       files, slides and stores that cannot be used; a full disk (the path, the bytes);
        permission denied (the path); a worker that died (the shard, the slide, what to do);
        a bug (``internal error``, with a hint to rerun with ``--debug`` and report it)
130     Ctrl-C (``interrupted``: commands that can be resumed say how far they got)
143     ``SIGTERM`` (a batch system's time limit), said the same way
======  =====================================================================================

``--debug`` prints the full traceback before the line; ``--log FILE`` records the line and
the traceback in the log file whatever the flags.
"""

from __future__ import annotations

import argparse
import errno
import logging
import sys
import traceback
import warnings
from collections.abc import Callable

from gigapatch.errors import GigapatchError, InvalidArgumentError

__all__ = [
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_TERMINATED",
    "EXIT_USAGE",
    "Interrupted",
    "Terminated",
    "describe",
    "run_reporting_errors",
]

EXIT_USAGE = 2
EXIT_FAILURE = 1
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports it
EXIT_TERMINATED = 143  # 128 + SIGTERM

_LOG = logging.getLogger("gigapatch.cli")


class Terminated(KeyboardInterrupt):
    """``SIGTERM`` received (``scancel``, a job's time limit): stops the run as Ctrl-C does."""


class Interrupted(Exception):
    """A command stopped by Ctrl-C or ``SIGTERM`` that says how far it got and how to go on.

    Parameters
    ----------
    message
        ``"312 of 800 shards done; run the same command with --resume"``.
    terminated
        Stopped by ``SIGTERM`` rather than Ctrl-C (exit 143, not 130).
    """

    def __init__(self, message: str, *, terminated: bool = False) -> None:
        super().__init__(message)
        self.terminated = terminated


def _os_error(exc: OSError) -> str:
    where = f" {exc.filename!r}" if exc.filename is not None else ""
    if exc.errno == errno.ENOSPC:
        return f"no space left on the device writing{where or ' the output'}: free space or " \
               "write elsewhere"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"permission denied: {exc.filename!r}" if where else \
            f"permission denied ({exc.strerror or exc})"
    if exc.errno == errno.EROFS:
        return f"read-only file system: cannot write {exc.filename!r}" if where else \
            "read-only file system"
    if exc.filename is not None:
        return f"{exc.filename}: {exc.strerror}"
    return str(exc) or type(exc).__name__


def describe(exc: BaseException) -> tuple[int, str, str]:
    """``(exit status, kind, one-line message)`` of a failure (kind: ``error``,
    ``interrupted`` or ``terminated``)."""
    if isinstance(exc, Interrupted):
        return ((EXIT_TERMINATED, "terminated", str(exc)) if exc.terminated
                else (EXIT_INTERRUPTED, "interrupted", str(exc)))
    if isinstance(exc, Terminated):
        return EXIT_TERMINATED, "terminated", "partial output is not marked complete"
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED, "interrupted", "partial output is not marked complete"
    if isinstance(exc, InvalidArgumentError):
        return EXIT_USAGE, "error", str(exc)
    if isinstance(exc, GigapatchError):
        return EXIT_FAILURE, "error", str(exc) or type(exc).__name__
    if isinstance(exc, OSError):
        return EXIT_FAILURE, "error", _os_error(exc)
    if isinstance(exc, MemoryError):
        return EXIT_FAILURE, "error", ("out of memory: run with fewer workers (--workers) or "
                                       "smaller shards (--shard-size)")
    first = (str(exc).strip().splitlines() or [""])[0]
    return EXIT_FAILURE, "error", (
        f"internal error: {type(exc).__name__}{': ' + first if first else ''} (run the same "
        "command with --debug for the traceback, and please report it)")


def _one_line_warning(prog: str) -> Callable[..., None]:
    def show(message: Warning | str, *args: object, **kwargs: object) -> None:
        print(f"{prog}: warning: {message}", file=sys.stderr)
        _LOG.warning("%s", message, extra={"console": False})

    return show


def run_reporting_errors(
    prog: str, run: Callable[[argparse.Namespace], int], args: argparse.Namespace
) -> int:
    """``run(args)``, with every failure turned into one stderr line and an exit status.

    See the module docstring for the statuses. With ``args.debug`` the traceback is
    printed first; a closed stdout (``BrokenPipeError``) is left to
    :func:`gigapatch.cli.main`.
    """
    try:
        with warnings.catch_warnings():  # restores the previous display on exit
            warnings.showwarning = _one_line_warning(prog)
            return run(args)
    except BrokenPipeError:  # the reader of stdout left (| head): main ends quietly
        raise
    except (Exception, KeyboardInterrupt) as exc:
        status, kind, message = describe(exc)
        # the line and its traceback, for --log (stderr gets the line below, once)
        _LOG.error("%s: %s: %s", prog, kind, message, exc_info=exc, extra={"console": False})
        if getattr(args, "debug", False):
            traceback.print_exception(exc, file=sys.stderr)
        print(f"{prog}: {kind}: {message}", file=sys.stderr)
        return status
