"""Pilot tests of the picksel app: every curator flow on a small real-image album."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from textual.widgets import Input, Static
from tui_app_helpers import (
    index_album,
    make_app,
    run_selection,
    saved_state,
    set_field,
    settle,
    wait_until,
)

from picksel.errors import Cancelled
from picksel.tui.screens.confirm import ConfirmScreen
from picksel.tui.screens.export import ExportScreen
from picksel.tui.screens.help import HelpScreen
from picksel.tui.screens.indexing import IndexingScreen
from picksel.tui.screens.inventory import InventoryScreen
from picksel.tui.screens.preview import PreviewScreen
from picksel.tui.viewstate import STATE_EXCLUDED, STATE_NONE

SIZE = (120, 40)


@pytest.fixture
def album(small_album: Path) -> Path:
    return index_album(small_album)


def status(app) -> str:
    return str(app.query_one("#status", Static).render())


async def test_opens_with_title_counts_and_map(album: Path) -> None:
    app = make_app(album)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        n = app.curator.n
        assert n >= 10
        assert app.title == f"picksel — album ({n} images, 0 excluded)"
        assert "no selection yet" in status(app)
        assert app.map_view.cursor_row is not None
        assert app.current_row == app.map_view.cursor_row
        assert app.thumbs.highlighted_row == app.current_row
        label = app.map_view._label
        assert label.startswith("map: ")


async def test_select_shows_on_both_panes_and_is_saved(album: Path) -> None:
    app = make_app(album)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await run_selection(app, pilot, count=5, iterations=10)
        sel = saved_state(app).selection
        assert sel is not None and sel.count == 5 and sel.iterations == 10 and sel.seed == 3
        assert len(sel.consensus) == 5
        assert status(app) == "5 of 5 selected (0 excluded)"
        vm = app._vm
        assert int((vm.states != STATE_NONE).sum()) == 5
        assert np.array_equal(app.map_view._states, vm.states)
        assert app.thumbs.model is vm
        # the list shows the selected images first, in consensus order of votes
        first = app.thumbs.rows[:5]
        assert set(int(r) for r in first) == {app.curator.rows[p] for p in sel.consensus}
        assert app.query_one("#chart", Static).display


async def test_progress_bar_advances_and_escape_cancels(album: Path, monkeypatch) -> None:
    """The worker reports each iteration and stops on escape; the old selection stays."""
    import picksel.select as select_mod

    started = threading.Event()

    def slow_selection(embeddings, *, method, count, iterations, seed=None, excluded=None,
                       pinned=None, progress=None, cancel=None):
        progress(7, iterations, f"Iteration 7/{iterations}")
        started.set()
        while not cancel():
            threading.Event().wait(0.01)
        raise Cancelled()

    app = make_app(album)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        monkeypatch.setattr(select_mod, "run_selection", slow_selection)
        await pilot.press("s")
        assert started.wait(5)
        await pilot.pause(0.1)
        assert app.job is not None
        label = str(app.query_one("#progress-label", Static).render())
        assert label == "Iteration 7/20"
        assert app.query_one("#progress").display
        await pilot.press("escape")
        await settle(app, pilot)
        assert app.job is None
        assert saved_state(app).selection is None
        assert "Cancelled" in str(app.query_one("#progress-label", Static).render())


async def test_progress_messages_are_throttled_and_the_last_one_arrives(album: Path, monkeypatch) -> None:
    """A selection reporting every step (FPS counts steps x iterations) must not flood
    the UI thread with messages: each one is a layout and redraw the worker waits for."""
    import picksel.select as select_mod

    shown: list[tuple[int, int, str]] = []
    units = 20_000

    def chatty_selection(embeddings, *, method, count, iterations, seed=None, excluded=None,
                         pinned=None, progress=None, cancel=None):
        for done in range(1, units + 1):
            progress(done, units, f"{done * 100 // units}% of {iterations} iterations")
        raise Cancelled()

    app = make_app(album)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        real = app.sidebar.show_progress
        monkeypatch.setattr(app.sidebar, "show_progress",
                            lambda d, t, text="": (shown.append((d, t, text)), real(d, t, text)))
        monkeypatch.setattr(select_mod, "run_selection", chatty_selection)
        await pilot.press("s")
        await settle(app, pilot)
    assert shown and len(shown) < units // 20
    assert shown[-1] == (units, units, "100% of 20 iterations")


async def test_exclude_by_key_toggles_and_persists(album: Path) -> None:
    app = make_app(album)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        app.thumbs.focus()
        await pilot.press("down")
        row = app.current_row
        rel = app.curator.rel(row)
        await pilot.press("x")
        assert rel in saved_state(app).excluded
        assert app._vm.states[row] == STATE_EXCLUDED
        assert app.map_view._states[row] == STATE_EXCLUDED
        assert app.title.endswith("1 excluded)")
        await pilot.press("x")
        assert rel not in saved_state(app).excluded
        assert app.title.endswith("0 excluded)")


async def test_excluded_images_are_not_selected_again(album: Path) -> None:
    app = make_app(album)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await run_selection(app, pilot, count=4, iterations=5)
        first = saved_state(app).selection.consensus
        for rel in first:
            app.current_row = app.curator.rows[rel]
            await pilot.press("x")
        await pilot.press("s")
        await settle(app, pilot)
        second = saved_state(app).selection.consensus
        assert not set(first) & set(second)
        assert status(app) == "4 of 4 selected (4 excluded)"


async def test_exclude_at_or_above_threshold_and_clear(album: Path) -> None:
    app = make_app(album)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await run_selection(app, pilot, count=5, iterations=10)
        sel = saved_state(app).selection
        expected = set(sel.at_or_above(50))
        set_field(app, "threshold", "50")
        await pilot.pause()
        await pilot.press("X")  # running commits the threshold it used
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)  # more than 10% of this small album
        await pilot.press("y")
        await pilot.pause()
        assert saved_state(app).settings.threshold == 50
        assert saved_state(app).excluded == expected
        await wait_until(pilot, lambda: any(f"Excluded {len(expected)} new" in n.message for n in app._notifications))
        assert any(f"Excluded {len(expected)} new" in n.message for n in app._notifications)
        await pilot.press("X")  # nothing new the second time
        await wait_until(pilot, lambda: any("Excluded 0 new images" in n.message for n in app._notifications))
        assert any("Excluded 0 new images" in n.message for n in app._notifications)
        await pilot.press("C", "y")
        await pilot.pause()
        assert saved_state(app).excluded == set()
        await pilot.press("c")
        assert saved_state(app).selection is None
        assert "no selection yet" in status(app)


async def test_pin_and_favorites(album: Path) -> None:
    app = make_app(album)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("f")  # no selection yet: a message, no crash
        assert saved_state(app).favorites == []
        app.thumbs.focus()
        await pilot.press("end")
        pinned_rel = app.curator.rel(app.current_row)
        await pilot.press("p")
        assert saved_state(app).pins == {pinned_rel}
        await run_selection(app, pilot, count=3, iterations=4)
        st = saved_state(app)
        assert pinned_rel in st.selection.consensus
        await pilot.press("f")
        assert saved_state(app).favorites == app.curator.included_rels()
        assert app._vm.favorite.sum() == 3


async def test_bad_inputs_show_messages_and_are_not_saved(album: Path) -> None:
    app = make_app(album)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        before = saved_state(app).settings.count
        set_field(app, "count", "abc")
        await pilot.pause()
        err = app.query_one("#count-error", Static)
        assert err.display and "not a whole number" in str(err.render())
        set_field(app, "iterations", "500")
        await pilot.pause()
        assert "at most 100" in str(app.query_one("#iterations-error", Static).render())
        set_field(app, "threshold", "0")
        await pilot.pause()
        assert "at least 1" in str(app.query_one("#threshold-error", Static).render())
        await pilot.press("s")
        await settle(app, pilot)
        assert saved_state(app).selection is None
        assert saved_state(app).settings.count == before
        await wait_until(pilot, lambda: any(n.severity == "error" for n in app._notifications))
        assert any(n.severity == "error" for n in app._notifications)
        set_field(app, "count", "7")
        await pilot.pause()
        assert not app.query_one("#count-error", Static).display
        assert saved_state(app).settings.count == before  # typed, not committed yet
        app.query_one("#count", Input).focus()
        await pilot.pause()
        app.thumbs.focus()  # leaving the field commits it
        await wait_until(pilot, lambda: saved_state(app).settings.count == 7)
        assert saved_state(app).settings.count == 7


async def test_method_switch_and_settings_persist(album: Path) -> None:
    app = make_app(album)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("m")
        assert saved_state(app).settings.method == "kmeans"
        assert app.query_one("#method-kmeans").value
        set_field(app, "count", "6")
        await pilot.pause()
        await pilot.press("s")
        await settle(app, pilot)
        assert saved_state(app).selection.method == "kmeans"
    app2 = make_app(album)
    async with app2.run_test(size=SIZE) as pilot:
        await settle(app2, pilot)
        assert app2.query_one("#count", Input).value == "6"
        assert app2.query_one("#method-kmeans").value
        assert status(app2) == "6 of 6 selected (0 excluded)"
        # reopened on the top of the saved selection, map cursor on the same image
        top = app2.curator.rows[saved_state(app2).selection.consensus[0]]
        assert app2.thumbs.highlighted_row == top == app2.map_view.cursor_row == app2.current_row


async def test_chosen_method_is_readable_without_colour(album: Path) -> None:
    # NO_COLOR / monochrome: the radio dots themselves must differ, not just their colour.
    app = make_app(album)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)

        def dots() -> tuple[str, str]:
            fps, km = (str(app.query_one(f"#method-{m}").render()) for m in ("fps", "kmeans"))
            return fps[1], km[1]

        assert dots() == ("●", "○")
        await pilot.press("m")
        await pilot.pause()
        assert dots() == ("○", "●")


def _cli_excludes(album: Path, rel: str) -> None:
    """What `picksel exclude ALBUM REL` does, from another process's point of view."""
    from picksel import state as st

    sdir = album / ".picksel"
    state, _ = st.load_state(sdir)
    st.set_excluded(state, [rel])
    st.save_state(sdir, state)


