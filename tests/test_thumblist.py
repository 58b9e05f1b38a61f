"""Thumbnail list: order, filters, keys, messages and virtualisation."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from PIL import Image
from textual.app import App, ComposeResult
from tui_helpers import album_view_model, fake_view_model, make_view_model

from picksel.thumbs import is_placeholder
from picksel.tui.viewstate import ViewModel
from picksel.tui.widgets.preview import ImagePreview
from picksel.tui.widgets.thumblist import ITEM_HEIGHT, ThumbList


class CountingLoader:
    """Thumbnail loader that records requests and returns a flat colour."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, root: Path, rel: str, state_dir: Path, size: int) -> Image.Image:
        with self.lock:
            self.calls.append(rel)
        return Image.new("RGB", (size, size), (200, 100, 50))


class ListApp(App):
    def __init__(self, vm: ViewModel, loader=None) -> None:
        super().__init__()
        self.vm = vm
        self.loader = loader
        self.events: list[tuple[str, int]] = []

    def compose(self) -> ComposeResult:
        yield ThumbList(loader=self.loader)

    def on_mount(self) -> None:
        t = self.query_one(ThumbList)
        t.set_model(self.vm)
        t.focus()

    def on_thumb_list_highlighted(self, event: ThumbList.Highlighted) -> None:
        self.events.append(("highlighted", event.row))

    def on_thumb_list_activated(self, event: ThumbList.Activated) -> None:
        self.events.append(("activated", event.row))

    def on_thumb_list_moved(self, event: ThumbList.Moved) -> None:
        self.events.append(("moved", event.row))


def _vm(n: int = 10) -> ViewModel:
    votes = np.zeros(n, np.int32)
    votes[[7, 2, 5]] = [20, 12, 20]  # 5 and 7 tie: lower row first
    excluded = np.zeros(n, bool)
    excluded[[1, 8]] = True
    favorite = np.zeros(n, bool)
    favorite[[5, 3]] = True
    paths = [f"sub{i % 2}/img{i:02d}.jpg" for i in range(n)]
    return make_view_model(Path("/nowhere"), paths, votes=votes, iterations=20,
                           excluded=excluded, favorite=favorite)


async def test_order_is_selected_by_votes_then_the_rest_in_index_order() -> None:
    app = ListApp(_vm(), CountingLoader())
    async with app.run_test(size=(60, 20)):
        t = app.query_one(ThumbList)
        assert t.rows.tolist() == [5, 7, 2, 0, 1, 3, 4, 6, 8, 9]
        assert t.highlighted_row == 5
        assert "all" in t.border_title and "10" in t.border_title


async def test_v_cycles_filters_with_counts_in_the_title() -> None:
    app = ListApp(_vm(), CountingLoader())
    async with app.run_test(size=(60, 20)) as pilot:
        t = app.query_one(ThumbList)
        seen = []
        for _ in range(6):
            await pilot.press("v")
            seen.append((t.filter, t.rows.tolist(), t.border_title))
        assert [s[:2] for s in seen] == [
            ("selected", [5, 7, 2]),
            ("excluded", [1, 8]),
            ("favorites", [5, 3]),
            ("flagged", []),  # no quality check in this model: empty, with a line saying so
            ("duplicates", []),
            ("all", [5, 7, 2, 0, 1, 3, 4, 6, 8, 9]),
        ]
        assert seen[0][2] == "selected · 3/10"
        assert seen[1][2] == "excluded · 2/10"
        assert seen[3][2] == "flagged · 0/10"
        assert seen[5][2] == "all · 10"


async def test_an_empty_filter_shows_one_line_saying_why() -> None:
    """Before: an empty filter left a blank pane, which reads as a broken app."""
    vm = _vm()
    vm.excluded[:] = False
    app = ListApp(vm, CountingLoader())
    async with app.run_test(size=(60, 20)) as pilot:
        t = app.query_one(ThumbList)
        t.filter = "excluded"
        await pilot.pause()
        assert t.rows.tolist() == []
        assert t.render_line(0).text.strip() == "No excluded images · v next filter"
        assert t.render_line(1).text.strip() == ""
        t.filter = "flagged"
        await pilot.pause()
        assert "Quality check not finished" in t.render_line(0).text
        t.filter = "all"
        t.query = "zzz"
        await pilot.pause()
        assert 'No file name contains "zzz"' in t.render_line(0).text


