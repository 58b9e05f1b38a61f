"""Pilot tests of the thumbnail grid (key t): the list pane's second view."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from textual.geometry import Region
from tui_app_helpers import index_album, make_app, run_selection, saved_state, settle, wait_until

from picksel.tui.app import PickselApp
from picksel.tui.screens.preview import PreviewScreen
from picksel.tui.widgets.graphics import GraphicsMode
from picksel.tui.widgets.thumbgrid import CELL_H, GRID_LRU, IMG_H, Drawn, GridThumbReady

SIZE = (120, 40)


@pytest.fixture
def album(small_album: Path) -> Path:
    return index_album(small_album)


def grid_text(app) -> str:
    """What the grid draws on screen now, as text (one line per screen line)."""
    t = app.thumbs
    return "\n".join("".join(seg.text for seg in t.render_line(y)) for y in range(t.size.height))


def name_of(app, row: int) -> str:
    return Path(app.curator.rel(row)).name


async def open_grid(app, pilot) -> None:
    await settle(app, pilot)
    if app.thumbs.view != "grid":  # an album opened in the grid before reopens in it
        await pilot.press("t")
    assert await wait_until(pilot, lambda: app.thumbs.view == "grid")
    await pilot.pause()


async def test_t_toggles_list_and_grid(album: Path) -> None:
    app = make_app(album)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert app.thumbs.view == "list"
        assert app.main_query("#preview").display
        assert any(b.key == "t" and b.show for b in app.BINDINGS)  # in the footer
        await pilot.press("t")
        assert app.thumbs.view == "grid"
        assert app.main_query("#middle").has_class("-grid")
        assert not app.main_query("#preview").display  # the cells are the preview
        assert app.thumbs.virtual_size.height % CELL_H == 0
        # the grid draws the names of the first images of the list
        assert await wait_until(pilot, lambda: name_of(app, int(app.thumbs.rows[0]))[:10] in grid_text(app))
        await pilot.press("t")
        assert app.thumbs.view == "list"
        assert app.main_query("#preview").display


async def test_grid_cursor_moves_in_two_dimensions(album: Path) -> None:
    app = make_app(album)
    async with app.run_test(size=SIZE) as pilot:
        await open_grid(app, pilot)
        t = app.thumbs
        cols = t._columns()
        n = len(t.rows)
        assert cols >= 2 and n > cols
        assert t.cursor == 0
        await pilot.press("right")
        assert t.cursor == 1
        await pilot.press("j")
        assert t.cursor == 1 + cols
        await pilot.press("h")
        assert t.cursor == cols
        await pilot.press("up")
        assert t.cursor == 0
        await pilot.press("end")
        assert t.cursor == n - 1
        await pilot.press("home")
        assert t.cursor == 0
        await pilot.press("pagedown")
        assert t.cursor == min(n - 1, t._page_items())
        await pilot.press("pageup")
        assert t.cursor == 0
        # the highlighted cell is the current image: the map cursor follows it
        await pilot.press("l")
        assert app.current_row == int(t.rows[1])
        assert await wait_until(pilot, lambda: app.map_view.cursor_row == int(t.rows[1]))
        # and it is drawn: its frame bars sit on its image lines
        assert "▐" in grid_text(app)
        # a click on a cell of the second row highlights it (widget offset: border + cell)
        await pilot.click("#list", offset=(1 + 3, 1 + CELL_H + 2))
        assert await wait_until(pilot, lambda: t.cursor == cols)


async def test_x_p_enter_act_on_the_highlighted_cell(album: Path) -> None:
    app = make_app(album)
    async with app.run_test(size=SIZE) as pilot:
        await open_grid(app, pilot)
        t = app.thumbs
        await pilot.press("right")
        row = int(t.rows[1])
        await pilot.press("x")
        assert app.curator.rel(row) in saved_state(app).excluded
        await pilot.press("right")
        pinned = int(t.rows[t.cursor])
        assert pinned != row
        await pilot.press("p")
        assert app.curator.rel(pinned) in saved_state(app).pins
        await pilot.press("enter")
        assert await wait_until(pilot, lambda: isinstance(app.screen, PreviewScreen))
        assert app.screen.row == pinned
        await pilot.press("escape")
        assert t.view == "grid"


async def test_filter_and_find_apply_to_the_grid(album: Path) -> None:
    app = make_app(album)
    async with app.run_test(size=SIZE) as pilot:
        await open_grid(app, pilot)
        t = app.thumbs
        await pilot.press("right")
        row = int(t.rows[1])
        await pilot.press("x")
        await pilot.press("v", "v")  # all → selected → excluded
        assert t.filter == "excluded"
        assert [int(r) for r in t.rows] == [row]
        text = grid_text(app)
        assert name_of(app, row)[:10] in text
        assert name_of(app, int(t.rows[0]))[:10] in text
        await pilot.press("v", "v", "v", "v")  # → favorites → flagged → duplicates → all
        assert t.filter == "all"
        # find: only the digits (file names under digits/)
        await pilot.press("slash")
        await pilot.press(*"digits")
        assert await wait_until(pilot, lambda: t.query == "digits")
        shown = [app.curator.rel(int(r)) for r in t.rows]
        assert shown and all("digits" in rel for rel in shown)
        assert app.current_row in {int(r) for r in t.rows}  # the cursor stays on a shown cell
        text = grid_text(app)
        names = {Path(rel).name for rel in shown}
        photos = [p for p in app.curator.paths if p.startswith("photos/") and Path(p).name not in names]
        assert photos and not any(Path(p).name[:10] in text for p in photos)
        assert Path(shown[0]).name[:10] in text


async def test_grid_is_remembered_per_album(album: Path, tmp_path: Path, demo_images) -> None:
    app = make_app(album)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await run_selection(app, pilot, count=4, iterations=5)
        await pilot.press("t")
        assert saved_state(app).settings.view == "grid"
    state = saved_state(app)
    assert (state.settings.count, state.settings.iterations) == (4, 5)  # not overwritten
    assert state.selection is not None and state.selection.count == 4

    again = make_app(album)
    async with again.run_test(size=SIZE) as pilot:
        await settle(again, pilot)
        assert again.thumbs.view == "grid"
        assert not again.main_query("#preview").display
        await pilot.press("t")
    assert saved_state(again).settings.view == "list"

    # another album keeps its own view
    other = tmp_path / "other"
    other.mkdir()
    for i, img in enumerate(list(demo_images.values())[:3]):
        img.resize((64, 48)).save(other / f"{i}.png")
    index_album(other)
    third = make_app(other)
    async with third.run_test(size=SIZE) as pilot:
        await settle(third, pilot)
        assert third.thumbs.view == "list"


async def test_grid_emits_sixel_when_the_terminal_reports_sixel(album: Path, monkeypatch) -> None:
    """textual-image's probe found sixel (what it does in xterm -ti vt340): in auto mode
    the grid's lines carry sixel pictures (DCS: ESC P … q … ESC \\), and not otherwise."""
    import textual_image.renderable as renderable
    from textual_image.renderable.sixel import Image as SixelRenderable

    monkeypatch.setattr(renderable, "Image", SixelRenderable)
    app = PickselApp(album, graphics="auto", seed=3, compute_umap=False)
    async with app.run_test(size=SIZE) as pilot:
        await open_grid(app, pilot)
        t = app.thumbs
        assert t.grid.mode is GraphicsMode.SIXEL
        cols = t._columns()
        first = [int(r) for r in t.rows[:cols]]
        rows_on_screen = (t.content_region.height - IMG_H) // CELL_H + 1
        shown = [int(r) for r in t.rows[: rows_on_screen * cols]]
        assert await wait_until(pilot, lambda: all(t.grid._get(r) is not None for r in shown), rounds=300)
        lines = t.render_lines(Region(0, 0, t.outer_size.width, t.outer_size.height))
        top = t.content_region.y - t.region.y  # the border
        with_sixel = [
            i for i, strip in enumerate(lines) if any(seg.text.startswith("\x1bP") for seg in strip)
        ]
        # on the line below the images of each cell row wholly on screen, before anything
        # else on it: Textual cuts lines into pieces and drops what follows the last one;
        # a row cut by the bottom edge gets its pictures cropped on the bottom border
        whole = [top + r * CELL_H + IMG_H for r in range(rows_on_screen)]
        cut = t.content_region.height - rows_on_screen * CELL_H
        assert 0 < cut < IMG_H, "SIZE must leave a cell row cut by the bottom edge"
        assert with_sixel == [*whole, top + t.content_region.height]
        segments = list(lines[with_sixel[0]])
        sixels = [seg.text for seg in segments if seg.text.startswith("\x1bP")]
        assert len(sixels) == len(first)
        assert segments[1].text.startswith("\x1bP") and segments[0].control
        for data in sixels:
            assert data[: data.index("#")].rstrip("0123456789;\"").endswith("q")
            assert data.endswith("\x1b\\")
        assert lines[with_sixel[0]].cell_length == t.outer_size.width

        # the cut row: each picture is the top of the whole one, no taller than its lines
        from picksel.tui.widgets.graphics import cell_pixel_size

        cut_row = [int(r) for r in t.rows[rows_on_screen * cols : (rows_on_screen + 1) * cols]]
        assert await wait_until(pilot, lambda: all(t.grid._get(r) is not None for r in cut_row), rounds=300)
        lines = t.render_lines(Region(0, 0, t.outer_size.width, t.outer_size.height))
        cropped = [seg.text for seg in lines[-1] if seg.text.startswith("\x1bP")]
        assert len(cropped) == len(cut_row)
        limit = cut * cell_pixel_size()[1]
        for row, data in zip(cut_row, cropped, strict=True):
            height = int(data[data.index('"') + 1 :].split("#")[0].split(";")[3])
            assert limit - 6 < height <= limit
            whole_data = t.grid._get(row).sixel
            assert whole_data.startswith(data[: data.index('"')]) and data.endswith("-\x1b\\")
            assert data[data.index("#") : -2] == whole_data[whole_data.index("#") :][: len(data) - 2 - data.index("#")]

    text_app = make_app(album)  # text graphics: half-cell thumbnails, no sixel
    async with text_app.run_test(size=SIZE) as pilot:
        await open_grid(text_app, pilot)
        t = text_app.thumbs
        assert t.grid.mode is GraphicsMode.HALFCELL
        first = int(t.rows[0])
        assert await wait_until(pilot, lambda: t.grid._get(first) is not None, rounds=300)
        line = [seg for y in range(CELL_H) for seg in t.render_line(y)]
        assert not any("\x1bP" in seg.text for seg in line)
        assert any(seg.text == "▀" and seg.style and seg.style.bgcolor for seg in line)