async def test_changes_by_another_picksel_are_shown_and_never_undone(album: Path) -> None:
    app = make_app(album)
    app.STATE_POLL = 3600.0  # the test calls the check itself, at known moments
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        c = app.curator
        first, second, third = c.paths[0], c.paths[1], c.paths[2]
        _cli_excludes(album, first)
        # our own next change must not drop the other process's exclusion
        app.current_row = c.rows[second]
        await pilot.press("x")
        await pilot.pause()
        assert saved_state(app).excluded >= {first, second}
        # and the periodic check shows a change made while we do nothing
        _cli_excludes(album, third)
        app._watch_state()
        await pilot.pause()
        assert app.title.endswith("(" + f"{c.n} images, 3 excluded)")
        await wait_until(pilot, lambda: any("changed by another picksel" in n.message for n in app._notifications))
        assert any("changed by another picksel" in n.message for n in app._notifications)
        app._watch_state()  # nothing new: no reload, no second notice
        await pilot.pause()
        assert sum("changed by another picksel" in n.message for n in app._notifications) == 1


async def test_find_narrows_the_list_live_and_escape_drops_it(album: Path) -> None:
    app = make_app(album)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        c = app.curator
        want = sorted(i for i, p in enumerate(c.paths) if "digits/" in p.lower())
        assert 0 < len(want) < c.n
        await pilot.press("slash")
        await pilot.pause()
        find = app.query_one("#find")
        assert find.display and app.focused is find
        await pilot.press(*"DIGITS/")  # case does not matter
        await pilot.pause()
        assert sorted(app.thumbs.rows.tolist()) == want
        assert app.thumbs.border_title == f'all · "DIGITS/" · {len(want)}/{c.n}'
        assert app.current_row in want  # the first match is highlighted, map and preview follow
        await pilot.press("enter")  # back to the list, the find stays
        await pilot.pause()
        assert app.focused is app.thumbs and find.display
        await pilot.press("j")
        await pilot.pause()
        assert app.current_row in want
        # x on a found image works as anywhere else
        await pilot.press("x")
        await pilot.pause()
        assert app.curator.rel(app.current_row) in saved_state(app).excluded
        await pilot.press("escape")  # drops the find
        await pilot.pause()
        assert not find.display and len(app.thumbs.rows) == c.n
        # the map jumping to an image the find hides clears the find
        await pilot.press("slash", *"zzz-no-such-name")
        await pilot.pause()
        assert len(app.thumbs.rows) == 0 and app.thumbs.highlighted_row is None
        app.thumbs.focus_row(0)
        await pilot.pause()
        assert app.thumbs.query == "" and app.thumbs.highlighted_row == 0
        assert find.value == "" and not find.display


