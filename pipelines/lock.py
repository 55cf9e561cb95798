"""One run at a time per FLOWLENS_HOME: an advisory lock (fcntl.flock) on FLOWLENS_HOME/run.lock.

Taken before any API call and before Dagster's instance storage under FLOWLENS_HOME/dagster is initialised, so
two runs never extract, load or migrate that storage at once. The file names the holder (process id, host,
start time, command) for the refusal message. The operating system drops a flock when its process dies,
however it dies (SIGKILL included), so a lock left by a dead process is simply taken over; the file is left
in place (removing it would let a third run lock a different file than the second).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

LOCK_FILE = "run.lock"
_HELD: dict[str, HomeLock] = {}  # by home: a process that holds it may take it again (nested calls)


class HomeLocked(Exception):
    """Another run holds FLOWLENS_HOME: the message names it."""


class HomeLock:
    """A held lock; `release()` (or leaving the `with` block, or the process ending) lets go of it.
    `took_over`: the record of a run that died holding it, if one did. `shared`: a step of a Dagster run."""

    def __init__(self, path: Path, fd: int, took_over: dict[str, Any] | None, shared: bool = False) -> None:
        self.path, self._fd, self.took_over, self.depth, self.shared = path, fd, took_over, 1, shared

    def release(self) -> None:
        self.depth -= 1
        if self.depth <= 0 and self._fd is not None:
            _HELD.pop(str(self.path), None)
            fd, self._fd = self._fd, None
            if not self.shared:  # a record left in the file means its process died holding the lock
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __del__(self) -> None:
        self.depth = 0
        self.release()


def _holder(text: str) -> dict[str, Any]:
    try:
        info = json.loads(text)
        return info if isinstance(info, dict) else {}
    except ValueError:
        return {}


def describe(info: dict[str, Any]) -> str:
    if not info:
        return "steps of a run Dagster launched (the daemon or the UI), or a run that has not yet written its name"
    where = f" on {info['host']}" if info.get("host") and info.get("host") != socket.gethostname() else ""
    cmd = f", `{info['command']}`" if info.get("command") else ""
    return f"process {info.get('pid', '?')}{where}, started {info.get('started', '?')}{cmd}"


def home_from_env() -> Path:
    """FLOWLENS_HOME as a run resolves it (pipelines.resources.Home), without importing Dagster."""
    return Path(os.environ.get("FLOWLENS_HOME") or "var").absolute()


def acquire(home: str | os.PathLike, shared: bool = False) -> HomeLock:
    """Lock `home` for this run, at once or never: HomeLocked names the run holding it. In a process that
    already holds it, the same lock is returned (each acquire wants its release).

    `shared`: a step of a run that Dagster launched (daemon, UI) holds the home for its duration
    (pipelines/resources.py); steps of such runs share it with each other (Dagster's pools order them), while
    `flowlens run` and `flowlens demo` hold it alone, for the whole run: either refuses while the other holds it."""
    root = Path(home).absolute()
    path = root / LOCK_FILE
    if (held := _HELD.get(str(path))) is not None:
        held.depth += 1
        return held
    try:
        root.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as e:
        from pipelines.config import ConfigError

        raise ConfigError(f"FLOWLENS_HOME {root}: cannot make or write {LOCK_FILE} there ({e.strerror}); set "
                          "FLOWLENS_HOME to a folder this user can write") from None
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
        info = _holder(os.pread(fd, 4096, 0).decode("utf-8", "replace"))
        os.close(fd)
        raise HomeLocked(f"another flowlens run holds {root} ({describe(info)}): wait for it to finish, or "
                         "stop that process; a run that died leaves nothing to clean up") from None
    except BaseException:
        os.close(fd)
        raise
    if shared:  # steps write no record: others hold it too
        _HELD[str(path)] = lock = HomeLock(path, fd, None, shared=True)
        return lock
    previous = _holder(os.pread(fd, 4096, 0).decode("utf-8", "replace"))
    me = {"pid": os.getpid(), "host": socket.gethostname(),
          "started": datetime.now(UTC).isoformat(timespec="seconds"),
          "command": " ".join(["flowlens", *sys.argv[1:]]) if Path(sys.argv[0]).name == "flowlens" else None}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(me).encode(), 0)
    _HELD[str(path)] = lock = HomeLock(path, fd, previous or None)
    return lock
