"""Pilot tests of the how-many screen (n): the curve in a worker, knee, count, escape."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from textual.widgets import Input, ProgressBar, Static
from tui_app_helpers import index_album, make_app, saved_state, settle

from picksel.curve import CURVE_FILENAME, covering_curve
from picksel.tui.screens.curve import CurveScreen

SIZE = (120, 40)


@pytest.fixture
def album(small_album: Path) -> Path:
    return index_album(small_album)


async def curve_done(app, pilot) -> CurveScreen:
    screen = app.screen
    assert isinstance(screen, CurveScreen)
    for worker in [w for w in app.workers if w.group == "curve"]:
        await worker.wait()
    await pilot.pause()
    await pilot.pause()
    return screen


async def test_n_opens_the_curve_full_screen_with_knee_and_count(album: Path) -> None:
    app = make_app(album)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("n")
        screen = await curve_done(app, pilot)
        c = app.curator
        expected = covering_curve(c.index.embeddings, 1000)
        assert screen.curve is not None
        np.testing.assert_allclose(screen.curve.radius, expected.radius, atol=1e-9)
        note = str(screen.query_one("#curve-note", Static).render())
        assert f"Suggested count: {expected.knee}" in note
        assert f"now {c.settings.count}" in note
        chart = str(screen.query_one("#curve-chart", Static).render())
        assert f"knee: {expected.knee}" in chart and "covering radius" in chart
        box = screen.query_one(".curve-dialog")
        assert box.outer_size.width == SIZE[0] and box.outer_size.height >= SIZE[1] - 1  # full screen
        assert not screen.query_one("#curve-progress", ProgressBar).display
        assert (c.state_dir / CURVE_FILENAME).is_file()
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, CurveScreen)
        assert c.settings.count == saved_state(app).settings.count  # escape changes nothing


async def test_enter_sets_the_suggested_count_through_the_sidebar(album: Path) -> None:
    app = make_app(album)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await app.run_action("curve")  # the palette's way in: the same action
        screen = await curve_done(app, pilot)
        knee = screen.curve.knee
        await pilot.press("enter")
        await pilot.pause()
        assert not isinstance(app.screen, CurveScreen)
        assert app.query_one("#count", Input).value == str(knee)
        assert saved_state(app).settings.count == knee


async def test_an_exclusion_changes_the_curve(album: Path) -> None:
    app = make_app(album)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("n")
        first = (await curve_done(app, pilot)).curve
        await pilot.press("escape")
        await pilot.pause()
        app.current_row = int(first.picks[0])
        await pilot.press("x")
        await settle(app, pilot)
        await pilot.press("n")
        second = (await curve_done(app, pilot)).curve
        assert int(first.picks[0]) not in second.picks.tolist()
        assert second.k.size == first.k.size - 1


def test_chart_fills_the_size_it_is_given_whatever_the_tty() -> None:
    from picksel.tui.curvechart import chart_text

    k = np.arange(1, 1001)
    r = 0.2 + 0.8 * np.exp(-k / 40.0)
    for width, height in ((60, 12), (230, 70)):
        lines = chart_text(k, r, 70, 20, width, height).plain.splitlines()
        assert len(lines) == height and max(map(len, lines)) == width
        assert any("knee: 70" in line for line in lines) and any("now: 20" in line for line in lines)
        axis = lines[-2]  # k ticks: whole numbers, not 1.7e2
        assert "1,000" in axis and "e2" not in axis and " 1 " in axis