async def test_unwritable_state_keeps_changes_in_memory_and_says_so(album: Path, monkeypatch) -> None:
    from picksel import state as st
    from picksel.errors import PickselError

    app = make_app(album)
    app.STATE_POLL = 3600.0
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        before = saved_state(app).excluded

        def read_only(state_dir, raw) -> None:
            raise PickselError(f"cannot save {state_dir}/state.json: Read-only file system")

        monkeypatch.setattr(st, "write_state_bytes", read_only)  # every state.json write
        rel = app.curator.rel(app.current_row)
        await pilot.press("x")
        await pilot.pause()
        assert rel in app.curator.state.excluded  # kept for this session
        assert app.title.endswith("1 excluded)")
        notes = [n.message for n in app._notifications if "Read-only file system" in n.message]
        assert len(notes) == 1 and "--state-dir" in notes[0]
        await pilot.press("p")  # same failure again: not repeated
        await pilot.pause()
        assert len([n for n in app._notifications if "Read-only file system" in n.message]) == 1
        monkeypatch.undo()
        await pilot.press("x")  # saving works again: the file catches up with memory
        await pilot.pause()
        disk = saved_state(app)
        assert app.curator.save_problem is None and disk.excluded != before
        assert disk.excluded == app.curator.state.excluded and disk.pins == app.curator.state.pins


