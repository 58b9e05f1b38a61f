"""Reading small files picksel keeps for itself (state.json, the undo journal) without
trusting what sits under their names.

A FIFO under that name would block ``open()`` forever and a symlink to ``/dev/zero``
would be read until memory runs out, so the file is opened non-blocking, checked with
``fstat`` to be a regular file, and read only up to a size cap.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

MAX_STATE_BYTES = 64 * 1024 * 1024
"""Far above a real state file (150k excluded paths are ~10 MB) and small enough to read."""


class NotRegularFile(OSError):
    """The name holds a FIFO, a device, a socket or a folder instead of a file."""


class FileTooLarge(OSError):
    """The file is larger than the cap for this kind of file."""


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISDIR, "a folder"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def read_regular_file(
    path: Path, limit: int = MAX_STATE_BYTES, *, follow_symlinks: bool = True
) -> bytes:
    """The bytes of ``path`` when it is (or, with ``follow_symlinks``, links to) a regular
    file of at most ``limit`` bytes; FileNotFoundError, NotRegularFile, FileTooLarge or
    another OSError otherwise (a symlink with ``follow_symlinks=False`` is ELOOP).
    Never blocks on a FIFO and never reads more than ``limit + 1`` bytes."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | getattr(os, "O_NOCTTY", 0)
    if not follow_symlinks:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFile(f"it is {_kind(st.st_mode)}")
        if st.st_size > limit:
            raise FileTooLarge(f"it is {st.st_size:,} bytes, more than the {limit:,} allowed")
        chunks: list[bytes] = []
        total = 0
        while True:  # the file may grow while we read: stop at the cap all the same
            chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                raise FileTooLarge(f"it grew past the {limit:,} bytes allowed")
        return b"".join(chunks)
    finally:
        os.close(fd)
