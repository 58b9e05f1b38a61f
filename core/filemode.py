"""The permission bits a new file should get: what the user's umask allows.

``tempfile.mkstemp`` creates 0600 files (right for secrets, wrong for an inventory or a
manifest the user shares like the exported images, which are 0644 under the usual
umask). Files we publish from a temp file are chmod-ed to ``0o666 & ~umask``.
"""

from __future__ import annotations

import contextlib
import os
import threading

_LOCK = threading.Lock()


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux /proc);
    elsewhere set-and-restore under a lock (``os.umask`` is the only portable reader)."""
    with contextlib.suppress(OSError, ValueError), open(
        "/proc/self/status", encoding="ascii", errors="replace"
    ) as fh:
        for line in fh:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    with _LOCK:
        old = os.umask(0o077)
        os.umask(old)
    return old


def new_file_mode() -> int:
    return 0o666 & ~current_umask()


def chmod_like_new_file(fd: int) -> None:
    """Give an open temp file the mode a plain ``open(path, "w")`` would have given it."""
    with contextlib.suppress(OSError):
        os.fchmod(fd, new_file_mode())
