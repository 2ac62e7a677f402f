"""One writer at a time: the lock file of a store.

A run that writes a store — fresh, ``resume`` or ``overwrite`` — holds
``<store>/.gigapatch-lock`` from before it touches the store until it ends
(also on an error or an interrupt). The file is JSON: the holder's ``host``,
``pid``, start time ``since`` (UTC, ISO 8601), a random ``token`` that tells
this holder from any other, and, where the system says, the process's start
time and the boot id, so that a reused pid or a reboot is not taken for the
holder.

It is taken atomically: created with ``O_CREAT | O_EXCL`` (one creator
wins), written, and synced to disk with its folder. A second writer is
refused with :class:`~gigapatch.errors.StoreLockedError` naming the holder.
A lock whose holder is no longer running on this host (a killed run) is taken
over with a :class:`~gigapatch.errors.StaleLockWarning`; one held on another
host cannot be checked, and is broken only with ``break_lock=True``
(``--break-lock``). A lock whose holder runs on this host is never broken.

Readers take no lock: :class:`~gigapatch.store.PatchStore`, ``verify`` and
``info`` ignore the file, and a store being written reads as a store whose
unfinished shards are not done.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import json
import os
import secrets
import socket
import time
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final

from gigapatch.errors import StaleLockWarning, StoreLockedError

__all__ = ["LOCK_NAME", "LockHolder", "StoreLock", "abandoned", "lock_holder"]

#: The lock file's name inside the store folder.
LOCK_NAME: Final = ".gigapatch-lock"
_READ_TRIES: Final = 20  # x 50 ms: a new lock file is written right after it is created
_TAKE_TRIES: Final = 5
#: A building folder with no lock in it is abandoned after this many seconds (a live run
#: writes its lock into the folder right after making it).
GRACE_S: Final = 60.0


def _host() -> str:
    return socket.gethostname()


def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, start time in clock ticks since boot) of ``pid`` from /proc, or None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2 :].split()  # the name may hold spaces and parentheses
    try:
        return fields[0], int(fields[19])
    except (IndexError, ValueError):
        return None


@dataclass(frozen=True)
class LockHolder:
    """Who holds a store's lock.

    Attributes
    ----------
    host, pid
        The machine (``socket.gethostname()``) and process of the holder.
    since
        When it took the lock (UTC, ISO 8601).
    token
        Random; tells this holder's lock from any other.
    started, boot
        The process's start time (clock ticks since boot) and the machine's
        boot id, where ``/proc`` says: a reused pid or a reboot does not pass
        for the holder.
    """

    host: str
    pid: int
    since: str
    token: str
    started: int | None = None
    boot: str | None = None

    @classmethod
    def me(cls) -> LockHolder:
        """A new holder record for this process."""
        pid = os.getpid()
        stat = _proc_stat(pid)
        return cls(
            host=_host(), pid=pid,
            since=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            token=secrets.token_hex(8), started=None if stat is None else stat[1],
            boot=_boot_id(),
        )

    @classmethod
    def parse(cls, raw: bytes) -> LockHolder | None:
        """The holder a lock file's bytes name, or None when they are not a whole record."""
        try:
            data = json.loads(raw)
            holder = cls(
                host=str(data["host"]), pid=int(data["pid"]), since=str(data["since"]),
                token=str(data["token"]),
                started=None if data.get("started") is None else int(data["started"]),
                boot=None if data.get("boot") is None else str(data["boot"]),
            )
        except (ValueError, TypeError, KeyError):
            return None
        return holder

    def encode(self) -> bytes:
        """The lock file's bytes."""
        return json.dumps(asdict(self)).encode()

    def describe(self) -> str:
        """``"pid 123 on HOST since TIME"``."""
        return f"pid {self.pid} on {self.host} since {self.since}"

    def running(self) -> bool:
        """Whether the holder may still run: False only when it is known to be gone (on this
        host: no such process, a zombie, another process under its pid, or a reboot since)."""
        if self.host != _host():
            return True  # cannot be told from here
        if self.boot is not None and _boot_id() not in (None, self.boot):
            return False
        if self.pid <= 0:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass  # exists, owned by another user
        except (OverflowError, OSError):
            return False
        stat = _proc_stat(self.pid)
        if stat is None:
            return True
        state, started = stat
        return state != "Z" and (self.started is None or started == self.started)


def _sync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems cannot sync a folder
    finally:
        os.close(fd)


