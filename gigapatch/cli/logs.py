"""Logs and progress for batch jobs: the global flags ``--log FILE``, ``-v``, ``-q``,
``--debug`` and ``--progress-every``.

gigapatch logs through Python's :mod:`logging` under the ``gigapatch`` logger: the engine
says when a run starts and ends, each slide it reads and each shard it finishes; sources
say when they fall back (a file tifffile cannot read, opened with OpenSlide) and what they
find odd (a truncated file). The command line sends those records

* to stderr: warnings and errors by default, also ``info`` with ``-v``, also ``debug`` with
  ``-vv``, errors only with ``-q``;
* to ``--log FILE`` (appended): ``info`` and up (``debug`` with ``-v``), each line with its
  time, plus the progress lines and, on a failure, its one-line message and traceback.

The progress of ``extract`` is a bar on a terminal. When stderr is not a terminal (a SLURM
or cron job, a pipe) there is no bar: a plain line every ``--progress-every`` seconds
(default 30) and at the end, with the patches done, patches/s and the time left.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any, TextIO

from gigapatch.cli.reporting import Terminated

__all__ = ["PROGRESS_EVERY", "ProgressBar", "add_global_arguments", "logging_to", "sigterm"]

#: Seconds between two progress lines when stderr is not a terminal.
PROGRESS_EVERY = 30.0

_ROOT = "gigapatch"
_PROGRESS = logging.getLogger("gigapatch.progress")
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {text!r}") \
            from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {text!r}")
    return value


def add_global_arguments(parser: argparse.ArgumentParser, *, suppress: bool = False) -> None:
    """Add the flags every command takes, before or after its name.

    ``suppress``: for a command's own parser, so a flag given before the command name is
    not reset by the command's defaults.
    """
    def default(value: Any) -> Any:
        return argparse.SUPPRESS if suppress else value

    group = parser.add_argument_group("logs and errors (any command)")
    group.add_argument("-v", "--verbose", action="count", default=default(0),
                       help="say more on stderr: -v what the run does, -vv every shard")
    group.add_argument("-q", "--quiet", action="store_true", default=default(False),
                       help="errors only on stderr: no progress, no warnings")
    group.add_argument("--log", default=default(None), metavar="FILE",
                       help="append a timestamped log of the run to FILE (for batch jobs)")
    group.add_argument("--progress-every", type=_seconds, default=default(PROGRESS_EVERY),
                       metavar="SECONDS", dest="progress_every",
                       help="when stderr is not a terminal: a progress line every SECONDS "
                            f"(default {PROGRESS_EVERY:g})")
    group.add_argument("--debug", action="store_true", default=default(False),
                       help="print the full traceback of an error")


class _Console(logging.Filter):
    """What the stderr handler leaves out: progress records (the bar or the plain lines are
    printed directly) and records already printed as the error line."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.name.startswith(_PROGRESS.name) and getattr(record, "console", True)


class _Line(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        level = "" if record.levelno == logging.INFO else f"{record.levelname.lower()}: "
        return f"gigapatch: {level}{record.getMessage()}"


@contextmanager
def logging_to(args: argparse.Namespace, stderr: TextIO | None = None) -> Iterator[None]:
    """Route the ``gigapatch`` logger to stderr and ``args.log`` for the duration of a
    command, at the levels ``args.verbose`` and ``args.quiet`` ask for."""
    verbose, quiet = getattr(args, "verbose", 0) or 0, getattr(args, "quiet", False)
    logger = logging.getLogger(_ROOT)
    console = logging.StreamHandler(stderr or sys.stderr)
    console.setLevel(logging.ERROR if quiet else (logging.WARNING, logging.INFO,
                                                  logging.DEBUG)[min(verbose, 2)])
    console.addFilter(_Console())
    console.setFormatter(_Line())
    handlers: list[logging.Handler] = [console]
    if getattr(args, "log", None):
        try:
            file = logging.FileHandler(args.log, encoding="utf-8")
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, args.log) from None
        file.setLevel(logging.DEBUG if verbose else logging.INFO)
        file.setFormatter(logging.Formatter(_FORMAT))
        handlers.append(file)
    saved = logger.level, logger.propagate
    logger.setLevel(min(h.level for h in handlers))
    logger.propagate = False
    for handler in handlers:
        logger.addHandler(handler)
    try:
        yield
    finally:
        for handler in handlers:
            logger.removeHandler(handler)
            handler.close()
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


