"""Undo: the journal (picksel.undo), ``picksel undo``, the curator's ``u`` and the
confirmations before ``X`` on many images and ``C``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs
from textual.widgets import Static
from tui_app_helpers import index_album, make_app, run_selection, saved_state, set_field, settle

from picksel import undo
from picksel.state import AlbumState, SavedSelection, load_state
from picksel.statelock import edit_state
from picksel.tui.screens.confirm import ConfirmScreen

SIZE = (120, 40)
NAMES = ["a.png", "b.png", "c.png", "d/e.png", "f.jpg"]


def sel(consensus: list[str], iterations: int = 4) -> SavedSelection:
    return SavedSelection("fps", len(consensus), iterations, 1, "fp",
                          list(consensus), {p: iterations for p in consensus})


states = hs.builds(
    lambda ex, pins, fav, s: AlbumState(excluded=ex - pins, pins=pins, favorites=fav,
                                        selection=sel(s) if s else None),
    hs.sets(hs.sampled_from(NAMES)),
    hs.sets(hs.sampled_from(NAMES)),
    hs.lists(hs.sampled_from(NAMES), unique=True),
    hs.lists(hs.sampled_from(NAMES), unique=True),
)


@settings(max_examples=80, deadline=None)
@given(states, states)
def test_undoing_an_entry_gives_back_the_state_before(before: AlbumState, after: AlbumState) -> None:
    snap = undo.snapshot(before)
    entry = undo.entry_for(snap, after, "test")
    changed = (before.excluded, before.pins, before.favorites, before.selection) != (
        after.excluded, after.pins, after.favorites, after.selection)
    assert (entry is not None) == changed
    if entry is None:
        return
    entry = json.loads(json.dumps(entry))  # as it comes back from undo.json
    undo.apply_entry(after, entry)
    assert after.excluded == before.excluded and after.pins == before.pins
    assert after.favorites == before.favorites and after.selection == before.selection


def test_undo_takes_back_only_its_own_change(tmp_path: Path) -> None:
    with edit_state(tmp_path, action="exclude") as state:
        state.excluded |= {"a.png", "b.png"}
    with edit_state(tmp_path, action="pin") as state:
        state.pins.add("c.png")
    with edit_state(tmp_path, action=None) as state:  # not journaled (like a settings change)
        state.excluded.add("d.png")
        state.settings.count = 7
    with edit_state(tmp_path, action=None) as state:
        done = undo.undo_last(tmp_path, state, lambda: None)
    assert done is not None and done.action == "pin" and "c.png unpinned" in done.summary
    state = load_state(tmp_path)[0]
    assert state.pins == set() and state.excluded == {"a.png", "b.png", "d.png"}
    with edit_state(tmp_path, action=None) as state:
        done = undo.undo_last(tmp_path, state, lambda: None)
    assert done is not None and "2 images included again" in done.summary
    state = load_state(tmp_path)[0]
    assert state.excluded == {"d.png"} and state.settings.count == 7  # others' changes stay


def test_levels_are_bounded(tmp_path: Path) -> None:
    for i in range(undo.UNDO_LEVELS + 5):
        with edit_state(tmp_path, action=f"exclude {i}") as state:
            state.excluded.add(f"{i}.png")
    entries, _ = undo.load_journal(tmp_path)
    assert len(entries) == undo.UNDO_LEVELS == 20
    assert entries[0]["action"] == "exclude 5"


def test_a_damaged_journal_is_moved_aside_not_trusted(tmp_path: Path) -> None:
    (tmp_path / "undo.json").write_text("{not json")
    entries, warning = undo.load_journal(tmp_path)
    assert entries == [] and "moved it to undo.json.corrupt-" in warning
    assert list(tmp_path.glob("undo.json.corrupt-*"))
    os.mkfifo(tmp_path / "undo.json")  # a FIFO is refused, never opened for blocking reads
    entries, warning = undo.load_journal(tmp_path)
    assert entries == [] and "FIFO" in warning


# ---------------------------------------------------------------- the command line


@pytest.fixture
def album(small_album: Path) -> Path:
    return index_album(small_album)


def cli(*argv: object) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "picksel", *map(str, argv)],
                          capture_output=True, text=True, timeout=120)


def test_picksel_undo_walks_back_through_select_favorites_pin_and_exclude(album: Path) -> None:
    from picksel.index import load_index

    paths = load_index(album).paths
    sdir = album / ".picksel"
    assert cli("select", album, "--count", "3", "--iterations", "4", "--seed", "1").returncode == 0
    first = load_state(sdir)[0]
    assert cli("exclude", album, paths[0], paths[1]).returncode == 0
    assert cli("pin", album, paths[2]).returncode == 0
    assert cli("favorites", album, "--set").returncode == 0
    assert cli("select", album, "--count", "4", "--iterations", "5", "--seed", "2").returncode == 0

    r = cli("undo", album)
    assert r.returncode == 0 and r.stdout.startswith("undid select")
    assert "previous selection back" in r.stdout
    assert load_state(sdir)[0].selection == first.selection
    r = cli("undo", album)
    assert "undid favorites --set" in r.stdout and load_state(sdir)[0].favorites == []
    r = cli("undo", album)
    assert "undid pin" in r.stdout and load_state(sdir)[0].pins == set()
    r = cli("undo", album)
    assert "2 images included again" in r.stdout and load_state(sdir)[0].excluded == set()
    r = cli("undo", album)
    assert "selection removed" in r.stdout and load_state(sdir)[0].selection is None
    r = cli("undo", album)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.strip() == "picksel: nothing to undo"


# ---------------------------------------------------------------- the curator


def notes(app) -> list[str]:
    return [n.message for n in app._notifications]


async def test_u_undoes_x_even_after_a_restart(album: Path) -> None:
    app = make_app(album)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("u")
        assert "Nothing to undo" in notes(app)
        rel = app.curator.rel(app.current_row)
        await pilot.press("x")
        await pilot.pause()
        assert rel in saved_state(app).excluded
    app = make_app(album)  # a new session: the journal is on disk
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert rel in app.curator.state.excluded
        await pilot.press("u")
        await pilot.pause()
        assert rel not in saved_state(app).excluded
        assert app.title.endswith("0 excluded)")
        assert any(m.startswith("Undid x") and f"{rel} included again" in m for m in notes(app))


async def test_u_undoes_clear_selection_and_favorites(album: Path) -> None:
    app = make_app(album)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await run_selection(app, pilot)
        chosen = saved_state(app).selection
        await pilot.press("f")
        await pilot.pause()
        assert len(saved_state(app).favorites) == 5
        await pilot.press("c")
        await pilot.pause()
        assert saved_state(app).selection is None
        await pilot.press("u")
        await pilot.pause()
        assert saved_state(app).selection == chosen
        assert "5 of 5 selected" in str(app.query_one("#status", Static).render())
        await pilot.press("u")
        await pilot.pause()
        assert saved_state(app).favorites == []
        await pilot.press("u")  # the run itself
        await pilot.pause()
        assert saved_state(app).selection is None


async def test_X_on_many_images_asks_first_showing_the_number(album: Path) -> None:
    app = make_app(album)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await run_selection(app, pilot)
        expected = set(saved_state(app).selection.at_or_above(50))
        assert len(expected) > 0.1 * app.curator.n  # more than 10% of this small album
        set_field(app, "threshold", "50")
        await pilot.pause()
        await pilot.press("X")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        assert f"Exclude {len(expected)} images" in app.screen.question
        await pilot.press("n")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)
        assert saved_state(app).excluded == set()
        await pilot.press("X", "y")
        await pilot.pause()
        assert saved_state(app).excluded == expected
        await pilot.press("u")
        await pilot.pause()
        assert saved_state(app).excluded == set()


async def test_X_on_few_images_acts_at_once(album: Path) -> None:
    app = make_app(album)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await run_selection(app, pilot, count=1, iterations=1)  # one image at 100%
        expected = set(saved_state(app).selection.at_or_above(100))
        assert 0 < len(expected) <= 0.1 * app.curator.n
        set_field(app, "threshold", "100")
        await pilot.pause()
        await pilot.press("X")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)
        assert saved_state(app).excluded == expected


async def test_C_asks_first_and_u_brings_the_exclusions_back(album: Path) -> None:
    app = make_app(album)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("C")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen) and "No exclusions to clear" in notes(app)
        for _ in range(3):
            await pilot.press("x", "down")
        await pilot.pause()
        excluded = saved_state(app).excluded
        assert len(excluded) == 3
        await pilot.press("C")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen) and "Clear all 3 exclusions?" in app.screen.question
        await pilot.press("escape")
        await pilot.pause()
        assert saved_state(app).excluded == excluded
        await pilot.press("C", "y")
        await pilot.pause()
        assert saved_state(app).excluded == set()
        await pilot.press("u")
        await pilot.pause()
        assert saved_state(app).excluded == excluded
        assert any("3 exclusions back" in m for m in notes(app))


# ---------------------------------------------------------------- redo


@settings(max_examples=60, deadline=None)
@given(states, states)
def test_redo_after_undo_gives_back_the_state_after(before: AlbumState, after: AlbumState) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        sdir = Path(tmp)
        entry = undo.entry_for(undo.snapshot(before), after, "test")
        if entry is None:
            return  # nothing undoable changed: nothing to undo or redo
        undo.record(sdir, entry)
        state = AlbumState(excluded=set(after.excluded), pins=set(after.pins),
                           favorites=list(after.favorites), selection=after.selection)
        assert undo.undo_last(sdir, state, lambda: None) is not None
        done = undo.redo_last(sdir, state, lambda: None)
        assert done is not None
        assert (state.excluded, state.pins, state.favorites) == (
            after.excluded, after.pins, after.favorites)
        assert state.selection == after.selection
        assert undo.redo_last(sdir, state, lambda: None) is None  # one undo, one redo


def test_redo_walks_forward_and_a_new_change_ends_it(tmp_path: Path) -> None:
    for name in ("a.png", "b.png", "c.png"):
        with edit_state(tmp_path, action="exclude") as state:
            state.excluded.add(name)
    for _ in range(2):
        with edit_state(tmp_path, action=None) as state:
            undo.undo_last(tmp_path, state, lambda: None)
    assert load_state(tmp_path)[0].excluded == {"a.png"}
    with edit_state(tmp_path, action=None) as state:
        done = undo.redo_last(tmp_path, state, lambda: None)
    assert done is not None and done.message(with_time=False) == "redid exclude: b.png excluded again"
    assert load_state(tmp_path)[0].excluded == {"a.png", "b.png"}
    with edit_state(tmp_path, action=None) as state:  # the redone change can be undone again
        undo.undo_last(tmp_path, state, lambda: None)
    assert load_state(tmp_path)[0].excluded == {"a.png"}
    with edit_state(tmp_path, action="pin") as state:  # a new change: the undone ones are gone
        state.pins.add("d.png")
    with edit_state(tmp_path, action=None) as state:
        assert undo.redo_last(tmp_path, state, lambda: None) is None


def test_an_old_journal_without_redo_entries_still_loads(tmp_path: Path) -> None:
    (tmp_path / "undo.json").write_text(json.dumps(
        {"version": 1, "entries": [{"action": "exclude", "time": 1.0, "excluded": {"added": ["a.png"]}}]}))
    state = AlbumState(excluded={"a.png"})
    assert undo.redo_last(tmp_path, state, lambda: None) is None
    assert undo.undo_last(tmp_path, state, lambda: None) is not None and state.excluded == set()
    assert undo.redo_last(tmp_path, state, lambda: None) is not None and state.excluded == {"a.png"}


def test_picksel_redo_takes_forward_what_undo_took_back(album: Path) -> None:
    from picksel.index import load_index

    paths = load_index(album).paths
    sdir = album / ".picksel"
    r = cli("redo", album)
    assert r.returncode == 1 and r.stderr.strip() == "picksel: nothing to redo"
    assert cli("exclude", album, paths[0], paths[1]).returncode == 0
    assert cli("undo", album).returncode == 0 and load_state(sdir)[0].excluded == set()
    r = cli("redo", album)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("redid exclude") and "2 exclusions back" in r.stdout
    assert load_state(sdir)[0].excluded == {paths[0], paths[1]}


async def test_shift_u_redoes_what_u_undid(album: Path) -> None:
    app = make_app(album)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("U")
        assert "Nothing to redo" in notes(app)
        rel = app.curator.rel(app.current_row)
        await pilot.press("x")
        await pilot.pause()
        await pilot.press("u")
        await pilot.pause()
        assert rel not in saved_state(app).excluded
        await pilot.press("U")
        await pilot.pause()
        assert rel in saved_state(app).excluded
        assert any(m.startswith("Redid x") for m in notes(app))
