"""The find bar's table: every path as the list shows it (``printable``), lower-cased.

Why a thread and a fast path: lower-casing a million paths one by one costs ~0.6 s, and
it used to happen on the UI thread at the first key typed in the find bar. The table is
now started in a thread as soon as the list gets its paths, so it is ready (or nearly)
when the user types; and where no path needs an escape (plain ASCII without control
characters: nearly every album) it is made from joined strings, lower-cased and split in
C, a chunk at a time so the UI thread keeps its turns. Free of Textual.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from picksel.textsafe import printable

_SAFE_ASCII = bytes(range(32, 127)) + b"\n"
"""What ``printable`` leaves as is in ASCII text (and the joined paths' separator)."""


CHUNK = 16_384
"""Paths lower-cased per C call: each call holds the GIL (a few ms here), so the UI
thread is never locked out for longer while the table is built beside it."""


def lowered_paths(paths: Sequence[str]) -> list[str]:
    """``[printable(p).lower() for p in paths]``, faster when paths are plain ASCII."""
    out: list[str] = []
    for start in range(0, len(paths), CHUNK):
        out.extend(_lowered_chunk(paths[start : start + CHUNK]))
    return out


def _lowered_chunk(paths: Sequence[str]) -> list[str]:
    joined = "\n".join(paths)
    if joined.isascii():
        data = joined.encode("ascii")
        # no control character, and no newline but the separators (a name may hold one)
        if not data.translate(None, _SAFE_ASCII) and data.count(b"\n") == len(paths) - 1:
            return joined.lower().split("\n")  # ASCII lower-casing keeps every length
    return [printable(p).lower() for p in paths]


class FindTable:
    """:func:`lowered_paths` of ``paths``, built in a daemon thread from construction;
    :meth:`get` waits for it (only when the user types within the first second at a
    million images)."""

    def __init__(self, paths: Sequence[str]) -> None:
        self._paths = paths
        self._table: list[str] | None = None
        self._done = threading.Event()
        self.thread = threading.Thread(target=self._build, name="picksel-find-table", daemon=True)
        self.thread.start()

    def _build(self) -> None:
        try:
            self._table = lowered_paths(self._paths)
        finally:
            self._done.set()

    def ready(self) -> bool:
        return self._done.is_set()

    def get(self) -> list[str]:
        self._done.wait()
        if self._table is None:  # the thread failed (out of memory?): build it here
            self._table = lowered_paths(self._paths)
        return self._table
