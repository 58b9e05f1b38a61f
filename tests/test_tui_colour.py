"""Colour that survives the terminal: half-cell pictures dithered to the xterm palette in
a 256-colour terminal, and kept in colour under NO_COLOR while the interface greys.

What reaches the terminal is judged the way Rich writes it: a cell's truecolor is
downgraded to an xterm number, and the terminal paints that number's colour.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from rich.color import EIGHT_BIT_PALETTE, Color, ColorSystem
from rich.segment import Segment
from textual.geometry import Region
from tui_app_helpers import index_album, make_app, settle, show_in_preview, wait_until

from picksel.tui.widgets.preview import ImagePreview
from picksel.tui.widgets.thumblist import ITEM_HEIGHT, THUMB_CELLS

SIZE = (120, 40)


@pytest.fixture
def album(small_album: Path) -> Path:
    return index_album(small_album)


def _term_256(monkeypatch: pytest.MonkeyPatch) -> None:
    """A terminal that says it has 256 colours (TERM=xterm-256color, no COLORTERM)."""
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.delenv("COLORTERM", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)


def _rgb(color) -> tuple[int, int, int] | None:
    return None if color is None or color.triplet is None else tuple(color.triplet)


def _as_written_256(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    """The colour a 256-colour terminal shows for a truecolor cell Rich writes."""
    number = Color.from_rgb(*rgb).downgrade(ColorSystem.EIGHT_BIT).number
    return tuple(EIGHT_BIT_PALETTE[number])


def _cells(segments: list[Segment]) -> list[tuple]:
    """(foreground rgb, background rgb) of every image cell (``▀``) in ``segments``."""
    out = []
    for text, style, _control in segments:
        if style is None or not text or set(text) != {"▀"}:
            continue
        out += [(_rgb(style.color), _rgb(style.bgcolor))] * len(text)
    return out


def _gradient(w: int = 96, h: int = 48) -> Image.Image:
    """A smooth colour gradient: what a 256-colour terminal turns into flat bands."""
    x = np.linspace(0, 1, w)[None, :].repeat(h, 0)
    y = np.linspace(0, 1, h)[:, None].repeat(w, 1)
    rgb = np.stack([40 + 180 * x, 60 + 120 * y, 200 - 150 * x * y], -1)
    return Image.fromarray(rgb.round().astype(np.uint8), "RGB")


def _pixels(strips) -> np.ndarray:
    """(2·rows, cols, 3) pixel array back from half-cell strips."""
    rows = []
    for strip in strips:
        cells = _cells(list(strip))
        rows.append([c[0] for c in cells])
        rows.append([c[1] for c in cells])
    return np.asarray(rows, dtype=float)


def test_256_colour_cells_are_written_exactly_and_dithered() -> None:
    """Every cell is a colour the dithering chose, and the picture is dithered:
    averaged over small blocks it stays closer to the photo than Rich's own cell by cell
    downgrade of the truecolor picture (the flat bands the issue reported)."""
    from picksel.tui.halfcell import halfcell_strips, palette

    image = _gradient()
    cols, rows = 48, 12
    dithered = halfcell_strips(image, cols, rows, "256", fit="stretch")
    truecolor = halfcell_strips(image, cols, rows, "truecolor", fit="stretch")
    assert len(dithered) == rows and all(s.cell_length == cols for s in dithered)

    written = _pixels(dithered)
    pal = palette("256")
    emitted = {tuple(int(v) for v in c) for c in pal.emit}
    assert {tuple(int(v) for v in p) for p in written.reshape(-1, 3)} <= emitted
    ours = np.asarray(
        [_as_written_256(tuple(int(v) for v in p)) for p in written.reshape(-1, 3)], dtype=float
    ).reshape(written.shape)  # what the terminal paints

    source = _pixels(truecolor)
    nearest = np.asarray(
        [_as_written_256(tuple(int(v) for v in p)) for p in source.reshape(-1, 3)], dtype=float
    ).reshape(source.shape)
    assert (ours != nearest).any(axis=-1).mean() > 0.2  # not a cell-by-cell mapping

    def block_error(pixels: np.ndarray) -> float:
        k = 4
        h, w = (pixels.shape[0] // k) * k, (pixels.shape[1] // k) * k
        mean = lambda a: a[:h, :w].reshape(h // k, k, w // k, k, 3).mean(axis=(1, 3))  # noqa: E731
        return float(np.abs(mean(pixels) - mean(source)).mean())

    assert block_error(ours) < 0.85 * block_error(nearest)
    assert len({tuple(p) for p in ours.reshape(-1, 3)}) > len({tuple(p) for p in nearest.reshape(-1, 3)})


def test_truecolor_cells_are_the_picture_itself() -> None:
    from picksel.tui.halfcell import halfcell_strips

    image = _gradient(8, 8)
    strips = halfcell_strips(image, 8, 4, "truecolor", fit="stretch")
    assert np.array_equal(_pixels(strips), np.asarray(image, dtype=float))


async def test_a_256_colour_terminal_gets_dithered_palette_swatches_and_preview(
    album: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The list's swatches and the half-cell preview, as the app renders them in a
    terminal that says it has 256 colours: only colours that reach the screen exactly."""
    _term_256(monkeypatch)
    app = make_app(album)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert app.console.color_system == "256"
        thumbs = app.thumbs
        row = app.curator.rows["photos/00_astronaut.jpg"]
        thumbs.focus()
        thumbs.focus_row(row)
        app.current_row = row
        preview = app.query_one("#preview", ImagePreview)
        await wait_until(pilot, lambda: preview.image is not None and preview.path is not None
                         and preview.path.name == "00_astronaut.jpg")
        await wait_until(pilot, lambda: thumbs._thumb(row) is not None)  # noqa: SLF001
        await pilot.pause()

        swatch = _cells([s for line in thumbs._thumb(row) for s in line])  # noqa: SLF001
        assert len(swatch) == THUMB_CELLS * ITEM_HEIGHT
        image_widget = preview.query_one(".preview-image")
        w, h = image_widget.size
        shown = _cells([s for strip in image_widget.render_lines(Region(0, 0, w, h)) for s in strip])
        assert len(shown) > 100
        colours = {rgb for cell in swatch + shown for rgb in cell if rgb is not None}
        assert len(colours) > 8
        from picksel.tui.halfcell import palette  # the old code had no palette at all

        pal = palette("256")
        emitted = {tuple(int(v) for v in c): tuple(int(v) for v in s)
                   for c, s in zip(pal.emit, pal.shown, strict=True)}
        for rgb in colours:  # each cell is a colour the dithering chose, shown as chosen
            assert rgb in emitted
            assert _as_written_256(rgb) == emitted[rgb]


