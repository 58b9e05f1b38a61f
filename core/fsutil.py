"""Atomic file writes: state and index files are never left half-written.

A writer killed mid-write (SIGKILL, power loss) leaves its temp file behind. Each temp
file is held under an exclusive ``flock`` for as long as it is being written — the kernel
drops the lock when the writer dies however it dies — so ``sweep_temps`` can tell a dead
writer's leftover (lock free) from a live writer's file (lock held) without guessing from
ages, and never takes a file another process is still writing.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO


def _locked_temp(path: Path) -> tuple[int, str]:
    """A new temp file beside ``path``, created and locked by us."""
    while True:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # a sweeper holds it an instant at most
        except OSError:  # no locks on this file system: sweepers cannot lock it either
            return fd, tmp
        try:
            if os.path.samestat(os.fstat(fd), os.lstat(tmp)):
                return fd, tmp
        except FileNotFoundError:
            pass
        os.close(fd)  # a sweeper took it between mkstemp and flock: make another


@contextlib.contextmanager
def atomic_write(path: Path, mode: str = "wb", encoding: str | None = None) -> Iterator[IO]:
    """Write to a temp file beside ``path`` and ``os.replace`` it in on success.

    On any exception the temp file is removed and ``path`` keeps its old content.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _locked_temp(path)
    try:
        with os.fdopen(fd, mode, encoding=encoding) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
            os.replace(tmp, path)  # still open, so still locked: a sweeper never sees it free
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    with atomic_write(path, "w", encoding="utf-8") as fh:
        fh.write(text)


def temp_pattern(name_regex: str) -> re.Pattern[str]:
    """Names ``atomic_write`` gives the temp files of files whose names match
    ``name_regex`` (a regular expression for the final name, e.g. ``index.*\\.npz``)."""
    return re.compile(rf"\.(?:{name_regex})\.[A-Za-z0-9_]+\.tmp")


def sweep_temps(folder: Path, pattern: re.Pattern[str]) -> int:
    """Remove temp files of ``atomic_write`` writers that died (killed mid-save) in
    ``folder``: only names matching ``pattern`` (see ``temp_pattern``), only regular
    files, only when no live writer holds their lock. Never raises; returns how many
    were removed."""
    removed = 0
    try:
        names = os.listdir(folder)
    except OSError:
        return 0
    for name in names:
        if not pattern.fullmatch(name):
            continue
        path = Path(folder) / name
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            continue
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # a live writer holds it (or this file system has no locks)
            with contextlib.suppress(OSError):
                if os.path.samestat(st, os.lstat(path)):
                    os.unlink(path)
                    removed += 1
        finally:
            os.close(fd)
    return removed
