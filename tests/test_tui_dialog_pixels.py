"""In sixel (or kitty) mode the screen behind a dialog keeps its pictures.

A dialog draws the screen behind it as text cells; textual-image's sixel widget drew
nothing there, so the map vanished behind the preview and every dialog (reported from
a real xterm). Now the map is drawn behind a dialog in braille and the previews in half
cells; when the dialog closes, the screen on top draws sixels again.

Rendered as the compositor renders the whole screen (``render_strips``), the same lines
Textual writes to the terminal.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tui_app_helpers import index_album, run_selection, settle, show_in_preview, wait_until

from picksel.tui.app import PickselApp

SIZE = (120, 40)
SIXEL_START = "\x1bP"


@pytest.fixture
def album(small_album: Path) -> Path:
    return index_album(small_album)


def _screen_text(screen) -> list[str]:
    return [strip.text for strip in screen._compositor.render_strips()]  # noqa: SLF001


def _braille(text: str) -> int:
    return sum(1 for ch in text if 0x2801 <= ord(ch) <= 0x28FF)


@pytest.mark.parametrize("key", ["enter", "question_mark", "e"])
async def test_the_map_stays_drawn_behind_a_dialog_in_sixel_mode(album: Path, key: str) -> None:
    app = PickselApp(album, graphics="sixel", seed=3, compute_umap=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await run_selection(app, pilot)
        app.thumbs.focus()
        await pilot.pause()
        base = app.screen
        assert any(SIXEL_START in line for line in _screen_text(base))  # the map is a sixel

        await pilot.press(key)
        await wait_until(pilot, lambda: app.screen is not base)
        await pilot.pause()
        dialog = app.screen.query_one(".dialog").region
        plot = app.map_view.region
        # the map's plot cells the dialog leaves free, on the screen as written now
        lines = _screen_text(app.screen)
        free = [
            lines[y][plot.x + 1 : min(plot.right - 1, dialog.x)]
            for y in range(plot.y + 2, plot.bottom - 2)
        ]
        assert sum(_braille(text) for text in free) >= 3  # points, not a blank pane

        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is base)
        await pilot.pause()
        assert any(SIXEL_START in line for line in _screen_text(base))  # pixels again


async def test_a_sixel_preview_behind_a_dialog_is_drawn_in_half_cells(album: Path) -> None:
    """The small preview under the list: behind the help dialog its picture is cells."""
    app = PickselApp(album, graphics="sixel", seed=3, compute_umap=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(app, pilot)
        preview = await show_in_preview(app, pilot, "photos/00_astronaut.jpg")
        await pilot.pause()
        image = preview.query_one(".preview-image")
        area = image.region
        base = app.screen
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: app.screen is not base)
        await pilot.pause()
        dialog = app.screen.query_one(".dialog").region
        lines = _screen_text(app.screen)
        below = [lines[y][area.x : area.right] for y in range(max(area.y, dialog.bottom), area.bottom)]
        assert below, "the dialog covers the whole preview: make the screen taller"
        assert sum(text.count("▀") for text in below) > area.width // 2


async def test_the_map_stays_drawn_behind_a_dialog_in_kitty_mode(album: Path) -> None:
    """Kitty images are placeholder cells whose colour is the image id: tinted behind a
    dialog they named no image. Braille there; placeholders again once it closes."""
    placeholder = "\U0010eeee"
    app = PickselApp(album, graphics="kitty", seed=3, compute_umap=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await run_selection(app, pilot)
        app.thumbs.focus()
        await pilot.pause()
        base = app.screen
        assert any(placeholder in line for line in _screen_text(base))

        await pilot.press("question_mark")
        await wait_until(pilot, lambda: app.screen is not base)
        await pilot.pause()
        lines = _screen_text(app.screen)
        assert not any(placeholder in line for line in lines)
        dialog = app.screen.query_one(".dialog").region
        plot = app.map_view.region
        free = [lines[y][plot.x + 1 : min(plot.right - 1, dialog.x)] for y in range(plot.y + 2, plot.bottom - 2)]
        assert sum(_braille(text) for text in free) >= 3

        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is base)
        await pilot.pause()
        assert any(placeholder in line for line in _screen_text(base))