async def test_under_80_columns_the_map_gives_way_to_list_and_curator(album: Path) -> None:
    app = make_app(album)
    async with app.run_test(size=(60, 20)) as pilot:
        await settle(app, pilot)
        assert app.map_view.styles.display == "none"
        assert app.thumbs.region.width >= 28 and app.sidebar.region.right <= 60
        seen = []
        for _ in range(3):
            await pilot.press("tab")
            await pilot.pause()
            seen.append("list" if app.focused is app.thumbs else "sidebar" if app.sidebar in app.focused.ancestors else "other")
        assert seen == ["sidebar", "list", "sidebar"]
        await pilot.resize_terminal(100, 30)
        await pilot.pause()
        assert app.map_view.styles.display != "none" and app.map_view.region.width > 0


async def test_export_with_collisions_and_remembered_path(album: Path, tmp_path: Path) -> None:
    dest = tmp_path / "out" / "set1"
    app = make_app(album)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await run_selection(app, pilot, count=app.curator.n, iterations=2)
        rels = app.curator.included_rels()
        await pilot.press("e")
        await pilot.pause()
        assert isinstance(app.screen, ExportScreen)
        app.screen.query_one("#dest", Input).value = str(dest)
        await pilot.press("enter")  # review
        await pilot.pause()
        summary = str(app.screen.query_one("#export-summary", Static).render())
        assert f"{len(rels)} images, 6 captions → {dest}" in summary
        assert "renamed" in summary  # photos/01.png vs digits/01.png
        assert not dest.exists()  # reviewing writes nothing
        await pilot.press("enter")  # copy (focused button)
        await settle(app, pilot)
        result = str(app.screen.query_one("#export-summary", Static).render())
        assert f"{len(rels)} images and 6 captions copied" in result
        assert len([p for p in dest.iterdir() if p.suffix != ".txt" and p.name[0] != "."]) == len(rels)
        await pilot.press("escape")
        await pilot.pause()
        assert saved_state(app).export_path == str(dest)
        # a second export to the same place: everything is already there, listed
        await pilot.press("e")
        await pilot.pause()
        assert app.screen.query_one("#dest", Input).value == str(dest)
        await pilot.press("enter")
        await pilot.pause()
        assert "already there" in str(app.screen.query_one("#export-summary", Static).render())


