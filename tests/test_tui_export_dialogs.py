"""Pilot tests of the export and inventory dialogs: a folder holding another selection,
long names, the hidden-folder note, the default folder, inventory without a selection and
the format radio's glyphs."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
from textual.widgets import Button, Input, Static
from tui_app_helpers import index_album, make_app, settle

from picksel.export import export_images
from picksel.export_manifest import MANIFEST_NAME
from picksel.scan import is_image_name
from picksel.tui.screens.export import HIDDEN_NOTE, ExportScreen
from picksel.tui.screens.inventory import InventoryScreen

SIZE = (120, 40)
CJK = "写真" * 41  # 82 characters, 246 bytes


@pytest.fixture
def album(small_album: Path) -> Path:
    shutil.copyfile(small_album / "photos" / "01.png", small_album / "photos" / f"{CJK}.png")
    return index_album(small_album)


def summary(app) -> str:
    return str(app.screen.query_one("#export-summary", Static).render())


def shown(app, bid: str) -> bool:
    return bool(app.screen.query_one(f"#{bid}", Button).display)


async def open_export(app, pilot, dest: Path) -> None:
    await pilot.press("e")
    await pilot.pause()
    assert isinstance(app.screen, ExportScreen)
    app.screen.query_one("#dest", Input).value = str(dest)
    await pilot.press("enter")  # review
    await pilot.pause()


async def select_all(app, pilot) -> list[str]:
    from tui_app_helpers import set_field

    set_field(app, "count", str(app.curator.n))
    set_field(app, "iterations", "2")
    await pilot.pause()
    await pilot.press("s")
    await settle(app, pilot)
    return app.curator.included_rels()


def earlier_export(album: Path, dest: Path) -> list[str]:
    """An export of other images (a different album) plus a stranger's picture."""
    other = album.parent / "other_album"
    other.mkdir()
    for i in range(3):
        shutil.copyfile(album / "photos" / "01.png", other / f"old{i}.png")
        (other / f"old{i}.txt").write_text(f"old caption {i}")
        with open(other / f"old{i}.png", "ab") as fh:
            fh.write(bytes([i]))  # different bytes, still a file
    export_images(other, [f"old{i}.png" for i in range(3)], dest)
    (dest / "stranger.png").write_bytes(b"not written by picksel")
    return ["old0.png", "old1.png", "old2.png", "stranger.png"]


async def test_folder_with_another_selection_offers_three_choices_and_replace_moves_aside(
    album: Path, tmp_path: Path
) -> None:
    dest = tmp_path / "lora"
    others = earlier_export(album, dest)
    app = make_app(album)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        rels = await select_all(app, pilot)
        await open_export(app, pilot, dest)
        text = summary(app)
        assert "4 images here are not in this selection (1 of them not written by picksel)." in text
        assert "move them aside" in text
        assert shown(app, "merge") and shown(app, "replace") and shown(app, "other")
        assert not shown(app, "copy")
        before = sorted(os.listdir(dest))
        # a bare enter never mixes two sets: it goes to the choices
        app.screen.query_one("#dest", Input).focus()
        await pilot.press("enter")
        await settle(app, pilot)
        assert sorted(os.listdir(dest)) == before
        assert app.screen.focused is app.screen.query_one("#merge", Button)
        await pilot.click("#replace")
        await settle(app, pilot)
        result = summary(app)
        assert "moved aside into" in result and "copied" in result
        images = sorted(n for n in os.listdir(dest) if is_image_name(n) and not n.startswith("."))
        assert len(images) == len(rels) and not set(others) & set(images)
        aside = [p for p in dest.iterdir() if p.name.startswith(".picksel-replaced-")]
        assert len(aside) == 1
        assert sorted(os.listdir(aside[0])) == sorted(others + ["old0.txt", "old1.txt", "old2.txt"])
        assert all(len(os.fsencode(n)) <= 255 for n in os.listdir(dest))
        assert (dest / MANIFEST_NAME).exists()