async def test_no_color_greys_the_interface_but_not_the_pictures(
    album: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NO_COLOR: a photo curator without colour is blind. Text and panes go grey (Textual's
    monochrome filter), the swatches and the preview keep their colours."""
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLORTERM", "truecolor")
    app = make_app(album)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert app.no_color
        preview = await show_in_preview(app, pilot, "photos/00_astronaut.jpg")
        row = app.current_row
        await wait_until(pilot, lambda: app.thumbs._thumb(row) is not None)  # noqa: SLF001
        await pilot.pause()

        def saturated(cells) -> int:
            return sum(1 for cell in cells for rgb in cell if rgb and max(rgb) - min(rgb) > 30)

        image_widget = preview.query_one(".preview-image")
        w, h = image_widget.size
        shown = _cells([s for strip in image_widget.render_lines(Region(0, 0, w, h)) for s in strip])
        assert saturated(shown) > 50  # the astronaut's suit is orange, the flag red

        thumbs = app.thumbs
        lines = [thumbs.render_lines(Region(0, y, thumbs.size.width, 1))[0] for y in range(thumbs.size.height)]
        assert saturated(_cells([s for strip in lines for s in strip])) > 10

        # ... while every colour of the interface's text is grey
        ui_colours = set()
        for widget_id in ("#sidebar", "#map"):
            widget = app.query_one(widget_id)
            for strip in widget.render_lines(Region(0, 0, *widget.size)):
                for text, style, _ in strip:
                    if style is not None and text.strip() and set(text) != {"▀"}:
                        ui_colours |= {c for c in (_rgb(style.color), _rgb(style.bgcolor)) if c}
        assert ui_colours
        assert all(max(c) - min(c) <= 2 for c in ui_colours), ui_colours


async def test_no_color_pictures_keep_their_colours_behind_a_dialog(
    album: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Behind a dialog Textual tints the screen and strips every style's meta, which is
    what told the NO_COLOR filter a cell is a picture: the preview went grey while the
    help was open. Tinted like the rest, the picture keeps its colours."""
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLORTERM", "truecolor")
    app = make_app(album)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(app, pilot)
        preview = await show_in_preview(app, pilot, "photos/00_astronaut.jpg")
        await pilot.pause()
        area = preview.query_one(".preview-image").region
        base = app.screen
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: app.screen is not base)
        await pilot.pause()
        dialog = app.screen.query_one(".dialog").region
        strips = app.screen._compositor.render_strips()  # noqa: SLF001 - the lines written
        free = [y for y in range(area.y, area.bottom) if not dialog.y <= y < dialog.bottom]
        assert free, "the dialog covers the whole preview: make the screen taller"
        cells = []
        for y in free:
            x = 0
            for segment in strips[y]:
                if area.x <= x < area.right:
                    cells.append(segment)
                x += segment.cell_length
        saturated = sum(1 for cell in _cells(cells) for rgb in cell if rgb and max(rgb) - min(rgb) > 30)
        assert saturated > 20, saturated


def test_a_grey_picture_is_dithered_with_greys_only() -> None:
    """A handwritten digit or a white wall: no pink and green specks from the colour cube."""
    from picksel.tui.halfcell import halfcell_strips

    ramp = np.linspace(0, 255, 64)[None, :].repeat(32, 0).round().astype(np.uint8)
    image = Image.fromarray(np.stack([ramp] * 3, -1), "RGB")
    for system in ("256", "standard"):
        pixels = _pixels(halfcell_strips(image, 64, 16, system, fit="stretch"))
        assert np.ptp(pixels, axis=-1).max() <= 0 if system == "standard" else True
        shown = np.asarray([_as_written_256(tuple(int(v) for v in p)) for p in pixels.reshape(-1, 3)])
        if system == "256":
            assert np.ptp(shown, axis=-1).max() == 0  # every cell a grey on the screen
            assert len({tuple(p) for p in shown}) >= 20  # and many of them, not 5 bands


@pytest.mark.parametrize(
    ("system", "rgb"),
    [("256", (0, 0, 0)), ("256", (255, 255, 255)), ("256", (0, 95, 135)), ("256", (175, 95, 215)),
     ("standard", (0, 0, 0)), ("standard", (255, 255, 255))],
)
def test_a_colour_the_terminal_has_stays_flat(system: str, rgb: tuple[int, int, int]) -> None:
    """Dithering is for colours between the terminal's own: a black frame or a logo's
    exact colour must not turn into a grid of dots."""
    from picksel.tui.halfcell import halfcell_strips

    strips = halfcell_strips(Image.new("RGB", (32, 32), rgb), 16, 8, system)
    assert len({tuple(p) for p in _pixels(strips).reshape(-1, 3)}) == 1