async def test_export_to_a_regular_file_is_refused(album: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    app = make_app(album)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await run_selection(app, pilot, count=3, iterations=2)
        await pilot.press("e")
        await pilot.pause()
        app.screen.query_one("#dest", Input).value = str(blocker)
        await pilot.press("enter")
        await pilot.pause()
        summary = str(app.screen.query_one("#export-summary", Static).render())
        assert "is a file" in summary
        assert app.screen.query_one("#copy").disabled
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, ExportScreen)
        assert blocker.read_text() == "x"


async def test_export_errors_are_listed(album: Path, tmp_path: Path, monkeypatch) -> None:
    """An export that fails part-way shows every error in the result."""
    import picksel.export as export_mod

    real = export_mod.export_images

    def failing(album_, rels, dest, *, progress=None, cancel=None, **kw):
        report = real(album_, rels[:1], dest, progress=progress, cancel=cancel, **kw)
        report.errors.append((rels[1], "no space left on device"))
        return report

    monkeypatch.setattr(export_mod, "export_images", failing)
    app = make_app(album)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await run_selection(app, pilot, count=3, iterations=2)
        await pilot.press("e")
        await pilot.pause()
        app.screen.query_one("#dest", Input).value = str(tmp_path / "x")
        await pilot.press("enter", "enter")
        await settle(app, pilot)
        result = str(app.screen.query_one("#export-summary", Static).render())
        assert "no space left on device" in result and "errors:" in result


async def test_nothing_to_export_without_selection(album: Path) -> None:
    app = make_app(album)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("e")
        await pilot.pause()
        assert not isinstance(app.screen, ExportScreen)
        await wait_until(pilot, lambda: any("Nothing to export" in n.message for n in app._notifications))
        assert any("Nothing to export" in n.message for n in app._notifications)


async def test_inventory_writes_and_asks_before_overwrite(album: Path, tmp_path: Path) -> None:
    target = tmp_path / "inv.tsv"
    app = make_app(album)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await run_selection(app, pilot, count=4, iterations=4)
        await pilot.press("i")
        await pilot.pause()
        assert isinstance(app.screen, InventoryScreen)
        assert app.screen.query_one("#inv-path", Input).value.endswith("album_inventory.tsv")
        app.screen.query_one("#inv-path", Input).value = str(target)
        await pilot.press("enter")
        await pilot.pause()
        assert not isinstance(app.screen, InventoryScreen)
        lines = target.read_text(encoding="utf-8").splitlines()
        assert lines[0].split("\t")[0] == "Filename"
        assert len(lines) >= 5
        target.write_text("old", encoding="utf-8")
        await pilot.press("i")
        await pilot.pause()
        assert app.screen.query_one("#inv-path", Input).value == str(target)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        await pilot.pause()
        assert target.read_text(encoding="utf-8") == "old"
        await pilot.press("enter")
        await pilot.pause()
        await pilot.press("y")
        await pilot.pause()
        assert target.read_text(encoding="utf-8").startswith("Filename")