async def test_add_to_them_merges_and_long_names_fit(album: Path, tmp_path: Path) -> None:
    dest = tmp_path / "lora"
    dest.mkdir()
    (dest / f"{CJK}.png").write_bytes(b"a different picture under the same long name")
    app = make_app(album)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        rels = await select_all(app, pilot)
        await open_export(app, pilot, dest)
        assert "1 image here is not in this selection (it was not written by picksel)" in summary(app)
        await pilot.click("#merge")
        await settle(app, pilot)
        result = summary(app)
        assert "added to 1 image not in this selection" in result
        names = os.listdir(dest)
        assert all(len(os.fsencode(n)) <= 255 for n in names)
        long = [n for n in names if n.startswith(f"photos_{CJK[:10]}")]
        assert len(long) == 1 and long[0].endswith(".png")
        assert len([n for n in names if is_image_name(n) and not n.startswith(".")]) == len(rels) + 1


async def test_another_folder_goes_back_to_the_path(album: Path, tmp_path: Path) -> None:
    dest = tmp_path / "lora"
    earlier_export(album, dest)
    app = make_app(album)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await select_all(app, pilot)
        await open_export(app, pilot, dest)
        await pilot.click("#other")
        await pilot.pause()
        assert app.screen.focused is app.screen.query_one("#dest", Input)
        assert not shown(app, "merge") and shown(app, "copy")
        fresh = tmp_path / "fresh"
        app.screen.query_one("#dest", Input).value = str(fresh)
        await pilot.press("enter")
        await pilot.pause()
        assert "not in this selection" not in summary(app)
        assert not app.screen.query_one("#copy", Button).disabled


async def test_dialog_defaults_beside_the_album_and_says_the_tree_hides_dot_folders(album: Path) -> None:
    app = make_app(album)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await select_all(app, pilot)
        await pilot.press("e")
        await pilot.pause()
        value = app.screen.query_one("#dest", Input).value
        assert value == str(album.resolve().parent / f"{album.name}_export")
        note = str(app.screen.query_one("#hidden-note", Static).render())
        assert note == HIDDEN_NOTE and "'.'" in note


def test_default_export_path_prefers_the_saved_one(tmp_path: Path) -> None:
    from picksel.tui.controller import default_export_path

    curator = SimpleNamespace(state=SimpleNamespace(export_path=None), album=tmp_path / "pics")
    assert default_export_path(curator) == str(tmp_path / "pics_export")
    curator.state.export_path = "/somewhere/set1"
    assert default_export_path(curator) == "/somewhere/set1"


async def test_inventory_without_selection_refuses_like_the_cli(album: Path, tmp_path: Path) -> None:
    from picksel.inventory import NO_SELECTION

    target = tmp_path / "inv.tsv"
    app = make_app(album)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("i")
        await pilot.pause()
        assert isinstance(app.screen, InventoryScreen)
        assert str(app.screen.query_one("#inv-message", Static).render()) == NO_SELECTION
        app.screen.query_one("#inv-path", Input).value = str(target)
        await pilot.press("enter")
        await pilot.pause()
        assert not target.exists()
        assert app.screen.query_one("#write", Button).disabled


async def test_inventory_format_radio_shows_which_is_chosen(album: Path) -> None:
    app = make_app(album)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("i")
        await pilot.pause()
        tsv = app.screen.query_one("#fmt-tsv")
        csv = app.screen.query_one("#fmt-csv")
        assert "●" in str(tsv.render()) and "○" not in str(tsv.render())
        assert "○" in str(csv.render()) and "●" not in str(csv.render())
        await pilot.click("#fmt-csv")
        await pilot.pause()
        assert "●" in str(csv.render()) and "○" in str(tsv.render())
        assert app.screen.query_one("#inv-path", Input).value.endswith(".csv")


async def test_the_hint_says_what_the_next_enter_does(album: Path, tmp_path: Path) -> None:
    """The first enter reviews and the second copies: the border hint says which one is next
    (issue 9: it said "enter: review" while the next enter copied)."""
    from picksel.tui.screens.export import HINT_COPY, HINT_REVIEW

    app = make_app(album)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await select_all(app, pilot)
        await pilot.press("e")
        await pilot.pause()
        box = app.screen.query_one(".export-dialog")
        assert box.border_subtitle == HINT_REVIEW
        app.screen.query_one("#dest", Input).value = str(tmp_path / "fresh")
        app.screen.query_one("#dest", Input).focus()
        await pilot.press("enter")  # review
        await pilot.pause()
        assert box.border_subtitle == HINT_COPY
        assert not (tmp_path / "fresh").exists()  # reviewing copied nothing
        app.screen.query_one("#dest", Input).value = str(tmp_path / "other")
        await pilot.pause()
        assert box.border_subtitle == HINT_REVIEW  # a new folder is reviewed anew
