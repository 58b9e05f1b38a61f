"""The map pane: every image of the album as a point of the 2-D map.

Text mode draws a braille scatter through :mod:`picksel.tui.braille`: the whole grid
is rasterised in one numpy pass and each row becomes one cached :class:`Strip`
(run-length encoded by style). ``render_line`` only returns cached strips, a new
result (``set_states``), new coordinates, a zoom or a resize rebuild the raster,
and a cursor move rebuilds just the one or two rows the cursor left and entered.

Where the terminal speaks sixel or the kitty graphics protocol (or when the user
forces a mode with ``g``) the same map is rendered into a PIL image at pixel
resolution and shown through a textual-image widget under the label line.

Programmatic calls (:meth:`MapView.move_cursor_to`) never post
:class:`MapView.CursorMoved`; only the user's keys and clicks do, so the app can make
the map and the list follow each other without a message ping-pong.
"""

from __future__ import annotations

import numpy as np
from PIL import Image as PILImage
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Region
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget

from picksel.tui import braille
from picksel.tui.braille import View
from picksel.tui.viewstate import (
    STATE_COLORS,
    STATE_CORE,
    STATE_EXCLUDED,
    STATE_NONE,
    STATE_STABLE,
    STATE_VARIABLE,
)
from picksel.tui.widgets.graphics import (
    GraphicsMode,
    cell_pixel_size,
    draws_word,
    image_class,
    map_mode,
    unreported,
)
from picksel.tui.widgets.row_message import RowMessage

MAP_NONE_COLOR = "#5c5c62"
"""Unselected points on the map: quieter than the list's grey, so the picks stand out."""

# Style per run key (-1 = empty cell, else state code).
_COLOR_STYLES: dict[int, Style] = {
    -1: Style(),
    STATE_NONE: Style(color=MAP_NONE_COLOR),  # unselected: quieter than the list's grey
    STATE_VARIABLE: Style(color=STATE_COLORS[STATE_VARIABLE]),
    STATE_STABLE: Style(color=STATE_COLORS[STATE_STABLE]),
    STATE_CORE: Style(color=STATE_COLORS[STATE_CORE], bold=True),
    STATE_EXCLUDED: Style(color=STATE_COLORS[STATE_EXCLUDED], bold=True),
}
# NO_COLOR: colours are stripped, so the states differ by attributes instead.
_MONO_STYLES: dict[int, Style] = {
    -1: Style(),
    0: Style(dim=True),
    1: Style(),
    2: Style(bold=True),
    3: Style(bold=True, underline=True),
    4: Style(bold=True, reverse=True),
}
_CURSOR_COLOR = Style(color="#000000", bgcolor="#ffd700", bold=True)
LEGEND: tuple[tuple[str, str, str, int], ...] = (
    (braille.SELECTED_CHAR, "core", "core", STATE_CORE),
    (braille.SELECTED_CHAR, "stable", "stbl", STATE_STABLE),
    (braille.SELECTED_CHAR, "variable", "var", STATE_VARIABLE),
    (braille.EXCLUDED_CHAR, "excluded", "excl", STATE_EXCLUDED),
    ("⠂", "not selected", "other", STATE_NONE),
)
"""The map's one-line legend: mark, word, short word (narrow panes), state; the cursor
is added after them."""
_CURSOR_MONO = Style(reverse=True, bold=True, blink=True)
_PLAIN = Style()
_LABEL_STYLE = Style(bold=True)
_INFO_STYLE = Style(dim=True)
CURSOR_CHAR = "+"