def test_inventory_defaults_beside_the_export_folder_not_inside_it(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from picksel.tui.controller import default_inventory_path

    state = SimpleNamespace(inventory_path=None, export_path=str(tmp_path / "lora" / "set1"))
    curator = SimpleNamespace(state=state, album=tmp_path / "album")
    assert default_inventory_path(curator) == str(tmp_path / "lora" / "set1_inventory.tsv")
    assert default_inventory_path(curator, csv=True) == str(tmp_path / "lora" / "set1_inventory.csv")
    state.export_path = None
    assert default_inventory_path(curator) == str(Path.home() / "album_inventory.tsv")
    state.inventory_path = str(tmp_path / "mine.tsv")
    assert default_inventory_path(curator, csv=True) == str(tmp_path / "mine.csv")


async def test_list_filter_and_map_cursor_follow_each_other(album: Path) -> None:
    app = make_app(album)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await run_selection(app, pilot, count=3, iterations=3)
        app.thumbs.focus()
        await pilot.press("v")
        assert app.thumbs.filter == "selected"
        assert len(app.thumbs.rows) == 3
        await pilot.press("v", "v", "v", "v", "v")
        assert app.thumbs.filter == "all"
        app.map_view.focus()
        start = app.current_row
        moved = False
        for key in ("right", "left", "up", "down"):
            await pilot.press(key)
            await pilot.pause()
            if app.current_row != start:
                moved = True
                break
        assert moved
        assert app.thumbs.highlighted_row == app.current_row == app.map_view.cursor_row
        app.thumbs.focus()
        await pilot.press("down")
        await pilot.pause()
        assert app.map_view.cursor_row == app.current_row == app.thumbs.highlighted_row


async def test_tab_moves_between_panes(album: Path) -> None:
    app = make_app(album)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        app.map_view.focus()
        await pilot.press("tab")
        assert app.focused is app.thumbs
        await pilot.press("tab")
        assert app.sidebar in app.focused.ancestors
        await pilot.press("down")
        assert app.sidebar in app.focused.ancestors
        await pilot.press("tab")
        assert app.focused is app.map_view
        await pilot.press("shift+tab")
        assert app.sidebar in app.focused.ancestors


async def test_preview_help_and_palette(album: Path) -> None:
    app = make_app(album)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        app.thumbs.focus()
        app.thumbs.focus_row(app.curator.rows["digits/00.png"])
        app.current_row = app.curator.rows["digits/00.png"]
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, PreviewScreen)
        caption = str(app.screen.query_one("#preview-caption", Static).render())
        assert "a handwritten digit" in caption
        table = app.screen.details
        assert table.dimensions == "64 × 64" and table.rel == "digits/00.png"
        await pilot.press("escape")
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, HelpScreen)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for wanted in ("Run selection", "Exclude at or above threshold", "Export…", "Inventory…"):
            assert wanted in titles


async def test_album_without_index_is_indexed_first(small_album: Path) -> None:
    app = make_app(small_album)
    async with app.run_test(size=SIZE) as pilot:
        seen_indexing = False
        for _ in range(200):  # opening -> indexing screen -> opening again
            seen_indexing |= isinstance(app.screen, IndexingScreen)
            if app.curator is not None:
                break
            await pilot.pause(0.05)
        await settle(app, pilot)
        assert seen_indexing
        assert app.curator is not None and app.curator.n >= 10
        assert (small_album / ".picksel" / "index.npz").exists()