@contextmanager
def sigterm() -> Iterator[None]:
    """While a command runs, ``SIGTERM`` stops it as Ctrl-C does (a :class:`Terminated`), so a
    job killed at its time limit says how far it got; the previous handler comes back after.
    Does nothing outside the main thread."""
    def stop(signum: int, frame: FrameType | None) -> None:
        raise Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, stop)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class ProgressBar:
    """Progress of a run: a bar on a terminal, else a plain line every ``every`` seconds.

    Parameters
    ----------
    label
        What runs (``"extract"``).
    quiet
        Show nothing.
    every
        Seconds between two plain lines (stderr not a terminal); the last one is always
        shown. Every plain line also goes to the log (``--log``).
    already
        Patches done before this run (``--resume``), left out of the rate.
    unit
        What is counted (``"patches"``, ``"shards"``).
    """

    def __init__(self, label: str, *, quiet: bool = False, every: float = PROGRESS_EVERY,
                 already: int = 0, unit: str = "patches") -> None:
        self.label = label
        self.unit = unit
        self.quiet = quiet
        self.enabled = sys.stderr.isatty() and not quiet  # the bar
        self.every = every
        self.already = already  # patches done before this run (--resume): not in the rate
        self.start = time.perf_counter()
        self._last = 0.0 if self.enabled else self.start  # first plain line after `every` s
        self.done = self.total = 0
        self._called = False

    def _rate(self, now: float, done: int) -> float:
        """Patches per second of this run."""
        return max(done - self.already, 0) / max(now - self.start, 1e-9)

    def __call__(self, done: int, total: int) -> None:
        now = time.perf_counter()
        if not self._called:
            self._called = True
            if done <= self.already:  # "starting now" (after a demo's synthesis, a resume):
                self.start = now  # the clock and the rate count from here
                self._last = 0.0 if self.enabled else now
                if total == 0:
                    return
        self.done, self.total = done, total
        rate = self._rate(now, done)
        eta = (total - done) / rate if rate > 0 else float("inf")
        if self.enabled:
            self._bar(now, done, total, rate, eta)
        elif not self.quiet and (done >= total or now - self._last >= self.every):
            self._last = now
            line = self.line(done, total, rate, eta, now - self.start)
            sys.stderr.write(line + "\n")
            sys.stderr.flush()
            _PROGRESS.info(line)
        elif done >= total or now - self._last >= self.every:
            self._last = now
            _PROGRESS.info(self.line(done, total, rate, eta, now - self.start))

    def line(self, done: int, total: int, rate: float, eta: float, elapsed: float) -> str:
        """One plain progress line: ``extract: 312/800 patches (39.0 %), 52 patches/s, ETA 9s``."""
        share = f" ({100 * done / total:.1f} %)" if total else ""
        left = "" if done >= total else (", ETA ?" if eta == float("inf") else
                                          f", ETA {_clock(eta)}")
        return (f"{self.label}: {done:,}/{total:,} {self.unit}{share}, {rate:,.0f} {self.unit}/s, "
                f"elapsed {_clock(elapsed)}{left}")

    def _bar(self, now: float, done: int, total: int, rate: float, eta: float) -> None:
        if done < total and now - self._last < 0.1:
            return
        self._last = now
        width = 30
        filled = int(width * done / total) if total else width
        left = 0.0 if eta == float("inf") else eta
        sys.stderr.write(
            f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total} {self.unit} "
            f"{rate:,.0f}/s ETA {left:,.0f}s "
        )
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def _clock(seconds: float) -> str:
    """``75`` → ``1:15``; ``3725`` → ``1:02:05``."""
    s = round(seconds)
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"
