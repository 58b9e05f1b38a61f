"""Errors and the progress/cancel protocol shared by every long operation.

A ``PickselError`` carries a one-line message meant for the user: the CLI prints it
on stderr and exits 1, the TUI shows it in a notification. Anything else escaping
is a bug.
"""

from __future__ import annotations

from collections.abc import Callable

ProgressFn = Callable[[int, int, str], None]
"""``progress(done, total, message)``; called from whatever thread does the work."""

CancelFn = Callable[[], bool]
"""Returns True when the caller wants the work to stop as soon as it safely can."""


class PickselError(Exception):
    """A failure caused by input or environment, explained in one line."""


class UsageError(PickselError):
    """Bad arguments or values (CLI exit code 2)."""


class IndexMissing(PickselError):
    """The album has no index yet."""


class IndexCorrupt(PickselError):
    """An index file exists but cannot be trusted."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so it unwinds like Ctrl-C: temp files are
    removed, workers stopped and the old index kept."""


class Cancelled(Exception):
    """Raised by long operations when ``cancel()`` returned True; nothing half-written remains."""


def no_progress(done: int, total: int, message: str = "") -> None:
    """Default progress callback."""


def never_cancel() -> bool:
    return False