class MapView(Widget, can_focus=True):
    """Braille (or pixel) scatter of the album map with a keyboard cursor."""

    DEFAULT_CSS = """
    MapView {
        width: 1fr;
        height: 1fr;
        min-height: 3;
    }
    MapView > .map-image {
        dock: bottom;
        width: 100%;
        margin-bottom: 1;  /* the legend line */
    }
    """

    BINDINGS = [
        Binding("left,h", "move('left')", "←", show=False),
        Binding("right,l", "move('right')", "→", show=False),
        Binding("up,k", "move('up')", "↑", show=False),
        Binding("down,j", "move('down')", "↓", show=False),
        Binding("plus,equals_sign", "zoom_in", "Zoom +", key_display="+"),
        Binding("minus", "zoom_out", "Zoom -", key_display="-"),
        Binding("0", "zoom_reset", "Zoom reset", key_display="0"),
        Binding("g", "cycle_graphics", "Graphics"),
    ]

    class CursorMoved(RowMessage):
        """The user moved the map cursor (keys or click) to index row ``row``."""

    class GraphicsChanged(Message):
        """The user cycled the graphics mode with ``g`` (``mode`` is the requested one,
        ``effective`` what the map actually draws with)."""

        def __init__(self, map_view: MapView, mode: GraphicsMode, effective: GraphicsMode) -> None:
            super().__init__()
            self.map_view = map_view
            self.mode = mode
            self.effective = effective

        @property
        def control(self) -> MapView:
            return self.map_view

    def __init__(
        self,
        *,
        graphics: GraphicsMode | str = "auto",
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._norm = np.zeros((0, 2), dtype=np.float64)
        self._states = np.zeros(0, dtype=np.uint8)
        self._label = "map"
        self._view = View()
        self._cursor: int | None = None
        self._mode = GraphicsMode.parse(graphics)
        # Caches, all keyed on the grid size they were built for.
        self._grid: tuple[int, int] = (0, 0)  # (width, plot height) in cells
        self._screen: np.ndarray | None = None  # projected points, dot units
        self._finder: braille.DirectionFinder | None = None  # built on the first move per projection
        self._dots: braille.DotGrid | None = None  # where each point lands (positions only)
        self._raster: braille.Raster | None = None
        self._strips: list[Strip | None] = []
        self._cursor_cell: tuple[int, int] | None = None  # (row, col) in the plot grid
        self._label_strip: Strip | None = None
        self._legend_strip: Strip | None = None
        self._image_widget: Widget | None = None
        self.rows_built = 0  # strips built since creation (tests and bench read it)

    # ---- public API ---------------------------------------------------------------

    @property
    def cursor_row(self) -> int | None:
        """Index row under the cursor (None before any point exists)."""
        return self._cursor

    @property
    def view(self) -> View:
        return self._view

    @property
    def graphics(self) -> GraphicsMode:
        return self._mode

    @property
    def effective_graphics(self) -> GraphicsMode:
        """What the map draws with now (AUTO resolved; TEXT = braille). Under NO_COLOR
        half-cell falls back to braille: Textual greys its pixels, and core, excluded and
        unselected points come out the same grey, while braille cells keep their
        bold/underline/reverse/dim attributes (sixel and kitty bypass the filter)."""
        mode = map_mode(self._mode)
        if mode is GraphicsMode.HALFCELL and self._no_color():
            return GraphicsMode.TEXT
        return mode

    def set_coords(self, coords: np.ndarray, label: str) -> None:
        """New map coordinates (N, 2) for every index row; resets zoom; keeps the cursor
        row when it still exists. ``label`` is shown on the first line."""
        self._norm = braille.normalise(np.asarray(coords))
        n = self._norm.shape[0]
        if self._states.shape[0] != n:
            self._states = np.zeros(n, dtype=np.uint8)
        if self._cursor is not None and self._cursor >= n:
            self._cursor = None
        if self._cursor is None and n:
            self._cursor = self._central_row()
        self._label = label
        self._view = View()
        self._invalidate_all()

    def set_label(self, label: str) -> None:
        """Change only the label line (e.g. UMAP progress); keeps zoom, cursor and the
        cached plot rows, so a progress tick never disturbs what the user is looking at."""
        if label == self._label:
            return
        self._label = label
        self._label_strip = None
        if self.is_mounted:
            self.refresh(Region(0, 0, self.size.width, 1))

    def set_states(self, states: np.ndarray) -> None:
        """New state code per row (see :mod:`picksel.tui.viewstate`); rebuilds the raster."""
        states = np.asarray(states, dtype=np.uint8)
        if states.shape[0] != self._norm.shape[0]:
            raise ValueError(f"{states.shape[0]} states for {self._norm.shape[0]} map points")
        self._states = states.copy()
        self._raster = None
        self._strips = []
        self._refresh_all()

    def move_cursor_to(self, row: int | None) -> None:
        """Put the cursor on ``row`` (panning when it is off screen). Posts nothing."""
        if row is not None and not (0 <= row < self._norm.shape[0]):
            return
        self._set_cursor(row)

    def set_graphics(self, mode: GraphicsMode | str) -> None:
        """Force a graphics mode (auto, sixel, kitty, half-cell, text)."""
        self._mode = GraphicsMode.parse(mode)
        self._label_strip = None
        self._sync_image_widget()
        self.refresh()

    # ---- actions ------------------------------------------------------------------

    def action_move(self, direction: str) -> None:
        if self._norm.shape[0] == 0:
            return
        screen = self._ensure_screen()
        if self._cursor is None:
            target = self._central_row()
        else:
            if self._finder is None or self._finder.screen is not screen:
                self._finder = braille.DirectionFinder(screen)
            target = self._finder.nearest_in_direction(self._cursor, direction)
        if target is not None and target != self._cursor:
            self._set_cursor(target)
            self.post_message(self.CursorMoved(self, target))

    def action_zoom_in(self) -> None:
        self._set_view(self._view.zoomed(2.0, self._cursor_norm()))

    def action_zoom_out(self) -> None:
        self._set_view(self._view.zoomed(0.5, self._cursor_norm()))

    def action_zoom_reset(self) -> None:
        self._set_view(View())

    def action_cycle_graphics(self) -> None:
        self.set_graphics(self._mode.next())
        self.post_message(self.GraphicsChanged(self, self._mode, self.effective_graphics))

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None or offset.y < 1 or self._norm.shape[0] == 0:
            return
        width, height = self._grid_size()
        if self._image_widget is not None:
            # Pixel map: same normalised layout, but projected over the image's cells.
            sx = (offset.x + 0.5) / max(1, width) * (2 * width - 1)
            sy = (offset.y - 1 + 0.5) / max(1, height) * (4 * height - 1)
        else:
            sx, sy = offset.x * 2 + 0.5, (offset.y - 1) * 4 + 1.5
        row = braille.nearest_point(self._ensure_screen(), sx, sy)
        if row is not None:
            self.focus()
            if row != self._cursor:
                self._set_cursor(row)
                self.post_message(self.CursorMoved(self, row))

    def on_resize(self, event: events.Resize) -> None:
        self._label_strip = None
        self._legend_strip = None
        if self._grid_size() != self._grid:
            self._invalidate_all()

    def on_mount(self) -> None:
        # is_mounted only turns True after the Mount handlers ran, and _sync_image_widget
        # (rightly) does nothing before that: run it just after, or a pixel mode given
        # at start (`--graphics halfcell`) would never mount its image.
        self.call_after_refresh(self._sync_image_widget)

    # ---- rendering ----------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if y == 0:
            if self._label_strip is None or self._label_strip.cell_length != width:
                self._label_strip = self._build_label(width)
            return self._label_strip
        if y == self.size.height - 1 and self.size.height >= 3:
            if self._legend_strip is None or self._legend_strip.cell_length != width:
                self._legend_strip = self._build_legend(width)
            return self._legend_strip
        if self._image_widget is not None:
            return Strip.blank(width, _PLAIN)
        self._ensure_raster()
        row = y - 1
        if not (0 <= row < len(self._strips)):
            return Strip.blank(width, _PLAIN)
        strip = self._strips[row]
        if strip is None:
            strip = self._strips[row] = self._build_row(row)
        return strip

    def build_all_rows(self) -> list[Strip]:
        """Render every line as the compositor would (label + plot); used by the bench."""
        return [self.render_line(y) for y in range(self.size.height)]

    # ---- internals ----------------------------------------------------------------

    def _grid_size(self) -> tuple[int, int]:
        """The plot's cells: everything but the label line and the legend line."""
        legend = 1 if self.size.height >= 3 else 0
        return max(0, self.size.width), max(0, self.size.height - 1 - legend)

    def _no_color(self) -> bool:
        return bool(getattr(self.app, "no_color", False)) if self.is_attached else False

    def _styles(self) -> tuple[dict[int, Style], Style]:
        return (_MONO_STYLES, _CURSOR_MONO) if self._no_color() else (_COLOR_STYLES, _CURSOR_COLOR)

    def _central_row(self) -> int | None:
        """The point nearest the middle of the map (the cursor's first home)."""
        if self._norm.shape[0] == 0:
            return None
        d2 = (self._norm[:, 0] - 0.5) ** 2 + (self._norm[:, 1] - 0.5) ** 2
        d2 = np.where(np.isfinite(d2), d2, np.inf)
        i = int(np.argmin(d2))
        return i if np.isfinite(d2[i]) else None

    def _cursor_norm(self) -> tuple[float, float]:
        if self._cursor is not None and np.isfinite(self._norm[self._cursor]).all():
            return float(self._norm[self._cursor, 0]), float(self._norm[self._cursor, 1])
        return self._view.cx, self._view.cy

    def _ensure_screen(self) -> np.ndarray:
        grid = self._grid_size()
        if self._screen is None or self._grid != grid:
            self._grid = grid
            self._screen = braille.project(self._norm, self._view, *grid)
            self._dots = braille.dot_grid(self._screen, *grid)
            self._raster = None
            self._strips = []
        return self._screen

    def _ensure_raster(self) -> braille.Raster:
        screen = self._ensure_screen()
        if self._raster is None:
            assert self._dots is not None and screen is self._screen
            self._raster = braille.rasterise_grid(self._dots, self._states)
            self._strips = [None] * self._grid[1]
            self._cursor_cell = self._cell_of(self._cursor)
        return self._raster

    def _cell_of(self, row: int | None) -> tuple[int, int] | None:
        if row is None or self._screen is None:
            return None
        width, height = self._grid
        sx, sy = self._screen[row]
        if not (np.isfinite(sx) and np.isfinite(sy)):
            return None
        ix, iy = int(np.rint(sx)), int(np.rint(sy))
        if 0 <= ix < 2 * width and 0 <= iy < 4 * height:
            return iy >> 2, ix >> 1
        return None

    def _build_row(self, row: int) -> Strip:
        raster = self._raster
        assert raster is not None
        styles, cursor_style = self._styles()
        runs = braille.row_runs(raster.bits[row], raster.winner[row])
        cur = self._cursor_cell
        segments: list[Segment] = []
        if cur is not None and cur[0] == row:
            col = cur[1]
            pos = 0
            for text, key in runs:
                end = pos + len(text)
                if pos <= col < end:
                    if col > pos:
                        segments.append(Segment(text[: col - pos], styles[key]))
                    segments.append(Segment(CURSOR_CHAR, cursor_style))
                    if end > col + 1:
                        segments.append(Segment(text[col - pos + 1 :], styles[key]))
                else:
                    segments.append(Segment(text, styles[key]))
                pos = end
        else:
            segments = [Segment(text, styles[key]) for text, key in runs]
        self.rows_built += 1
        return Strip(segments, raster.width)

    def _build_label(self, width: int) -> Strip:
        n = self._norm.shape[0]
        left = f" {self._label}"
        mode = self.effective_graphics
        mode_text = draws_word(mode) + ("?" if unreported(self._mode) else "")
        right = f"{n:,} pts · zoom {self._view.zoom:g}× · {mode_text} "
        if len(left) + len(right) + 1 > width:
            right = f"{self._view.zoom:g}× "
        gap = max(1, width - len(left) - len(right))
        strip = Strip(
            [Segment(left, _LABEL_STYLE), Segment(" " * gap, _PLAIN), Segment(right, _INFO_STYLE)]
        )
        return strip.crop_pad(width, 0, 0, Style()) if strip.cell_length != width else strip

    def _build_legend(self, width: int) -> Strip:
        """``⣿ core ⣿ stable ⣿ variable × excluded ⠂ not selected + cursor``, in the
        map's own styles (so NO_COLOR's attributes explain themselves too)."""
        styles, cursor_style = self._styles()
        for short in (False, True):
            segments: list[Segment] = [Segment(" ", _PLAIN)]
            for mark, word, brief, state in LEGEND:
                text = f"{brief} " if short else f" {word}  "
                segments += [Segment(mark, styles[state]), Segment(text, _INFO_STYLE)]
            segments += [Segment(CURSOR_CHAR, cursor_style), Segment("cursor" if short else " cursor", _INFO_STYLE)]
            strip = Strip(segments)
            if strip.cell_length <= width:
                break
        return strip.crop_pad(width, 0, 0, _PLAIN)

    def _set_cursor(self, row: int | None) -> None:
        old = self._cursor
        self._cursor = row
        if old == row:
            return
        self._ensure_screen()
        width, height = self._grid
        if row is not None and self._cell_of(row) is None and self._view.zoom > 1:
            # Keep the cursor on screen: pan so that it is in the middle.
            self._set_view(self._view.centred_on(self._cursor_norm()))
            return
        if self._image_widget is not None:
            self._update_image()
            return
        if self._raster is None:
            self.refresh()
            return
        old_cell = self._cursor_cell
        new_cell = self._cell_of(row)
        self._cursor_cell = new_cell
        for cell in (old_cell, new_cell):
            if cell is not None and cell[0] < len(self._strips):
                self._strips[cell[0]] = None
                self.refresh(Region(0, cell[0] + 1, self.size.width, 1))

    def _set_view(self, view: View) -> None:
        if view == self._view:
            return
        self._view = view
        self._invalidate_all()

    def _invalidate_all(self) -> None:
        self._screen = None
        self._dots = None
        self._raster = None
        self._strips = []
        self._cursor_cell = None
        self._refresh_all()

    def _refresh_all(self) -> None:
        self._label_strip = None
        if self._image_widget is not None:
            self._update_image()
        self.refresh()

    # ---- pixel modes ----------------------------------------------------------------

    def _sync_image_widget(self) -> None:
        """Mount, swap or remove the textual-image child for the effective mode."""
        if not self.is_mounted:
            return
        mode = self.effective_graphics
        wanted = None if mode is GraphicsMode.TEXT else image_class(mode)
        current = self._image_widget
        if current is not None and type(current) is wanted:
            return
        if current is None and wanted is None:
            # Text mode before and after; the label may still name another mode.
            self._label_strip = None
            self.refresh()
            return
        if current is not None:
            current.remove()
            self._image_widget = None
        if wanted is not None:
            widget = wanted(classes="map-image")
            if hasattr(widget, "behind_lines"):  # pixel_images: braille behind a dialog
                widget.behind_lines = self._braille_lines
            self._image_widget = widget
            self.mount(widget)
            self._update_image()
        self._invalidate_all()

    def render_image(self) -> PILImage.Image:
        """The map as a PIL image sized for the pixel modes (half-cell: 1×2 px per cell)."""
        width, height = self._grid_size()
        if self.effective_graphics is GraphicsMode.HALFCELL:
            px_w, px_h, point = width, height * 2, 1
        else:
            cw, ch = cell_pixel_size()
            px_w, px_h, point = width * cw, height * ch, 2 if cw < 14 else 3
        rgb = braille.render_rgb(
            self._norm, self._states, self._view, max(1, px_w), max(1, px_h),
            cursor=self._cursor, point_size=point,
        )
        return PILImage.fromarray(rgb, "RGB")

    def _braille_lines(self, width: int, height: int) -> list[Strip]:
        """The plot in braille, as text mode draws it: what a pixel-mode map shows behind
        a dialog, where pixels cannot be drawn (see :mod:`.pixel_images`). Rows are built
        fresh (the cursor may have moved while the map drew pixels)."""
        self._ensure_raster()
        self._cursor_cell = self._cell_of(self._cursor)
        rows = min(height, self._grid[1])
        return [self._build_row(row) for row in range(rows)]

    def _update_image(self) -> None:
        widget = self._image_widget
        if widget is None:
            return
        width, height = self._grid_size()
        if width <= 0 or height <= 0:
            return
        widget.styles.height = height
        widget.image = self.render_image()  # type: ignore[attr-defined]