@contextlib.contextmanager
def _one_at_a_time(folder: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` of ``folder`` (released when the process ends, however);
    where a filesystem cannot lock a folder, go on without."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        fd = -1
    try:
        if fd >= 0:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        if fd >= 0:
            os.close(fd)  # releases the flock


def _create(path: Path, data: bytes) -> None:
    """Create ``path`` holding ``data``, synced; FileExistsError if it exists."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    os.close(fd)
    _sync_dir(path.parent)


def _read(path: Path, tries: int = _READ_TRIES) -> tuple[bytes, LockHolder | None] | None:
    """The bytes of the lock file ``path`` and its holder (None if it stays unreadable), or
    None when there is no such file."""
    raw = b""
    for attempt in range(tries):
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError:
            return raw, None
        holder = LockHolder.parse(raw)
        if holder is not None:
            return raw, holder
        if attempt + 1 < tries:
            time.sleep(0.05)  # created, not yet written
    return raw, None


def lock_holder(store: str | os.PathLike[str]) -> LockHolder | None:
    """The holder of the lock of ``store`` if it may still be running; None when there is no
    lock, its holder is gone, or the lock file cannot be read."""
    found = _read(Path(store) / LOCK_NAME)
    holder = None if found is None else found[1]
    return holder if holder is not None and holder.running() else None


def abandoned(folder: Path, *, grace: float = GRACE_S) -> bool:
    """Whether ``folder``, one a run builds a store in (or moves a replaced store to), was
    left by a run that is gone: its lock names a process no longer running on this host,
    or it has no lock and has not changed for ``grace`` seconds."""
    found = _read(folder / LOCK_NAME, tries=1)
    if found is None or found[1] is None:
        try:
            return time.time() - folder.stat().st_mtime > grace
        except OSError:
            return False
    holder = found[1]
    return holder.host == _host() and not holder.running()


class StoreLock:
    """The writer lock of one store, for one run.

    Parameters
    ----------
    store
        The store's folder (made absolute).
    break_lock
        Take over a lock held on another host, which cannot be told to be
        stale from here (a warning says whose lock was broken).

    Notes
    -----
    :meth:`acquire` takes the lock of an existing store. A new store is
    built aside with the lock already in it (:meth:`build`), so it is locked
    the moment it is renamed into place (:meth:`placed`). :meth:`check` says
    whether the lock is still this run's; :meth:`release` removes it only
    then. As a context manager, the lock is released on exit.
    """

    def __init__(self, store: str | os.PathLike[str], *, break_lock: bool = False) -> None:
        self.store = Path(os.path.abspath(store))
        self.break_lock = bool(break_lock)
        self.holder = LockHolder.me()
        self.held = False

    @property
    def path(self) -> Path:
        """The lock file."""
        return self.store / LOCK_NAME

    @property
    def token(self) -> str:
        """This lock's random token (also names the folder a new store is built in)."""
        return self.holder.token

    def __enter__(self) -> StoreLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    # ------------------------------------------------------------------ taking

    def acquire(self) -> None:
        """Take the lock of the existing store.

        Raises
        ------
        StoreLockedError
            Another run holds it: on this host and running, on another host
            without ``break_lock``, or in a lock file that cannot be read
            without ``break_lock``.
        """
        if self.held:
            return
        note = None
        for _ in range(_TAKE_TRIES):
            try:
                _create(self.path, self.holder.encode())
            except FileExistsError:
                pass
            else:
                self.held = True
                if note is not None:
                    warnings.warn(note, StaleLockWarning, stacklevel=2)
                return
            found = _read(self.path)
            if found is None:
                continue  # released meanwhile
            raw, other = found
            note = self._may_take(other)
            self._remove(raw)
        raise StoreLockedError(
            f"cannot take the lock of store {str(self.store)!r}: other runs keep taking it"
        )

    def _may_take(self, other: LockHolder | None) -> str:
        """Why the lock of ``other`` may be taken over (the warning), or raise."""
        store, hint = str(self.store), "pass break_lock=True (--break-lock)"
        if other is None:
            if not self.break_lock:
                raise StoreLockedError(
                    f"store {store!r} has a lock file that cannot be read ({self.path}); if no "
                    f"run is writing the store, {hint}"
                )
            return f"breaking the unreadable lock of store {store!r} (break_lock)"
        if other.host == self.holder.host:
            if other.running():
                raise StoreLockedError(
                    f"store {store!r} is being written by another run: {other.describe()}; wait "
                    f"for it to finish or stop it (if pid {other.pid} is not a gigapatch run, "
                    f"delete {str(self.path)!r})"
                )
            return (f"taking over the lock of store {store!r} from {other.describe()}: that "
                    "process is no longer running")
        if not self.break_lock:
            raise StoreLockedError(
                f"store {store!r} is locked by a run on another host: {other.describe()}; "
                f"if that run is gone, {hint}"
            )
        return f"breaking the lock of store {store!r} held by {other.describe()} (break_lock)"

    def _remove(self, raw: bytes) -> None:
        """Remove the lock file if it still holds ``raw``. Runs taking over one stale lock
        do this one at a time (``flock`` of the store folder), so none of them removes the
        lock another has just taken."""
        with _one_at_a_time(self.store):
            try:
                now = self.path.read_bytes()
            except FileNotFoundError:
                return
            if now == raw:
                self.path.unlink(missing_ok=True)

    def build(self, folder: Path) -> None:
        """Write this lock into ``folder``, which will be renamed to the store."""
        _create(folder / LOCK_NAME, self.holder.encode())

    def placed(self) -> None:
        """The folder given to :meth:`build` is now the store: the lock is held."""
        self.held = True

    # ------------------------------------------------------------------ holding

    def check(self) -> None:
        """Raise if the lock is no longer this run's (another run broke it, or it was deleted).

        Raises
        ------
        StoreLockedError
            The lock file is gone or names another holder.
        """
        found = _read(self.path, tries=1)
        other = None if found is None else found[1]
        if other is not None and other.token == self.token:
            return
        self.held = False
        now = "its lock file was removed" if found is None else (
            f"it is now held by {other.describe()}" if other else "its lock file was replaced")
        raise StoreLockedError(
            f"this run lost the lock of store {str(self.store)!r}: {now}; stopping so that two "
            "runs do not write it at once"
        )

    def release(self) -> None:
        """Remove the lock file if this run holds it (never another run's)."""
        if not self.held:
            return
        self.held = False
        found = _read(self.path, tries=1)
        if found is None or found[1] is None or found[1].token != self.token:
            return
        self.path.unlink(missing_ok=True)
        _sync_dir(self.store)
