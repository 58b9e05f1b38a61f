"""Quality flags and duplicate groups in the TUI (issue 10, point 4): the background
check, row and preview marks, the flagged / duplicates filters, F and the duplicates
review (d), on an album of real sample photos plus garbage and copies."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from quality_helpers import write_quality_album
from tui_app_helpers import index_album, make_app, saved_state, settle, wait_until

from picksel.tui.marks import QualityMarks, fit_labels, quality_labels
from picksel.tui.screens.confirm import ConfirmScreen
from picksel.tui.screens.duplicates import DuplicatesScreen, FlagChoiceScreen

SIZE = (120, 40)


@pytest.fixture(scope="module")
def made_album(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return index_album(write_quality_album(tmp_path_factory.mktemp("tuiq") / "album"))


@pytest.fixture
def album(made_album: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "album"
    shutil.copytree(made_album, dest)
    return dest


def check_json(album: Path) -> dict:
    """What ``picksel check --json`` says, from a real process: the TUI must agree."""
    out = subprocess.run([sys.executable, "-m", "picksel", "check", str(album), "--json"],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


async def open_checked(app, pilot) -> None:
    await settle(app, pilot)
    assert await wait_until(pilot, lambda: app.curator is not None and app.curator.quality is not None)
    await pilot.pause()


def row_text(app, row: int, line: int) -> str:
    t = app.thumbs
    return t._build_line(t.position(row), line, t.scrollable_content_region.width).text


def sidebar_quality(app) -> str:
    from textual.widgets import Static

    # one line, or one fact a line when the sidebar is too narrow for it
    return str(app.sidebar.query_one("#quality", Static).render()).replace("\n", " · ")


async def test_check_runs_on_open_and_marks_rows_preview_and_sidebar(album: Path) -> None:
    expected = check_json(album)
    app = make_app(album)
    async with app.run_test(size=SIZE) as pilot:
        await open_checked(app, pilot)
        c = app.curator
        n_groups = len(expected["duplicates"])
        assert sidebar_quality(app) == (
            f"{len(expected['flags'])} flagged · {n_groups} duplicate group{'s' if n_groups != 1 else ''}")
        for rel, flags in expected["flags"].items():
            assert c.quality.flags(c.rows[rel]) == flags
        assert c.quality.flags(c.rows["bad/black.png"])[:1] == ["dark"]
        black = c.rows["bad/black.png"]
        assert "dark" in row_text(app, black, 1) and "blank" in row_text(app, black, 1)
        groups = {g["keep"]: g["copies"] for g in expected["duplicates"]}
        assert any("photos/chelsea_mirror.jpg" in [k, *v] for k, v in groups.items())
        for keep, copies in groups.items():
            assert "keep" in row_text(app, c.rows[keep], 1)
            for copy in copies:
                assert "dup" in row_text(app, c.rows[copy], 1)
        # the small preview names the flags; the large one lists them with size and sharpness
        app.current_row = black
        assert await wait_until(pilot, lambda: "dark" in app.query_one("#preview").caption)
        await pilot.press("enter")
        await pilot.pause()
        table = app.screen.details.quality
        assert dict(table)["flags"].startswith("dark")
        assert dict(table)["measured"] == "320 × 240 px"
        assert "sharpness" in dict(table)
        await pilot.press("escape")
        copy = next(iter(groups.values()))[0]
        keep = next(iter(groups))
        assert dict(c.details(c.rows[copy]).quality)["duplicate"].endswith(
            f"duplicate of {keep}")
        assert dict(c.details(c.rows[keep]).quality)["duplicate"].startswith("kept over 1 ")
        # the check flags, it never excludes
        assert not saved_state(app).excluded


async def test_flagged_and_duplicates_filters_and_an_empty_filter_says_why(album: Path) -> None:
    expected = check_json(album)
    app = make_app(album)
    async with app.run_test(size=SIZE) as pilot:
        await open_checked(app, pilot)
        c, t = app.curator, app.thumbs
        t.focus()
        seen = []
        for _ in range(6):
            await pilot.press("v")
            await pilot.pause()
            seen.append(t.filter)
            if t.filter == "excluded":
                assert len(t.rows) == 0
                line = t.render_line(0).text
                assert "No excluded images" in line and "v next filter" in line
            if t.filter == "flagged":
                assert sorted(c.rel(int(r)) for r in t.rows) == sorted(expected["flags"])
                assert t.border_title == f"flagged · {len(expected['flags'])}/{c.n}"
                # rarest flags first: the black frame tops photos that are only "small"
                assert c.rel(int(t.rows[0])) == "bad/black.png"
            if t.filter == "duplicates":
                listed = [c.rel(int(r)) for r in t.rows]
                want = [p for g in c.quality.groups for p in (c.rel(g[0]), *[c.rel(r) for r in g[1]])]
                assert listed == want
                assert sorted(listed) == sorted(
                    p for g in expected["duplicates"] for p in (g["keep"], *g["copies"]))
        assert seen == ["selected", "excluded", "favorites", "flagged", "duplicates", "all"]
        # favorites empty too: a line, not a blank pane
        t.filter = "favorites"
        await pilot.pause()
        assert "No favorites" in t.render_line(0).text


async def test_F_excludes_one_kind_in_one_undoable_step(album: Path) -> None:
    expected = check_json(album)
    dark = sorted(p for p, f in expected["flags"].items() if "dark" in f)
    assert dark
    app = make_app(album)
    async with app.run_test(size=SIZE) as pilot:
        await open_checked(app, pilot)
        app.thumbs.focus()
        await pilot.press("F")
        assert await wait_until(pilot, lambda: isinstance(app.screen, FlagChoiceScreen))
        from textual.widgets import OptionList

        options = app.screen.query_one(OptionList)
        labels = [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]
        assert labels[0].startswith("dark") and labels[0].rstrip().endswith(str(len(dark)))
        assert any(lbl.startswith("duplicate copies") for lbl in labels)
        options.highlighted = 0
        await pilot.press("enter")
        # one dark image of 11 is under 10 % and under 50: no question asked
        assert await wait_until(pilot, lambda: sorted(saved_state(app).excluded) == dark)
        await pilot.press("u")
        assert await wait_until(pilot, lambda: not saved_state(app).excluded)


async def test_F_asks_first_when_many_and_leaves_pins(album: Path) -> None:
    expected = check_json(album)
    defects = {"dark", "bright", "blank", "blurry", "noisy", "small"}
    flagged = sorted(p for p, f in expected["flags"].items() if defects & set(f))
    assert len(flagged) >= 2  # more than 10 % of the album: F must ask
    app = make_app(album)
    async with app.run_test(size=SIZE) as pilot:
        await open_checked(app, pilot)
        c = app.curator
        app.current_row = c.rows[flagged[0]]
        app.thumbs.focus()
        await pilot.press("p")  # a pinned flagged image stays
        await pilot.pause()
        await pilot.press("F")
        assert await wait_until(pilot, lambda: isinstance(app.screen, FlagChoiceScreen))
        from textual.widgets import OptionList

        options = app.screen.query_one(OptionList)
        options.highlighted = next(i for i in range(options.option_count)
                                   if options.get_option_at_index(i).id == "defects")
        await pilot.press("enter")
        assert await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("n")
        await pilot.pause()
        assert not saved_state(app).excluded
        await pilot.press("F")
        assert await wait_until(pilot, lambda: isinstance(app.screen, FlagChoiceScreen))
        options = app.screen.query_one(OptionList)
        options.highlighted = next(i for i in range(options.option_count)
                                   if options.get_option_at_index(i).id == "defects")
        await pilot.press("enter")
        assert await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        assert await wait_until(pilot, lambda: sorted(saved_state(app).excluded) == flagged[1:])
        assert flagged[0] in saved_state(app).pins
        await pilot.press("u")
        assert await wait_until(pilot, lambda: not saved_state(app).excluded)
        assert flagged[0] in saved_state(app).pins


async def test_duplicates_review_keeps_the_chosen_one_and_u_undoes(album: Path) -> None:
    app = make_app(album)
    async with app.run_test(size=SIZE) as pilot:
        await open_checked(app, pilot)
        c = app.curator
        assert c.quality.groups
        app.thumbs.focus()
        await pilot.press("d")
        assert await wait_until(pilot, lambda: isinstance(app.screen, DuplicatesScreen))
        screen = app.screen
        members = screen.members()
        assert len(members) >= 2
        facts = str(screen.query_one("#dup-card-0 .dup-facts").render())
        assert "KEEP" in facts and "px" in facts and "sharp" in facts
        assert "exclude" in str(screen.query_one("#dup-card-1 .dup-facts").render())
        await pilot.press("right")  # keep the second image instead of the suggested one
        await pilot.pause()
        assert "KEEP" in str(screen.query_one("#dup-card-1 .dup-facts").render())
        first = screen.index
        await pilot.press("x")
        others = sorted(c.rel(r) for r in members if r != members[1])
        assert await wait_until(pilot, lambda: sorted(saved_state(app).excluded) == others)
        assert c.rel(members[1]) not in saved_state(app).excluded
        assert screen.index == first + 1  # on to the next group
        await pilot.press("u")
        assert await wait_until(pilot, lambda: not saved_state(app).excluded)
        assert (screen.index, screen.chosen) == (first, 1)  # back where the x was
        assert isinstance(app.screen, DuplicatesScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, DuplicatesScreen)


async def test_thresholds_kept_in_state_are_used(album: Path) -> None:
    subprocess.run([sys.executable, "-m", "picksel", "check", str(album), "--min-side", "5000"],
                   capture_output=True, check=True)
    app = make_app(album)
    async with app.run_test(size=SIZE) as pilot:
        await open_checked(app, pilot)
        c = app.curator
        assert all("small" in c.quality.flags(r) for r in range(c.n))
        assert sidebar_quality(app).startswith(f"{c.n} flagged")


async def test_thresholds_changed_by_another_picksel_are_followed(album: Path) -> None:
    """``picksel check --min-side`` in another shell while the curator is open: the
    state reload re-checks (from the cache) and the flags follow."""
    app = make_app(album)
    async with app.run_test(size=SIZE) as pilot:
        await open_checked(app, pilot)
        c = app.curator
        before = c.quality
        assert not all("small" in before.flags(r) for r in range(c.n))
        subprocess.run([sys.executable, "-m", "picksel", "check", str(album), "--min-side", "5000"],
                       capture_output=True, check=True)
        app._watch_state()  # what the STATE_POLL timer runs
        assert await wait_until(pilot, lambda: c.quality is not before and c.quality is not None,
                                rounds=1000)
        assert all("small" in c.quality.flags(r) for r in range(c.n))


async def test_progress_shows_and_the_check_is_cancelled_on_quit(album: Path, monkeypatch) -> None:
    """A cold check reports its progress in the sidebar and stops when asked (quitting,
    re-indexing) instead of running on: chunks of one file, each measured slowly."""
    import threading

    import picksel.check as check

    gate = threading.Event()
    real = check.measure_file

    def slow_measure(path):
        gate.wait(5)
        return real(path)

    monkeypatch.setattr(check, "_CHUNK", 1)
    monkeypatch.setattr(check, "measure_file", slow_measure)
    (album / ".picksel" / "quality.npz").unlink(missing_ok=True)
    app = make_app(album)
    async with app.run_test(size=SIZE) as pilot:
        assert await wait_until(pilot, lambda: app.quality_job is not None)
        job = app.quality_job
        assert "checking" in sidebar_quality(app)
        gate.set()
        assert await wait_until(pilot, lambda: "%" in sidebar_quality(app))
        app.stop_workers()
        assert job.cancel_event.is_set()
        assert await wait_until(pilot, lambda: "cancelled" in sidebar_quality(app) or app.curator.quality)


async def test_marks_are_readable_at_80_columns(album: Path) -> None:
    app = make_app(album)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_checked(app, pilot)
        c = app.curator
        black = c.rows["bad/black.png"]
        app.current_row = black
        await pilot.pause()
        assert app.thumbs.scrollable_content_region.width <= 50
        assert "dark" in row_text(app, black, 1)
        line0 = row_text(app, black, 0)
        assert "black.png" in line0


def test_fit_labels_cut_with_a_count_of_the_rest() -> None:
    labels = [("dup", "copy"), ("dark", "flag"), ("blank", "flag"), ("small", "flag")]
    assert fit_labels(labels, 40) == labels
    assert fit_labels(labels, 11) == [("dup", "copy"), ("dark", "flag"), ("+2", "note")]
    assert fit_labels(labels, 2) == [("+4", "note")]
    assert fit_labels(labels, 1) == []


def test_quality_marks_follow_the_index_rows(album: Path) -> None:
    """Paths of the check are sorted; the index rows may not be: marks land on the right
    row, and an image gone from the index is left out."""
    from picksel.check import check_album
    from picksel.quality import Thresholds

    result = check_album(album, ["photos/coffee.jpg", "photos/coffee_resaved.png", "bad/black.png"],
                         album / ".picksel", Thresholds(), set())
    rows = {"bad/black.png": 0, "photos/coffee_resaved.png": 1, "photos/coffee.jpg": 2}
    q = QualityMarks.from_check(result, rows, 3)
    assert q.flags(0)[:1] == ["dark"]
    # the duplicate role comes first, then the flags (these photos are all "small")
    assert {quality_labels(q, 1)[0], quality_labels(q, 2)[0]} == {("dup", "copy"), ("keep", "keep")}
    assert quality_labels(q, 1)[1:] == quality_labels(q, 2)[1:] == [("small", "flag")]
    q2 = QualityMarks.from_check(result, {"bad/black.png": 0}, 1)
    assert q2.groups == [] and q2.flags(0)[:1] == ["dark"]


def test_flagged_order_puts_rare_flags_first() -> None:
    from picksel.tui.marks import FLAG_BIT

    n = 6
    bits = np.full(n, FLAG_BIT["small"] | FLAG_BIT["grayscale"], np.uint16)
    bits[1] = 0
    bits[4] |= FLAG_BIT["dark"] | FLAG_BIT["blank"]
    bits[5] = FLAG_BIT["noisy"]
    q = QualityMarks(bits, np.zeros(n, np.int32), np.zeros(n, bool), np.zeros(n, np.int32),
                     np.zeros(n, np.int32), np.zeros(n, np.float32), [], [])
    assert q.flagged_order.tolist() == [4, 5, 0, 2, 3]
    assert q.summary() == "5 flagged · 0 duplicate groups"


async def test_palette_and_help_offer_d_and_F(album: Path) -> None:
    from picksel.tui.screens.help import GROUPS

    keys = {key for _group, rows in GROUPS for key, _what in rows}
    assert {"d", "F"} <= keys
    app = make_app(album)
    async with app.run_test(size=SIZE) as pilot:
        await open_checked(app, pilot)
        commands = {cmd.title: cmd for cmd in app.get_system_commands(app.screen)}
        assert {"Review duplicates…", "Exclude flagged images…"} <= set(commands)
        await commands["Exclude flagged images…"].callback()  # what the palette runs
        assert await wait_until(pilot, lambda: isinstance(app.screen, FlagChoiceScreen))
        await pilot.press("escape")
        assert await wait_until(pilot, lambda: not isinstance(app.screen, FlagChoiceScreen))
        await commands["Review duplicates…"].callback()
        assert await wait_until(pilot, lambda: isinstance(app.screen, DuplicatesScreen))
        await pilot.pause()
        assert "KEEP" in str(app.screen.query_one("#dup-card-0 .dup-facts").render())
        assert not saved_state(app).excluded


async def test_grid_cells_carry_the_quality_marks(album: Path) -> None:
    # The grid (t) is the list's second view: a flagged image's cell says so too.
    app = make_app(album)
    async with app.run_test(size=SIZE) as pilot:
        await open_checked(app, pilot)
        await pilot.press("t")
        assert await wait_until(pilot, lambda: app.thumbs.view == "grid")
        await pilot.press("slash")
        await pilot.press(*"noise")
        await pilot.press("enter")
        await pilot.pause()
        t = app.thumbs

        def grid_text() -> str:
            return "\n".join("".join(s.text for s in t.render_line(y)) for y in range(t.size.height))

        assert await wait_until(pilot, lambda: "noise.png" in grid_text())
        assert "noise" in grid_text().replace("noise.png", "")


async def test_the_check_and_the_vector_read_start_after_the_first_screen(album: Path, monkeypatch) -> None:
    """Both hold the GIL for long stretches (the check stats every image): started with
    the open, they pushed the first screen of a 100,000-image album from 0.5 s to 0.8 s.
    They start once the map and the list have been drawn."""
    from picksel.tui.app import PickselApp
    from picksel.tui.widgets.scatter import MapView
    from picksel.tui.widgets.thumblist import ThumbList

    order: list[str] = []
    for cls, name in ((MapView, "map"), (ThumbList, "list")):
        real_render = cls.render_line

        def render_line(self, y, _real=real_render, _name=name):  # noqa: ANN001, ANN202
            if self.app.curator is not None and f"{_name} drawn" not in order:
                order.append(f"{_name} drawn")
            return _real(self, y)

        monkeypatch.setattr(cls, "render_line", render_line)
    real_start = PickselApp.start_quality
    real_verify = PickselApp._verify_index
    monkeypatch.setattr(PickselApp, "start_quality", lambda self: (order.append("check"), real_start(self))[1])
    monkeypatch.setattr(PickselApp, "_verify_index",
                        lambda self, c: (order.append("verify"), real_verify(self, c))[1])
    app = make_app(album)
    async with app.run_test(size=SIZE) as pilot:
        await open_checked(app, pilot)
    assert "check" in order and "verify" in order, order
    first_job = min(order.index("check"), order.index("verify"))
    assert order.index("map drawn") < first_job and order.index("list drawn") < first_job, order


def shown_groups(c) -> list[tuple[str, list[str]]]:
    return [(c.rel(keep), [c.rel(r) for r in copies]) for keep, copies in c.quality.groups]


def cli_groups(report: dict) -> list[tuple[str, list[str]]]:
    return [(g["keep"], g["copies"]) for g in report["duplicates"]]


def card_text(screen, i: int) -> str:
    from textual.widgets import Static

    return str(screen.query_one(f"#dup-card-{i} .dup-facts", Static).render())


async def test_pinning_a_copy_makes_it_the_keeper_in_marks_review_and_F(album: Path) -> None:
    """The rule says a pinned image is kept: after p, u, U or a pin made by another
    picksel, the rows, the review and F follow the pins, and agree with `check --json`."""
    from picksel.tui.quality_ui import DUPLICATE_COPIES

    before = check_json(album)
    group = next(g for g in before["duplicates"] if g["kind"] == "exact")
    old_keep, new_keep = group["keep"], group["copies"][0]
    app = make_app(album)
    async with app.run_test(size=SIZE) as pilot:
        await open_checked(app, pilot)
        c = app.curator
        assert shown_groups(c) == cli_groups(before)
        app.current_row = c.rows[new_keep]
        await pilot.press("p")
        assert await wait_until(pilot, lambda: "keep" in row_text(app, c.rows[new_keep], 1))
        assert "dup" in row_text(app, c.rows[old_keep], 1)
        after = check_json(album)  # a real process reading the pin from state.json
        assert any(keep == new_keep for keep, _copies in cli_groups(after))
        assert shown_groups(c) == cli_groups(after)
        rels, _what, _action = app.found_rels(DUPLICATE_COPIES)
        assert old_keep in rels and new_keep not in rels
        assert dict(c.details(c.rows[old_keep]).quality)["duplicate"].endswith(f"duplicate of {new_keep}")
        # the review suggests the pinned one, and follows an undo made there
        app.current_row = c.rows[new_keep]
        await pilot.press("d")
        assert await wait_until(pilot, lambda: isinstance(app.screen, DuplicatesScreen))
        screen = app.screen
        assert c.rel(screen.members()[0]) == new_keep
        assert "KEEP" in card_text(screen, 0) and "(suggested)" in card_text(screen, 0)
        assert "pinned" in card_text(screen, 0)
        await pilot.press("u")  # takes the pin back
        assert await wait_until(pilot, lambda: c.rel(screen.members()[0]) == old_keep)
        assert "(suggested)" in card_text(screen, 0) and "pinned" not in card_text(screen, 0)
        await pilot.press("escape")
        assert await wait_until(pilot, lambda: not isinstance(app.screen, DuplicatesScreen))
        assert "keep" in row_text(app, c.rows[old_keep], 1)
        assert shown_groups(c) == cli_groups(before)
        await pilot.press("U")  # redo: pinned again
        assert await wait_until(pilot, lambda: "keep" in row_text(app, c.rows[new_keep], 1))
        assert shown_groups(c) == cli_groups(after)
        # another picksel unpins it: the app reloads state.json and the keeper goes back
        subprocess.run([sys.executable, "-m", "picksel", "pin", str(album), "--remove", new_keep],
                       capture_output=True, check=True)
        assert await wait_until(pilot, lambda: shown_groups(c) == cli_groups(before), rounds=1000)
        assert "keep" in row_text(app, c.rows[old_keep], 1)
        assert "dup" in row_text(app, c.rows[new_keep], 1)


def test_marks_with_pins_equal_a_check_made_with_those_pins(album: Path) -> None:
    """Re-keeping the marks for new pins (no re-measuring) gives exactly the groups, the
    order and the keepers a check made with those pins gives, for every set of pins."""
    import itertools

    from picksel.check import CheckResult, check_album, judge
    from picksel.quality import Thresholds

    report = check_json(album)
    rels = sorted(p.relative_to(album).as_posix() for p in album.rglob("*")
                  if p.suffix in (".jpg", ".png") and ".picksel" not in p.parts)
    rows = {rel: i for i, rel in enumerate(reversed(rels))}  # rows in another order than paths
    first = check_album(album, rels, album / ".picksel", Thresholds(), set())
    marks = QualityMarks.from_check(first, rows, len(rows))
    members = sorted({p for g in report["duplicates"] for p in (g["keep"], *g["copies"])})
    path_of = dict(zip(rows.values(), rows.keys(), strict=True))
    paths = [path_of[i] for i in range(len(rows))]
    for k in range(len(members) + 1):
        for pins in itertools.combinations(members, k):
            flags, groups = judge(first.table, Thresholds(), set(pins))
            fresh = CheckResult(first.paths, first.table, flags, groups, Thresholds())
            want = QualityMarks.from_check(fresh, rows, len(rows))
            mask = np.zeros(len(rows), bool)
            mask[[rows[p] for p in pins]] = True
            got = marks.with_pins(mask, paths)
            assert got.groups == want.groups and got.kinds == want.kinds, pins
            assert got.group.tolist() == want.group.tolist()
            assert got.keeper.tolist() == want.keeper.tolist()


async def test_the_review_stays_on_its_group_when_a_pin_reorders_the_groups(album: Path) -> None:
    """Groups are listed by keeper path: a pin made by another picksel while the review is
    open moves its group behind another; the review stays on it and suggests the pin."""
    (album / "aaa").mkdir()
    shutil.copy(album / "photos" / "coffee_resaved.png", album / "aaa" / "coffee_copy.png")
    index_album(album)
    before = check_json(album)
    assert [g["keep"] for g in before["duplicates"]][0] == "aaa/coffee_copy.png"
    app = make_app(album)
    async with app.run_test(size=SIZE) as pilot:
        await open_checked(app, pilot)
        c = app.curator
        app.current_row = c.rows["aaa/coffee_copy.png"]
        await pilot.press("d")
        assert await wait_until(pilot, lambda: isinstance(app.screen, DuplicatesScreen))
        screen = app.screen
        assert screen.index == 0 and c.rel(screen.members()[0]) == "aaa/coffee_copy.png"
        subprocess.run([sys.executable, "-m", "picksel", "pin", str(album), "photos/coffee.jpg"],
                       capture_output=True, check=True)
        assert await wait_until(pilot, lambda: c.rel(screen.members()[0]) == "photos/coffee.jpg",
                                rounds=1000)
        after = check_json(album)
        assert shown_groups(c) == cli_groups(after)
        assert cli_groups(after)[-1][0] == "photos/coffee.jpg"  # now the last group
        assert screen.index == len(after["duplicates"]) - 1
        assert set(screen.members()) == {c.rows[p] for p in ("aaa/coffee_copy.png", "photos/coffee.jpg",
                                                              "photos/coffee_resaved.png")}
        assert "(suggested)" in card_text(screen, 0) and "KEEP" in card_text(screen, 0)
        assert f"group {len(after['duplicates'])} of" in str(screen.query_one(".dup-dialog").border_title)
