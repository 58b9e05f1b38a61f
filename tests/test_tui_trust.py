"""Pilot tests of issue 9: the curator acts on what the user sees.

Saved settings change only when the user commits a valid value; the current image is
always the highlighted row of the visible list (or the map cursor while the map has the
focus); the preview steps through the list; small terminals keep what is needed to work
on screen; labels, the footer and notifications say what will really happen.
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import Future
from pathlib import Path

import pytest
from textual import events
from textual.widgets import Button, Input
from tui_app_helpers import index_album, make_app, run_selection, saved_state, set_field, settle

from picksel import state as st
from picksel.tui.app import PickselApp

SIZE = (120, 40)


@pytest.fixture
def album(small_album: Path) -> Path:
    return index_album(small_album)


def label(app, selector: str) -> str:
    widget = app.query_one(selector)
    return str(widget.label if isinstance(widget, Button) else widget.render())


def assert_in_step(app) -> None:
    """The current image is the highlighted row of the list, and the map cursor is on it."""
    row = app.current_row
    assert row == app.thumbs.highlighted_row
    if row is not None:
        assert row in app.thumbs.rows.tolist()
        assert app.map_view.cursor_row == row


# ---------------------------------------------------------------- 1. settings at start


async def test_opening_the_album_keeps_the_saved_settings(album: Path) -> None:
    """`picksel select --count 7 --iterations 3 --method kmeans` then the TUI: the fields
    show 7/3/K-Means and state.json still holds them after the curator opened and quit."""
    done = subprocess.run(
        [sys.executable, "-m", "picksel", "select", str(album), "--count", "7",
         "--iterations", "3", "--method", "kmeans", "--seed", "1"],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    sdir = album / ".picksel"
    state, _ = st.load_state(sdir)
    state.settings.threshold = 55
    st.save_state(sdir, state)
    for slow_disk in (True, False):
        app = make_app(album)
        loaded = app._loading.result(timeout=60)
        if slow_disk:  # the screen is up (inputs at their defaults) before the album is read
            app._loading = Future()
        async with app.run_test(size=SIZE) as pilot:
            if slow_disk:
                await pilot.pause(0.3)
                app._loading.set_result(loaded)
            await settle(app, pilot)
            # In a real terminal the inputs' own Changed messages for their initial values
            # (20 / 20 / 90) arrive after the album opened (seen with a traced save): they
            # must not count as the user's edits.
            for field, initial in (("count", "20"), ("iterations", "20"), ("threshold", "90")):
                widget = app.query_one(f"#{field}", Input)
                widget.post_message(Input.Changed(widget, initial))
            await pilot.pause(0.3)
            assert app.query_one("#count", Input).value == "7"
            assert app.query_one("#iterations", Input).value == "3"
            assert app.query_one("#threshold", Input).value == "55"
            assert app.query_one("#method-kmeans").value
            assert label(app, "#exclude-threshold").startswith("Exclude ≥ 55%")
        s = st.load_state(sdir)[0].settings
        assert (s.count, s.iterations, s.method, s.threshold) == (7, 3, "kmeans", 55)


# ---------------------------------------------------------------- 2. committed values only


async def test_keystrokes_are_not_saved_until_the_value_is_committed(album: Path) -> None:
    app = make_app(album)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        saved = saved_state(app).settings.threshold
        field = app.query_one("#threshold", Input)
        field.focus()
        await pilot.pause()
        await pilot.press("end", *["backspace"] * 5)  # empty field
        await pilot.press("5", "backspace", "q")
        await pilot.pause()
        assert saved_state(app).settings.threshold == saved  # nothing typed was saved
        assert field.value == "q"
        # the button says X would do nothing sensible now, not the old threshold
        assert label(app, "#exclude-threshold") == "Exclude ≥ ?  X"
        assert "not a whole number" in label(app, "#threshold-error")
        await pilot.press("escape")  # leave the field: an invalid value stays unsaved
        await pilot.pause()
        assert app.focused is app.thumbs
        assert saved_state(app).settings.threshold == saved
        # 101 is out of range: still nothing saved, the label does not lie
        set_field(app, "threshold", "101")
        await pilot.pause()
        assert label(app, "#exclude-threshold") == "Exclude ≥ ?  X"
        await pilot.press("X")
        await pilot.pause()
        assert saved_state(app).excluded == set()
        assert saved_state(app).settings.threshold == saved
        # a valid value, committed by leaving the field, is saved
        field.focus()
        await pilot.pause()
        await pilot.press("end", *["backspace"] * 5, "6", "0")
        await pilot.pause()
        assert label(app, "#exclude-threshold") == "Exclude ≥ 60%  X"
        assert saved_state(app).settings.threshold == saved
        await pilot.press("tab")
        await pilot.pause()
        assert saved_state(app).settings.threshold == 60


async def test_count_is_saved_on_enter_and_on_run_not_while_typing(album: Path) -> None:
    app = make_app(album)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        count = app.query_one("#count", Input)
        count.focus()
        await pilot.press("end", *["backspace"] * 5, "4")
        await pilot.pause()
        assert saved_state(app).settings.count == 20
        await pilot.press("enter")  # enter runs the selection with 4, and saves it
        await settle(app, pilot)
        state = saved_state(app)
        assert state.settings.count == 4 and state.selection.count == 4


# ---------------------------------------------------------------- 3. the current image


async def test_filter_keeps_current_image_on_the_highlighted_row(album: Path) -> None:
    app = make_app(album)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await run_selection(app, pilot, count=6, iterations=10)
        c = app.curator
        app.thumbs.focus()
        # exclude two images that are not in the selection
        for _ in range(8):
            await pilot.press("down")
        excluded = []
        for _ in range(2):
            excluded.append(c.rel(app.current_row))
            await pilot.press("x", "down")
        await pilot.pause()
        assert saved_state(app).excluded == set(excluded)
        await pilot.press("home")
        await pilot.pause()
        top = app.current_row
        for _ in range(2):  # all → selected → excluded
            await pilot.press("v")
            await pilot.pause()
            assert_in_step(app)
        assert app.thumbs.filter == "excluded"
        # the image at the top of the selection is not in the excluded list: the current
        # image moved with the highlight, and x acts on the image the user sees
        assert app.current_row != top
        shown = c.rel(app.current_row)
        assert shown in excluded
        await pilot.press("x")  # include it: it leaves the list, the next one is current
        await pilot.pause()
        assert shown not in saved_state(app).excluded
        assert saved_state(app).excluded == set(excluded) - {shown}
        assert_in_step(app)
        assert c.rel(app.current_row) in excluded
        await pilot.press("x")  # the last excluded image: the list is empty
        await pilot.pause()
        assert saved_state(app).excluded == set()
        assert len(app.thumbs.rows) == 0 and app.current_row is None
        await pilot.press("x")  # nothing on screen: nothing is excluded
        await pilot.pause()
        assert saved_state(app).excluded == set()
        assert any("No current image" in n.message for n in app._notifications)


async def test_find_and_rerun_keep_current_image_on_the_highlighted_row(album: Path) -> None:
    app = make_app(album)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        app.thumbs.focus()
        await pilot.press("end")
        await pilot.pause()
        await pilot.press("slash", *"digits/0")
        await pilot.pause()
        assert_in_step(app)
        assert "digits/0" in app.curator.rel(app.current_row)
        await pilot.press("enter")
        await run_selection(app, pilot, count=4, iterations=5)
        assert_in_step(app)
        await pilot.press("v")  # selected ∩ find
        await pilot.pause()
        assert_in_step(app)
        await pilot.press("escape")  # drop the find
        await pilot.pause()
        assert_in_step(app)
        rel = app.curator.rel(app.current_row)
        await pilot.press("x")
        await pilot.pause()
        assert saved_state(app).excluded == {rel}


async def test_map_cursor_is_current_while_the_map_has_focus(album: Path) -> None:
    app = make_app(album)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await run_selection(app, pilot, count=4, iterations=5)
        app.map_view.focus()
        await pilot.press("right", "down")
        await pilot.pause()
        row = app.map_view.cursor_row
        assert app.current_row == row == app.thumbs.highlighted_row
        await pilot.press("x")
        await pilot.pause()
        assert saved_state(app).excluded == {app.curator.rel(row)}


# ---------------------------------------------------------------- 6. preview stepping


def plain(renderable) -> str:
    from rich.console import Console

    console = Console(width=100, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
    console.print(renderable)
    return console.export_text()


def footer_keys(app) -> set[str]:
    """The keys the footer of the active screen offers."""
    return {b.key for _ns, b, enabled, _tip in app.screen.active_bindings.values()
            if b.show and enabled}


async def test_preview_steps_through_the_visible_list_and_acts_on_the_shown_image(album: Path) -> None:
    from picksel.tui.screens.preview import PreviewScreen, details_table

    app = make_app(album)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await run_selection(app, pilot, count=5, iterations=6)
        app.thumbs.focus()
        await pilot.press("v")  # the selected images only
        await pilot.pause()
        listed = [int(r) for r in app.thumbs.rows]
        assert len(listed) == 5
        await pilot.press("enter")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, PreviewScreen) and screen.row == listed[0]
        for want in listed[1:3]:
            await pilot.press("right")
            await pilot.pause()
            assert screen.row == want and screen.details.rel == app.curator.rel(want)
        await pilot.press("k")  # back one
        await pilot.pause()
        assert screen.row == listed[1]
        await pilot.press("j")
        await pilot.pause()
        shown = screen.row
        assert shown == listed[2]
        # x and p act on the image shown, and the facts say so at once
        await pilot.press("x")
        await pilot.pause()
        assert saved_state(app).excluded == {app.curator.rel(shown)}
        assert screen.details.excluded and "excluded" in plain(details_table(screen.details))
        await pilot.press("p")
        await pilot.pause()
        assert saved_state(app).pins == {app.curator.rel(shown)}
        assert screen.details.pinned
        # only what works here is offered: no s (select), e (export), C...
        keys = footer_keys(app)
        assert {"right", "left", "x", "p", "escape"} <= keys
        assert not keys & {"s", "e", "i", "C", "c", "f", "v", "slash"}
        await pilot.press("s")  # does nothing under the preview
        await pilot.pause()
        assert app.job is None and saved_state(app).selection.count == 5
        for _ in range(5):  # past the end: stays on the last image
            await pilot.press("right")
            await pilot.pause()
        assert screen.row == listed[-1]
        await pilot.press("escape")
        await pilot.pause()
        # the list and the map followed the preview
        assert app.current_row == listed[-1] == app.map_view.cursor_row


# ---------------------------------------------------------------- 7. small terminals

NEEDED = ("#method", "#count", "#iterations", "#run", "#status", "#legend")


def hidden_needs(app) -> list[str]:
    """The controls needed to work that are not wholly inside the sidebar's visible area."""
    area = app.sidebar.content_region
    out = []
    for selector in NEEDED:
        region = app.query_one(selector).region
        if region.area == 0 or area.intersection(region) != region:
            out.append(selector)
    legend = str(app.query_one("#legend").render())
    if app.query_one("#legend").region.height < 4 or legend.count("●") != 4:
        out.append("#legend rows")
    return out


