"""App-wide messages posted by background workers to the UI thread.

Workers run in threads (``@work(thread=True)``); ``post_message`` is thread-safe, so the
worker only ever describes what happened and the app decides what to redraw. Each message
is a small dataclass (Textual's ``Message`` supports that through ``__post_init__``):
the fields are the whole payload, nothing else is shared.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual.message import Message


@dataclass(eq=False)
class SelectionProgress(Message):
    """One more Monte Carlo iteration finished."""

    done: int
    total: int
    text: str = ""


@dataclass(eq=False)
class SelectionFinished(Message):
    """The selection worker ended: ``result`` is a SelectionResult, or None with a reason."""

    result: Any = None
    error: str | None = None
    cancelled: bool = False


@dataclass(eq=False)
class MapProgress(Message):
    """UMAP is being computed in the background (the PCA map is shown meanwhile)."""

    done: int
    total: int
    text: str = ""


@dataclass(eq=False)
class MapReady(Message):
    """A map (``picksel.mapping.MapData``) is ready to replace what is shown."""

    data: Any


@dataclass(eq=False)
class MapFailed(Message):
    """UMAP failed or was cancelled; the PCA map stays."""

    error: str
    cancelled: bool = False


@dataclass(eq=False)
class IndexDamaged(Message):
    """The background check of the vectors (deferred at open) failed: ``curator`` is the
    one that was opened, ``error`` the one-line reason."""

    curator: Any
    error: str


@dataclass(eq=False)
class StateChanged(Message):
    """Album state changed (exclusions, pins, selection...): panes and counts redraw."""

    reason: str = ""


@dataclass(eq=False)
class QualityProgress(Message):
    """The quality check measured ``done`` of ``total`` images not in its cache."""

    done: int
    total: int
    text: str = ""


@dataclass(eq=False)
class QualityFinished(Message):
    """The quality check ended: ``result`` is a CheckResult, or None with a reason.
    ``token`` tells a stale check (of an album re-indexed meanwhile) from the current one."""

    token: int
    result: Any = None
    error: str | None = None
    cancelled: bool = False