async def test_page_scroll_never_decodes_on_the_ui_thread(album: Path) -> None:
    """Every decode waits on a gate here: page scrolls still move and draw at once
    (placeholders), and every thumbnail is made in a worker thread."""
    from picksel.thumbs import load_thumbnail

    gate = threading.Event()
    threads: list[str] = []

    def slow_loader(root, rel, state_dir, size):
        threads.append(threading.current_thread().name)
        gate.wait(20)
        return load_thumbnail(root, rel, state_dir, size)

    app = make_app(album)
    try:
        async with app.run_test(size=(120, 30)) as pilot:
            await settle(app, pilot)
            t = app.thumbs
            t.grid.loader = slow_loader
            t.grid.clear()
            await pilot.press("t")
            for _ in range(3):
                before = t.cursor
                await pilot.press("pagedown")
                assert t.cursor > before or t.cursor == len(t.rows) - 1
                grid_text(app)  # draws now, with placeholders
            assert await wait_until(pilot, lambda: len(threads) > 0)
            assert len(t.grid) == 0  # nothing decoded yet: the gate is shut
            gate.set()
            last = int(t.rows[t.cursor])
            assert await wait_until(pilot, lambda: t.grid._get(last) is not None, rounds=300)
            assert threading.main_thread().name not in threads
            assert threading.current_thread().name not in threads
    finally:
        gate.set()