@pytest.mark.parametrize("size", [(80, 24), (60, 20)])
async def test_small_terminals_keep_what_is_needed_on_screen(album: Path, size) -> None:
    app = make_app(album)
    async with app.run_test(size=size) as pilot:
        await settle(app, pilot)
        await pilot.pause()
        assert hidden_needs(app) == []
        await run_selection(app, pilot, count=6, iterations=10)
        app.sidebar.scroll_home(animate=False)
        await pilot.pause()
        assert hidden_needs(app) == []
        set_field(app, "count", "500")  # a note under Count takes a line too
        await pilot.pause()
        assert app.query_one("#count-error").display
        assert hidden_needs(app) == []


# ---------------------------------------------------------------- 12. count above the album


async def test_count_above_the_album_says_so_and_keeps_a_sensible_number(album: Path) -> None:
    app = make_app(album)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        n = app.curator.n
        app.thumbs.focus()
        await pilot.press("x")  # one excluded: one image fewer to pick from
        await pilot.pause()
        count = app.query_one("#count", Input)
        count.focus()
        await pilot.press("end", *["backspace"] * 5, *"99999999")
        await pilot.pause()
        assert count.value == "99999999"  # not silently cut to 9999999
        assert label(app, "#count-error") == f"only {n - 1:,} images available"
        await pilot.press("enter")  # runs with what there is
        await settle(app, pilot)
        state = saved_state(app)
        assert state.selection.count == n - 1 and state.settings.count == n - 1
        assert count.value == str(n - 1)


