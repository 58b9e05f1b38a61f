"""Helpers for the app-level TUI tests: an indexed real-image album and a driver."""

from __future__ import annotations

import contextlib
from pathlib import Path

from picksel.state import load_state
from picksel.tui.app import PickselApp


def index_album(album: Path) -> Path:
    """Index ``album`` with the builtin encoder (fast) and cache a PCA map for it, so
    the app never starts a UMAP computation in tests."""
    from picksel.index import build_index
    from picksel.mapping import MapData, pca_map, save_map

    index, _report = build_index(album)
    save_map(album / ".picksel", MapData(pca_map(index.embeddings), "pca", index.fingerprint()))
    return album


OUR_GROUPS = {"open", "select", "export", "index", "quality"}  # not "map" (UMAP) nor DirectoryTree's loader


async def settle(app, pilot, rounds: int = 3) -> None:
    """Wait until workers are done and the messages they posted are handled."""
    from textual.worker import WorkerCancelled

    for _ in range(rounds):
        for worker in [w for w in app.workers if w.group in OUR_GROUPS]:
            with contextlib.suppress(WorkerCancelled):
                await worker.wait()
        await pilot.pause()


def saved_state(app):
    state, _warning = load_state(app.curator.state_dir)
    return state


def set_field(app, field_id: str, value: str) -> None:
    """Type into a sidebar field the way a user would (fires Input.Changed)."""
    from textual.widgets import Input

    app.query_one(f"#{field_id}", Input).value = value


async def wait_until(pilot, predicate, rounds: int = 100) -> bool:
    """Pause until ``predicate()`` holds: on a busy 2-core machine one pause does not
    always let a blur or a worker's message through. Returns the last value."""
    for _ in range(rounds):
        if predicate():
            return True
        await pilot.pause(0.02)
    return bool(predicate())


def make_app(album: Path, **kw) -> PickselApp:
    """The app as the Pilot tests drive it: text graphics, a fixed seed, the cached PCA map."""
    return PickselApp(album, graphics="text", seed=kw.pop("seed", 3), compute_umap=False, **kw)


async def run_selection(app, pilot, count: int = 5, iterations: int = 10) -> None:
    """Type count and iterations into the sidebar and press s, as a user would."""
    set_field(app, "count", str(count))
    set_field(app, "iterations", str(iterations))
    await pilot.pause()
    await pilot.press("s")
    await settle(app, pilot)


async def show_in_preview(app, pilot, rel: str):
    """Focus ``rel``'s row in the list and wait until the small preview shows its picture;
    returns the preview widget."""
    row = app.curator.rows[rel]
    app.thumbs.focus()
    app.thumbs.focus_row(row)
    app.current_row = row
    preview = app.query_one("#preview")
    name = Path(rel).name
    await wait_until(pilot, lambda: preview.path is not None and preview.image is not None
                     and preview.path.name == name)
    return preview