async def test_keys_move_the_highlight_and_post_messages() -> None:
    app = ListApp(_vm(), CountingLoader())
    async with app.run_test(size=(60, 10)) as pilot:
        t = app.query_one(ThumbList)
        await pilot.press("down", "j", "k", "end", "home", "pagedown", "enter")
        page = max(1, t.scrollable_content_region.height // ITEM_HEIGHT - 1)
        order = [5, 7, 2, 0, 1, 3, 4, 6, 8, 9]
        assert app.events == [
            ("highlighted", 7), ("highlighted", 2), ("highlighted", 7),
            ("highlighted", 9), ("highlighted", 5), ("highlighted", order[page]),
            ("activated", order[page]),
        ]
        await pilot.press("end")
        await pilot.pause()
        # The last item is on screen: its name is in one of the rendered lines.
        text = [t.render_line(y).text for y in range(t.size.height)]
        assert any("img09.jpg" in line for line in text)


async def test_focus_row_switches_to_all_for_hidden_rows_and_posts_nothing() -> None:
    app = ListApp(_vm(), CountingLoader())
    async with app.run_test(size=(60, 20)) as pilot:
        t = app.query_one(ThumbList)
        t.filter = "selected"
        t.focus_row(2)
        assert t.filter == "selected" and t.highlighted_row == 2
        t.focus_row(9)
        await pilot.pause()
        assert t.filter == "all" and t.highlighted_row == 9
        assert app.events == []


async def test_highlight_survives_a_new_model() -> None:
    app = ListApp(_vm(), CountingLoader())
    async with app.run_test(size=(60, 20)) as pilot:
        t = app.query_one(ThumbList)
        t.focus_row(4)
        vm = _vm()
        vm.consensus = np.array([4, 0], np.int64)
        t.set_model(vm)
        await pilot.pause()
        assert t.rows.tolist()[:2] == [4, 0] and t.highlighted_row == 4


async def test_100k_rows_only_build_visible_lines_and_thumbnails() -> None:
    loader = CountingLoader()
    vm = fake_view_model(100_000)
    app = ListApp(vm, loader)
    async with app.run_test(size=(60, 22)) as pilot:
        t = app.query_one(ThumbList)
        await pilot.pause(0.2)
        visible_items = t.size.height // ITEM_HEIGHT + 1
        assert 0 < t.lines_rendered <= 4 * t.size.height
        assert t.thumb_requests <= visible_items
        before_lines, before_requests = t.lines_rendered, t.thumb_requests
        for _ in range(5):
            await pilot.press("pagedown")
        await pilot.pause(0.2)
        assert t.lines_rendered - before_lines <= 5 * 4 * t.size.height
        assert t.thumb_requests - before_requests <= 5 * visible_items
        assert len(loader.calls) <= t.thumb_requests


async def test_find_narrows_live_and_the_found_row_stays_in_view_after() -> None:
    vm = fake_view_model(5000)
    app = ListApp(vm, CountingLoader())
    async with app.run_test(size=(60, 22)) as pilot:
        t = app.query_one(ThumbList)
        t.query = "004321"
        await pilot.pause()
        assert t.rows.tolist() == [4321]
        assert t.highlighted_row == 4321 and ("moved", 4321) in app.events
        assert t.border_title == 'all · "004321" · 1/5,000'
        t.query = ""  # the list grows back to 5,000 rows: the found row must stay visible
        await pilot.pause()
        assert t.highlighted_row == 4321 and len(t.rows) == 5000
        top = int(t.scroll_offset.y)
        item_top = int(t._pos[4321]) * ITEM_HEIGHT
        assert top <= item_top < top + t.scrollable_content_region.height
        t.query = "PORTRAITS/"  # case-insensitive, on the whole album path
        await pilot.pause()
        assert len(t.rows) == 1250 and all(vm.paths[r].startswith("portraits/") for r in t.rows)


async def test_real_thumbnails_decode_in_the_background(small_album: Path, tmp_path: Path) -> None:
    vm = album_view_model(small_album)
    vm.state_dir = tmp_path / "state"
    app = ListApp(vm)  # the real loader: picksel.thumbs.load_thumbnail
    async with app.run_test(size=(60, 40)) as pilot:
        t = app.query_one(ThumbList)
        for _ in range(50):
            await pilot.pause(0.05)
            if not t._pending and len(t._swatches) >= min(len(vm.paths), 18):
                break
        lines = [t.render_line(y) for y in range(t.size.height)]
        half_cells = [seg for line in lines for seg in line if seg.text == "▀"]
        assert len(half_cells) >= 6 * 2 * 10  # decoded swatches, 6 cells × 2 lines each
        assert any("n/a" in line.text for line in lines)  # broken.jpg: placeholder, no crash
        assert list((vm.state_dir / "thumbs" / "64").glob("*.png"))


class PreviewApp(App):
    def compose(self) -> ComposeResult:
        yield ImagePreview()


async def _wait_for(pilot, predicate) -> None:
    for _ in range(150):
        await pilot.pause(0.02)
        if predicate():
            return


async def test_image_preview_shows_images_and_survives_broken_files(small_album: Path) -> None:
    app = PreviewApp()
    async with app.run_test(size=(40, 16)) as pilot:
        p = app.query_one(ImagePreview)
        photo = sorted((small_album / "photos").glob("*.jpg"))[0]
        p.show(photo)
        await _wait_for(pilot, lambda: p.image is not None)
        assert p.image is not None and p.image.size[0] > 64 and p.caption == photo.name
        p.show(small_album / "digits" / "broken.jpg", "")
        await _wait_for(pilot, lambda: p.image is not None and is_placeholder(p.image))
        assert p.image is not None and is_placeholder(p.image)
        assert p.caption.startswith("broken.jpg — ")
        p.show(None)
        await pilot.pause()
        assert p.image is None and p.caption == ""