def test_drawn_thumbnails_are_bounded() -> None:
    """However far one scrolls, the grid keeps at most GRID_LRU drawn thumbnails."""
    from picksel.tui.widgets.thumblist import ThumbList

    t = ThumbList()
    gen = t.grid.generation
    for row in range(GRID_LRU * 3):
        assert t.grid.ready(GridThumbReady(row, gen, Drawn(sixel="x")))
    assert len(t.grid) == GRID_LRU
    assert t.grid._get(GRID_LRU * 3 - 1) is not None and t.grid._get(0) is None
    t.grid.clear()  # a stale worker's result for the old files is dropped
    assert not t.grid.ready(GridThumbReady(1, gen, Drawn(sixel="x")))
    assert len(t.grid) == 0


def test_crop_sixel_keeps_whole_bands_and_says_the_new_height() -> None:
    """Cutting after the last whole 6-row band that fits, with the raster height lowered:
    the terminal draws exactly the top of the picture, never below the given height."""
    import numpy as np
    from PIL import Image

    from picksel.tui.widgets.thumbgrid import crop_sixel, sixel_data

    rng = np.random.default_rng(1)
    pic = Image.fromarray(rng.integers(0, 256, (60, 40, 3), dtype=np.uint8))
    data = sixel_data(pic, (40, 60))
    assert data.count("-") == 10  # 60 rows: ten bands
    for height, bands in ((6, 1), (17, 2), (59, 9)):
        out = crop_sixel(data, height)
        assert out is not None and out.count("-") == bands
        assert f'"1;1;40;{bands * 6}#' in out and out.endswith("-\x1b\\")
    assert crop_sixel(data, 60) == data and crop_sixel(data, 400) == data
    assert crop_sixel(data, 5) is None