async def test_indexing_can_be_cancelled(small_album: Path, monkeypatch) -> None:
    import picksel.index as index_mod

    def slow_build(album, *, progress=None, cancel=None, **kw):
        progress(1, 10, "encoding")
        while not cancel():
            threading.Event().wait(0.01)
        raise Cancelled()

    monkeypatch.setattr(index_mod, "build_index", slow_build)
    app = make_app(small_album)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.2)
        assert isinstance(app.screen, IndexingScreen)
        await pilot.press("escape")
        await settle(app, pilot)
        assert app.curator is None
        assert "not indexed" in str(app.query_one("#banner", Static).render())
        await pilot.press("s")  # refused with a message, no crash
        await wait_until(pilot, lambda: any("No album is open" in n.message for n in app._notifications))
        assert any("No album is open" in n.message for n in app._notifications)


async def test_corrupt_index_and_empty_album_keep_running(small_album: Path, tmp_path: Path) -> None:
    sdir = small_album / ".picksel"
    sdir.mkdir()
    (sdir / "index.npz").write_bytes(b"PK\x03\x04 definitely not a zip")
    app = make_app(small_album)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert app.curator is None
        assert "damaged" in str(app.query_one("#banner", Static).render())
        await pilot.press("x")
        assert app.is_running
    empty = tmp_path / "empty"
    empty.mkdir()
    app = make_app(empty)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot, rounds=5)
        assert app.is_running
        banner = str(app.query_one("#banner", Static).render())
        assert "No images" in banner or "not indexed" in banner or "Cannot" in banner


async def test_vectors_damaged_after_the_open_check_are_reported(small_album: Path) -> None:
    """The app opens on memory-mapped vectors and checks them in the background: a
    flipped byte there is reported after the open, and the album is closed for work."""
    from picksel.index import index_path, load_index

    index_album(small_album)
    emb = load_index(small_album).embeddings
    path = index_path(small_album)
    data = bytearray(path.read_bytes())
    data[data.index(emb[2, 3:7].tobytes()) + 2] ^= 0x10
    path.write_bytes(bytes(data))
    app = make_app(small_album)
    async with app.run_test(size=SIZE) as pilot:
        banner = app.query_one("#banner", Static)
        assert await wait_until(pilot, lambda: "damaged" in str(banner.render()), rounds=1000)
        assert "checksum" in str(banner.render())
        assert app.curator is None
        await pilot.press("s")  # refused: nothing runs on the damaged vectors
        await pilot.pause()
        assert app.job is None


async def test_quit_during_a_run_sets_the_cancel_event(album: Path, monkeypatch) -> None:
    import picksel.select as select_mod

    seen: list[bool] = []
    started = threading.Event()

    def slow_selection(embeddings, *, progress=None, cancel=None, **kw):
        started.set()
        while not cancel():
            threading.Event().wait(0.01)
        seen.append(True)
        raise Cancelled()

    app = make_app(album)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        monkeypatch.setattr(select_mod, "run_selection", slow_selection)
        set_field(app, "count", "4")
        await pilot.pause()
        await pilot.press("s")
        assert started.wait(5)
        await pilot.press("q")
        await pilot.pause()
    assert seen == [True]
    # settings typed before the run were saved
    assert saved_state(app).settings.count == 4


async def test_umap_progress_updates_the_label_and_keeps_the_zoom(album: Path) -> None:
    from picksel.mapping import pca_map
    from picksel.tui.messages import MapProgress

    app = make_app(album)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        # What start_map leaves behind while the UMAP thread runs.
        app._pca = pca_map(app.curator.index.embeddings)
        app._map_pct = 0
        app.map_view.focus()
        await pilot.press("plus", "plus")
        await pilot.pause()
        view = app.map_view.view
        assert view.zoom == 4
        cursor = app.map_view.cursor_row
        app.post_message(MapProgress(40, 100))
        await pilot.pause()
        assert app.map_view._label == "map: PCA (UMAP 40%)"
        assert app.map_view.view == view
        assert app.map_view.cursor_row == cursor
        assert "UMAP 40%" in "".join(s.text for s in app.map_view.render_line(0))