def test_cli_count_above_the_album_says_so_and_saves_what_applies(album: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "picksel", "select", str(album), "--count", "5000",
         "--iterations", "2", "--seed", "1"],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    n = len(st.load_state(album / ".picksel")[0].selection.consensus)
    assert f"only {n:,} images available (asked for 5,000)" in done.stderr
    assert f"{n} of {n} selected" in done.stderr and "of 5000" not in done.stderr
    assert st.load_state(album / ".picksel")[0].settings.count == n


# ---------------------------------------------------------------- 9. graphics modes


async def test_graphics_messages_say_what_each_mode_does_here(album: Path, monkeypatch) -> None:
    """The test terminal reports no pixel graphics (like tmux): forcing sixel or kitty
    warns, and auto's message names what the map header shows."""
    monkeypatch.setenv("TMUX", "/tmp/tmux-0/default,1,0")
    app = PickselApp(album, graphics="auto", seed=3, compute_umap=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        seen = []
        for _ in range(5):  # auto → sixel → kitty → half-cell → text → auto
            app.clear_notifications()
            await pilot.press("g")
            for _ in range(50):  # the toast is posted, then added: on a busy machine later
                await pilot.pause()
                if list(app._notifications):
                    break
            (note,) = list(app._notifications)
            header = app.map_view._build_label(110).text
            seen.append((app.map_view.graphics.value, note.severity, note.message, header))
        by_mode = {mode: (sev, msg, head) for mode, sev, msg, head in seen}
        for forced in ("sixel", "kitty"):
            sev, msg, head = by_mode[forced]
            assert sev == "warning" and "did not report" in msg and "tmux" in msg
            assert f"{forced}?" in head  # the header flags it too
        sev, msg, head = by_mode["auto"]
        assert sev == "information" and "map draws braille" in msg and "braille" in head
        assert "no pixel graphics" in msg
        sev, msg, _ = by_mode["halfcell"]
        assert sev == "information" and "map draws half-cell" in msg


# ---------------------------------------------------------------- 10. footer in a field


async def test_footer_inside_a_field_says_what_enter_and_escape_do(album: Path) -> None:
    app = make_app(album)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        for field, run in (("count", "run"), ("iterations", "run"), ("threshold", "exclude ≥ T")):
            app.query_one(f"#{field}", Input).focus()
            await pilot.pause()
            shown = {b.key: b.description for _ns, b, enabled, _tip
                     in app.screen.active_bindings.values() if b.show and enabled}
            assert shown.get("enter") == run and shown.get("escape") == "back", (field, shown)
        await pilot.press("escape")
        await pilot.pause()
        assert app.focused is app.thumbs


# ---------------------------------------------------------------- 11. notifications


async def test_notifications_do_not_stack_over_the_list_and_sidebar(album: Path) -> None:
    app = make_app(album)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(app, pilot)
        app.thumbs.focus()
        await pilot.pause()
        # three changes from keys arriving in one burst (a fast typist, a paste): three
        # messages, posted before any of them is shown
        for key in "xjxjx":
            app.post_message(events.Key(key, key))
        await pilot.pause(0.3)
        assert len(saved_state(app).excluded) == 3
        infos = [n for n in app._notifications if n.severity == "information"]
        assert len(infos) == 1 and infos[0].message.startswith("Excluded ")
        assert infos[0].timeout <= 3
        toasts = list(app.screen.query("Toast"))
        assert len(toasts) == 1
        region = toasts[0].region
        assert region.height <= 2  # one line (plus a title line at most)
        for pane in (app.thumbs, app.sidebar):
            assert not region.overlaps(pane.region), pane


async def test_palette_commands_still_run_though_dialog_keys_are_off(album: Path) -> None:
    """Main-screen actions are off while a dialog is up; the command palette is one, and
    its command must still run once it closed."""
    app = make_app(album)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        app.thumbs.focus()
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Cycle list filter")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await pilot.pause(0.3)
        assert app.thumbs.filter == "selected"
