"""The thumbnail list pane: one two-line item per image, selected images first.

Virtualised with the Line API: the widget is a ScrollView whose virtual height is
``2 × items``; ``render_line`` builds only the lines on screen from the numpy order
array, so 100k rows cost what 20 do. Thumbnails are half-cell swatches (6×2 cells,
6×4 pixels) made from the on-disk cache of :mod:`picksel.thumbs`; decoding runs in a
small thread pool, skips rows that scrolled away before their turn, and posts a
message back to the UI thread. Decoded swatches live in a bounded LRU, so memory
stays flat however far the user scrolls.

Programmatic calls (``set_model``, ``focus_row``) never post ``Highlighted``; only
the user's keys and clicks do, so the app can make the map and the list follow each
other without a message ping-pong. ``focus_row`` on a row the current filter hides
switches the filter to "all" (every row is visible there) and highlights it.

When the list itself changes under the highlight (filter, find, a new model after a run or
an exclusion) and that moves the highlight to another image, :class:`ThumbList.Moved` is
posted, so the app can make the map cursor and the preview follow: the highlighted row
is the current image, and must never be a row that is not on screen.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image
from rich.segment import Segment
from rich.style import Style
from textual import events, on
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from picksel.textsafe import printable
from picksel.thumbs import is_placeholder, load_thumbnail
from picksel.tui.findtable import FindTable
from picksel.tui.halfcell import TRUECOLOR, colour_system_of, halfcell_strips
from picksel.tui.marks import KIND_COPY, KIND_FLAG, KIND_KEEP, KIND_NOTE, fit_labels, quality_labels
from picksel.tui.viewstate import (
    STATE_COLORS,
    STATE_CORE,
    STATE_EXCLUDED,
    STATE_NONE,
    STATE_STABLE,
    STATE_VARIABLE,
    ViewModel,
)
from picksel.tui.widgets.graphics import GraphicsMode
from picksel.tui.widgets.row_message import RowMessage
from picksel.tui.widgets.thumbgrid import CELL_H, GridPainter, GridThumbReady

FILTERS = ("all", "selected", "excluded", "favorites", "flagged", "duplicates")
VIEWS = ("list", "grid")
ITEM_HEIGHT = 2
THUMB_CELLS = 6  # swatch width in cells; height is ITEM_HEIGHT cells = 4 pixels
THUMB_CACHE_SIZE = 64  # pixel size of the on-disk thumbnails the swatches come from
SWATCH_LRU = 600  # decoded swatches kept in memory (~25 screens; bounds memory)

ThumbLoader = Callable[[Path, str, Path, int], Image.Image]

_BADGE = {
    STATE_NONE: ("", Style()),
    STATE_VARIABLE: ("variable", Style(color=STATE_COLORS[STATE_VARIABLE])),
    STATE_STABLE: ("stable", Style(color=STATE_COLORS[STATE_STABLE])),
    STATE_CORE: ("core", Style(color=STATE_COLORS[STATE_CORE], bold=True)),
    STATE_EXCLUDED: ("excluded", Style(color=STATE_COLORS[STATE_EXCLUDED], bold=True)),
}
_BADGE_MONO = {
    STATE_NONE: Style(),
    STATE_VARIABLE: Style(),
    STATE_STABLE: Style(bold=True),
    STATE_CORE: Style(bold=True, underline=True),
    STATE_EXCLUDED: Style(bold=True, reverse=True),
}
_PLAIN = Style()
_NAME = Style(bold=True)
_DIM = Style(dim=True)
_MARK_EXCLUDED = Style(color=STATE_COLORS[STATE_EXCLUDED], bold=True)
_MARK_PIN = Style(color="#ffd700", bold=True)
_MARK_FAV = Style(color="#ffaf00", bold=True)
_LABEL = {
    KIND_FLAG: Style(color="#ffd75f", bold=True),
    KIND_NOTE: Style(color="#afafaf"),
    KIND_COPY: Style(color="#ff875f", bold=True),
    KIND_KEEP: Style(color="#5fafff"),
}
_LABEL_MONO = {KIND_FLAG: Style(bold=True), KIND_NOTE: Style(dim=True),
               KIND_COPY: Style(bold=True, underline=True), KIND_KEEP: Style()}
_EMPTY = Style(italic=True, color="#afafaf")
_LOADING = Style(color="#444444")
_BROKEN = Style(color="#ff4040")
_HIGHLIGHT = Style(bgcolor="#264f78")
_HIGHLIGHT_BLUR = Style(bgcolor="#3a3a3a")
_HIGHLIGHT_MONO = Style(reverse=True)


def _fit(text: str, width: int) -> str:
    """``text`` cut to ``width`` cells with an ellipsis (file names are mostly ASCII)."""
    if width <= 0:
        return ""
    if len(text) <= width:
        return text
    return text[: max(0, width - 1)] + "…"


def empty_message(filter_: str, query: str, checked: bool) -> str:
    """The one line an empty list shows instead of a blank pane: why it is empty and
    what to press."""
    found = f' matching "{printable(query)}"' if query else ""
    if filter_ == "all":
        return f'No file name contains "{printable(query)}" (escape clears the find).' if query \
            else "No images in this album (r re-indexes)."
    if filter_ in ("flagged", "duplicates") and not checked:
        return "Quality check not finished yet (the sidebar shows its progress) · v next filter"
    what = {
        "selected": "No selected images" + (found or " yet (s runs a selection)"),
        "excluded": "No excluded images" + found,
        "favorites": "No favorites" + (found or " yet (f sets them from the selection)"),
        "flagged": "No flagged images" + found,
        "duplicates": "No duplicates" + found,
    }.get(filter_, "Nothing to show")
    return what + " · v next filter"


def row_marks(vm: ViewModel, row: int) -> list[tuple[str, Style]]:
    """The one-character marks of index row ``row`` (excluded, pinned, favorite), the
    same in the list and the grid: extend here to add a mark to both."""
    return [
        ("x" if vm.excluded[row] else " ", _MARK_EXCLUDED),
        ("p" if vm.pinned[row] else " ", _MARK_PIN),
        ("*" if vm.favorite[row] else " ", _MARK_FAV),
    ]


def row_badge(state: int, no_color: bool) -> tuple[str, Style]:
    """Tier / excluded badge text and style of a row in state ``state``."""
    badge, style = _BADGE.get(state, ("", Style()))
    return badge, (_BADGE_MONO.get(state, Style()) if no_color else style)


def swatch_segments(
    image: Image.Image, colour_system: str | None = TRUECOLOR
) -> tuple[list[Segment], list[Segment]]:
    """Two lines of half-cell segments (upper/lower pixel per cell) for a thumbnail,
    dithered for ``colour_system`` (see :func:`picksel.tui.halfcell.halfcell_strips`)."""
    if is_placeholder(image):
        text = _fit(" n/a", THUMB_CELLS).ljust(THUMB_CELLS)
        return [Segment(text, _BROKEN)], [Segment(" " * THUMB_CELLS, _PLAIN)]
    top, bottom = halfcell_strips(image, THUMB_CELLS, ITEM_HEIGHT, colour_system)
    return list(top), list(bottom)


class _ThumbReady(Message):
    """A worker finished decoding the swatch of ``row`` (for model ``generation``)."""

    def __init__(self, row: int, generation: int, lines: tuple[list[Segment], list[Segment]]) -> None:
        super().__init__()
        self.row = row
        self.generation = generation
        self.lines = lines


class ThumbList(ScrollView, can_focus=True):
    """Virtualised list of the album's images with thumbnails, tiers and marks."""

    DEFAULT_CSS = """
    ThumbList {
        width: 1fr;
        height: 1fr;
        border: round $foreground 30%;
        border-title-color: $text-muted;
        scrollbar-size-vertical: 1;
        overflow-x: hidden;
    }
    ThumbList:focus {
        border: round $accent;
        border-title-color: $text;
    }
    """

    BINDINGS = [
        Binding("up,k", "move(-1)", "Up", show=False),
        Binding("down,j", "move(1)", "Down", show=False),
        Binding("left,h", "side(-1)", "Left", show=False),
        Binding("right,l", "side(1)", "Right", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "first", "First", show=False),
        Binding("end", "last", "Last", show=False),
        Binding("enter", "activate", "Preview"),
        Binding("v", "cycle_filter", "Filter"),
    ]

    filter: reactive[str] = reactive("all", init=False)
    view: reactive[str] = reactive("list", init=False)
    """"list" (two-line rows with swatches) or "grid" (a contact sheet of thumbnails)."""
    query: reactive[str] = reactive("", init=False)
    """Case-insensitive substring the album path must contain ("" = no search)."""

    class Highlighted(RowMessage):
        """The user moved the highlight to index row ``row``."""

    class Activated(RowMessage):
        """The user pressed enter (or clicked the highlighted item) on index row ``row``."""

    class Moved(Message):
        """The list changed under the highlight, which now sits on another row (or on
        none: an empty list). ``row`` is the new highlighted row."""

        def __init__(self, row: int | None) -> None:
            super().__init__()
            self.row = row

    def __init__(
        self,
        *,
        loader: ThumbLoader | None = None,
        workers: int = 2,
        graphics: GraphicsMode | str = "auto",
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._loader: ThumbLoader = loader or load_thumbnail
        self._workers = max(1, workers)
        self._pool: ThreadPoolExecutor | None = None
        self._vm: ViewModel | None = None
        self._order_all = np.zeros(0, dtype=np.int64)
        self._consensus = np.zeros(0, dtype=np.int64)
        self._order = np.zeros(0, dtype=np.int64)  # index rows of the filtered list
        self._lower: FindTable | None = None  # lower-cased paths, for the find bar
        self._pos = np.zeros(0, dtype=np.int64)  # index row -> position in _order, -1 hidden
        self._cursor = 0  # position of the highlight in _order
        self._generation = 0
        self._swatches: OrderedDict[int, tuple[list[Segment], list[Segment]]] = OrderedDict()
        self._pending: set[int] = set()
        self._lock = threading.Lock()
        self._wanted = (0, -1)  # item positions on screen (read by workers)
        self.lines_rendered = 0  # tests/bench: render_line calls that built a line
        self.thumb_requests = 0  # tests/bench: thumbnails submitted for decoding
        self.grid = GridPainter(self, self._loader)
        self.grid.set_mode(graphics)

    # ---- public API ---------------------------------------------------------------

    @property
    def model(self) -> ViewModel | None:
        return self._vm

    @property
    def rows(self) -> np.ndarray:
        """Index rows in display order under the current filter (read-only view)."""
        view = self._order.view()
        view.flags.writeable = False
        return view

    @property
    def highlighted_row(self) -> int | None:
        """Index row of the highlighted item (None when the filtered list is empty)."""
        if 0 <= self._cursor < len(self._order):
            return int(self._order[self._cursor])
        return None

    @property
    def cursor(self) -> int:
        """Position of the highlight in :attr:`rows`."""
        return self._cursor

    def position(self, row: int) -> int:
        """Position of index row ``row`` in :attr:`rows`, -1 when the list hides it."""
        return int(self._pos[row]) if 0 <= row < len(self._pos) else -1

    def shows(self, row: int) -> bool:
        """Whether index row ``row`` is in the list as filtered now."""
        return 0 <= row < len(self._pos) and self._pos[row] >= 0

    def set_model(self, vm: ViewModel) -> None:
        """Show ``vm``; keeps the highlighted row (if still listed) and, when the paths
        did not change, the decoded thumbnails."""
        keep = self.highlighted_row
        old = self._vm
        same_files = old is not None and old.root == vm.root and (
            old.paths is vm.paths or old.paths == vm.paths
        )
        if not same_files:
            self._generation += 1
            with self._lock:
                self._swatches.clear()
                self._pending.clear()
            self.grid.clear()
        self._vm = vm
        if not same_files:  # made in a thread now: the first find must not wait ~1 s
            self._lower = FindTable(vm.paths) if len(vm.paths) else None
        n = len(vm.paths)
        consensus = np.asarray(vm.consensus, dtype=np.int64)
        consensus = consensus[(consensus >= 0) & (consensus < n)]
        _, first = np.unique(consensus, return_index=True)
        consensus = consensus[np.sort(first)]  # drop duplicates, keep consensus order
        rest = np.ones(n, dtype=bool)
        rest[consensus] = False
        self._order_all = np.concatenate((consensus, np.flatnonzero(rest))).astype(np.int64)
        self._consensus = consensus
        self._quiet = old is None  # the first model: the app places the highlight itself
        try:
            self._apply_filter(keep)
        finally:
            self._quiet = False

    def toggle_view(self) -> str:
        """list ⇄ grid; returns the new view."""
        self.view = VIEWS[(VIEWS.index(self.view) + 1) % len(VIEWS)]
        return self.view

    def set_graphics(self, mode: GraphicsMode | str) -> None:
        """The app's ``g``: the grid draws its thumbnails in the new mode."""
        self.grid.set_mode(mode)
        self.refresh()

    def cycle_filter(self) -> None:
        """all → selected → excluded → favorites → flagged → duplicates → all."""
        self.filter = FILTERS[(FILTERS.index(self.filter) + 1) % len(FILTERS)]

    def focus_row(self, row: int) -> None:
        """Highlight index row ``row`` and scroll it into view. A row hidden by the
        filter switches the filter to "all" first. Posts nothing."""
        if self._vm is None or not (0 <= row < len(self._vm.paths)):
            return
        self._quiet = True
        try:
            if self._pos[row] < 0 and self.query and not self._matches(row):
                self.query = ""  # the watcher rebuilds the order synchronously
            if self._pos[row] < 0:
                self.filter = "all"
        finally:
            self._quiet = False
        pos = int(self._pos[row])
        if pos >= 0:
            self._move_to(pos, post=False, centre=True)

    # ---- reactive -----------------------------------------------------------------

    def validate_filter(self, value: str) -> str:
        if value not in FILTERS:
            raise ValueError(f"unknown filter {value!r}; one of {', '.join(FILTERS)}")
        return value

    def watch_filter(self, old: str, new: str) -> None:
        self._apply_filter(self.highlighted_row)

    def validate_view(self, value: str) -> str:
        if value not in VIEWS:
            raise ValueError(f"unknown view {value!r}; one of {', '.join(VIEWS)}")
        return value

    def watch_view(self, old: str, new: str) -> None:
        self._update_virtual_size()
        self.call_after_refresh(self._scroll_into_view, centre=True)
        self.refresh()

    def watch_query(self, old: str, new: str) -> None:
        # Typing moves the highlight to the first match: Moved tells the map and the preview.
        self._apply_filter(self.highlighted_row)

    # ---- actions ------------------------------------------------------------------

    def action_move(self, delta: int) -> None:
        if len(self._order):
            self._move_to(self._cursor + delta * self._columns())

    def action_side(self, delta: int) -> None:
        if len(self._order):
            self._move_to(self._cursor + delta)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # left/right only mean something in the grid; in the list they go to the app
        return self.view == "grid" if action == "side" else True

    def action_page(self, direction: int) -> None:
        if len(self._order):
            self._move_to(self._cursor + direction * self._page_items())

    def action_first(self) -> None:
        if len(self._order):
            self._move_to(0)

    def action_last(self) -> None:
        if len(self._order):
            self._move_to(len(self._order) - 1)

    def action_activate(self) -> None:
        row = self.highlighted_row
        if row is not None:
            self.post_message(self.Activated(self, row))

    def action_cycle_filter(self) -> None:
        self.cycle_filter()

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        vy = offset.y + int(self.scroll_offset.y)
        if self.view == "grid":
            cell = self.grid.cell_at(offset.x, vy, self.scrollable_content_region.width)
            pos = -1 if cell is None else cell
        else:
            pos = vy // ITEM_HEIGHT
        if 0 <= pos < len(self._order):
            if pos == self._cursor and event.chain >= 2:
                self.action_activate()
            else:
                self._move_to(pos)

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    def on_unmount(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    @on(GridThumbReady)
    def _grid_thumb_ready(self, message: GridThumbReady) -> None:
        message.stop()
        if self.grid.ready(message) and self.view == "grid":
            pos = self.position(message.row)
            if pos >= 0:
                cols = self._columns()
                top = (pos // cols) * CELL_H - int(self.scroll_offset.y)
                if -CELL_H < top < self.size.height:
                    self.refresh()

    @on(_ThumbReady)
    def _thumb_ready(self, message: _ThumbReady) -> None:
        with self._lock:
            self._pending.discard(message.row)
            if message.generation != self._generation:
                return
            self._swatches[message.row] = message.lines
            while len(self._swatches) > SWATCH_LRU:
                self._swatches.popitem(last=False)
        pos = int(self._pos[message.row]) if message.row < len(self._pos) else -1
        if pos >= 0:
            top = pos * ITEM_HEIGHT - int(self.scroll_offset.y)
            if -ITEM_HEIGHT < top < self.size.height:
                self.refresh()

    # ---- rendering ----------------------------------------------------------------

    def render_lines(self, crop: Region) -> list[Strip]:
        strips = super().render_lines(crop)
        return self.grid.add_sixels(strips, crop) if self.view == "grid" else strips

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        if self.view == "grid":
            self.lines_rendered += 1
            return self.grid.render_line(y, width)
        scroll_y = int(self.scroll_offset.y)
        vy = y + scroll_y
        pos, line = divmod(vy, ITEM_HEIGHT)
        first = scroll_y // ITEM_HEIGHT
        self._wanted = (first - 2, first + self.size.height // ITEM_HEIGHT + 2)
        if self._vm is not None and not len(self._order) and y == 0:
            text = _fit(empty_message(self.filter, self.query, self._vm.quality is not None), width)
            return Strip([Segment(text, _EMPTY)]).crop_pad(width, 0, 0, _PLAIN)
        if self._vm is None or not (0 <= pos < len(self._order)):
            return Strip.blank(width, _PLAIN)
        self.lines_rendered += 1
        return self._build_line(pos, line, width)

    def _build_line(self, pos: int, line: int, width: int) -> Strip:
        vm = self._vm
        assert vm is not None
        row = int(self._order[pos])
        no_color = self._no_color()
        thumb = self._thumb(row)
        segs: list[Segment] = list(thumb[line]) if thumb else [Segment("░" * THUMB_CELLS, _LOADING)]
        segs.append(Segment(" ", _PLAIN))
        text_w = max(0, width - THUMB_CELLS - 1)
        rel = PurePosixPath(vm.paths[row])
        state = int(vm.states[row]) if row < len(vm.states) else STATE_NONE
        text: list[Segment] = []
        if line == 0:
            freq = float(vm.frequency[row]) if vm.votes[row] > 0 else None
            right = f"{freq:3.0f}%" if freq is not None else ""
            marks = row_marks(vm, row)
            text.extend(Segment(ch, st) for ch, st in marks)
            name_w = max(0, text_w - 4 - len(right) - 1)
            name = _fit(printable(rel.name), name_w)
            text.append(Segment(" " + name, _NAME))
            pad = text_w - 4 - len(name) - len(right)
            text.append(Segment(" " * max(1, pad), _PLAIN))
            text.append(Segment(right, _DIM))
        else:
            badge, badge_style = row_badge(state, no_color)
            sub = printable(rel.parent.as_posix())
            sub = "." if sub in ("", ".") else sub
            room = max(0, text_w - 4 - len(badge) - 1)
            # the marks go before the folder, which is cut first (the name is line 0)
            labels = fit_labels(quality_labels(vm.quality, row), max(0, room - 5))
            label_w = sum(len(t) + 1 for t, _ in labels)
            sub = _fit(sub, max(0, room - label_w))
            text.append(Segment("    " + sub, _DIM))
            pad = text_w - 4 - len(sub) - label_w - len(badge)
            text.append(Segment(" " * max(1, pad), _PLAIN))
            styles = _LABEL_MONO if no_color else _LABEL
            for t, kind in labels:
                text.append(Segment(t, styles[kind]))
                text.append(Segment(" ", _PLAIN))
            text.append(Segment(badge, badge_style))
        if pos == self._cursor:
            hl = _HIGHLIGHT_MONO if no_color else (_HIGHLIGHT if self.has_focus else _HIGHLIGHT_BLUR)
            text = [Segment(t, (s or Style()) + hl) for t, s, _ in text]
        strip = Strip(segs + text)
        return strip.crop_pad(width, 0, 0, Style()) if strip.cell_length != width else strip

    def _no_color(self) -> bool:
        return bool(getattr(self.app, "no_color", False)) if self.is_attached else False

    # ---- thumbnails ---------------------------------------------------------------

    def _thumb(self, row: int) -> tuple[list[Segment], list[Segment]] | None:
        with self._lock:
            hit = self._swatches.get(row)
            if hit is not None:
                self._swatches.move_to_end(row)
                return hit
            if row in self._pending:
                return None
            self._pending.add(row)
        vm = self._vm
        assert vm is not None
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="picksel-thumbs")
        self.thumb_requests += 1
        self._pool.submit(
            self._decode, row, vm.root, vm.paths[row], vm.state_dir, self._generation,
            colour_system_of(self.app),
        )
        return None

    def _decode(
        self, row: int, root: Path, rel: str, state_dir: Path, generation: int,
        colour_system: str | None,
    ) -> None:
        """Worker thread: decode one swatch unless it scrolled far away meanwhile."""
        try:
            lo, hi = self._wanted
            pos = int(self._pos[row]) if row < len(self._pos) else -1
            if generation != self._generation or not (lo <= pos <= hi):
                with self._lock:
                    self._pending.discard(row)
                return
            image = self._loader(root, rel, state_dir, THUMB_CACHE_SIZE)
            lines = swatch_segments(image, colour_system)
        except Exception:  # never let a worker die silently with the row stuck pending
            from picksel.thumbs import placeholder

            lines = swatch_segments(placeholder(THUMB_CELLS, "error"))
        self.post_message(_ThumbReady(row, generation, lines))

    # ---- internals ----------------------------------------------------------------

    _quiet = False  # focus_row: the caller moves the highlight itself

    def _apply_filter(self, keep: int | None) -> None:
        vm = self._vm
        if vm is None:
            return
        before = self.highlighted_row
        n = len(vm.paths)
        order = self._order_all
        if self.filter == "selected":
            order = self._consensus
        elif self.filter == "excluded":
            order = order[np.asarray(vm.excluded, dtype=bool)[order]]
        elif self.filter == "favorites":
            order = order[np.asarray(vm.favorite, dtype=bool)[order]]
        elif self.filter == "flagged":
            q = vm.quality
            order = q.flagged_order if q is not None and len(q) == n else order[:0]
        elif self.filter == "duplicates":
            q = vm.quality
            order = q.duplicate_order if q is not None and len(q) == n else order[:0]
        if self.query:
            order = order[self._match_mask()[order]]
        self._order = order
        pos = np.full(n, -1, dtype=np.int64)
        pos[order] = np.arange(len(order), dtype=np.int64)
        self._pos = pos
        self._update_virtual_size()
        found = f' · "{_fit(printable(self.query), 20)}"' if self.query else ""
        self.border_title = (
            f"{self.filter} · {len(order):,}"
            if self.filter == "all" and not found
            else f"{self.filter}{found} · {len(order):,}/{n:,}"
        )
        if keep is not None and 0 <= keep < n and pos[keep] >= 0:
            self._cursor = int(pos[keep])
        else:
            # the highlighted image left the list (included under "excluded", filtered
            # out): stay at the same place, on the image that took its place
            self._cursor = max(0, min(self._cursor, len(order) - 1))
        after = self.highlighted_row
        if after != before and not self._quiet:
            self.post_message(self.Moved(after))
        # After the refresh: a list that just grew (a find dropped, a filter widened) still
        # has its old, smaller scroll range until then, and would clamp the scroll to it.
        self.call_after_refresh(self._scroll_into_view, centre=False)
        self.refresh()

    def _lowered(self) -> list[str]:
        """As shown: a name with an escape is found by typing what the row displays."""
        if self._lower is None:
            assert self._vm is not None
            self._lower = FindTable(self._vm.paths)
        return self._lower.get()

    def _match_mask(self) -> np.ndarray:
        q = self.query.lower()
        lower = self._lowered()
        return np.fromiter((q in p for p in lower), dtype=bool, count=len(lower))

    def _matches(self, row: int) -> bool:
        return self.query.lower() in self._lowered()[row]

    def _columns(self) -> int:
        """Items per line: 1 in the list, as many cells as fit in the grid."""
        if self.view == "grid":
            return self.grid.columns(self.scrollable_content_region.width)
        return 1

    def _item_height(self) -> int:
        return CELL_H if self.view == "grid" else ITEM_HEIGHT

    def _update_virtual_size(self) -> None:
        lines = -(-len(self._order) // self._columns())
        self.virtual_size = Size(self.scrollable_content_region.width, lines * self._item_height())

    def _page_items(self) -> int:
        if self.view == "grid":  # a page of whole cell rows (the one at the edge stays)
            rows = self.scrollable_content_region.height // CELL_H
            return max(1, rows - 1 if rows > 2 else rows) * self._columns()
        return max(1, self.scrollable_content_region.height // ITEM_HEIGHT - 1)

    def _move_to(self, pos: int, *, post: bool = True, centre: bool = False) -> None:
        pos = max(0, min(len(self._order) - 1, pos))
        changed = pos != self._cursor
        self._cursor = pos
        self._scroll_into_view(centre=centre)
        self.refresh()
        if post and changed:
            self.post_message(self.Highlighted(self, int(self._order[pos])))

    def _scroll_into_view(self, *, centre: bool) -> None:
        height = self.scrollable_content_region.height
        if height <= 0:
            return
        item_h = self._item_height()
        top = (self._cursor // self._columns()) * item_h
        scroll_y = int(self.scroll_offset.y)
        if centre and not (scroll_y <= top and top + item_h <= scroll_y + height):
            target = top - (height - item_h) // 2
        elif top < scroll_y:
            target = top
        elif top + item_h > scroll_y + height:
            target = top + item_h - height
            if self.view == "grid" and target % item_h:  # the whole cell, not its top half
                target = min(top, target + item_h - target % item_h)
        else:
            return
        target -= target % item_h  # never show half an item at the top
        self.scroll_to(y=max(0, target), animate=False, immediate=True)

    def on_resize(self, event: events.Resize) -> None:
        self._update_virtual_size()
        self._scroll_into_view(centre=False)
