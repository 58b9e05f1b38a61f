"""Snapshot tests of the main screen (pytest-textual-snapshot).

Deterministic on a fresh machine: a fixed album folder name (the title shows it), a
fixed selection seed, the PCA map cached up front (no UMAP thread), graphics forced to
text, and no notifications left on screen. Regenerate with ``--snapshot-update``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tui_app_helpers import index_album, set_field, settle

from picksel.tui.app import PickselApp


@pytest.fixture
def album(small_album: Path) -> Path:
    return index_album(small_album)


def make_app(album: Path) -> PickselApp:
    return PickselApp(album, graphics="text", seed=7, compute_umap=False)


async def _after_run(pilot) -> None:
    app = pilot.app
    await settle(app, pilot)
    set_field(app, "count", "6")
    set_field(app, "iterations", "10")
    await pilot.pause()
    await pilot.press("s")
    await settle(app, pilot)
    app.thumbs.focus()
    await pilot.press("down")
    await pilot.press("x")  # one exclusion so red shows too
    app.clear_notifications()
    await pilot.pause(0.6)  # thumbnails decode in a small pool, the preview waits 0.15 s
    app.clear_notifications()
    await pilot.pause()


def test_main_screen_120x40(album: Path, snap_compare) -> None:
    assert snap_compare(make_app(album), terminal_size=(120, 40), run_before=_after_run)


def test_main_screen_80x24(album: Path, snap_compare) -> None:
    assert snap_compare(make_app(album), terminal_size=(80, 24), run_before=_after_run)


def test_help_screen_80x24(album: Path, snap_compare) -> None:
    async def run_before(pilot) -> None:
        await settle(pilot.app, pilot)
        await pilot.press("question_mark")
        await pilot.pause()

    assert snap_compare(make_app(album), terminal_size=(80, 24), run_before=run_before)
