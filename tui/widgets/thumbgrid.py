"""The grid view of the list pane: a contact sheet of real thumbnails (key ``t``).

The grid is another way of drawing :class:`~picksel.tui.widgets.thumblist.ThumbList`:
the list keeps the order, the filter, the find and the cursor, so ``x``, ``p``,
``enter``, the map and the preview act on the highlighted cell exactly as on the
highlighted row. This module only knows the geometry of a cell and how to draw one.

Virtualised like the list (Line API): ``render_line`` builds the cells of one screen
line from the order array, so 100k images cost what 10 do. Thumbnails come from the
on-disk cache of :mod:`picksel.thumbs` and are turned into their drawn form (half-cell
segments, sixel data, or pixels for kitty) in a thread worker; a cell without one shows
a dark placeholder, so scrolling never waits for a decode. Drawn forms live in a bounded
LRU: memory stays flat however far the user scrolls.

Sixel data cannot be a Textual segment of its own: like textual-image's sixel widget,
the grid appends it, with absolute cursor moves, to the last line of each cell row's
images (the lines above are already written then, so their blanks do not erase it), and
only for cells wholly inside the pane (a sixel running past the pane would scroll the
terminal).
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from PIL import Image, ImageOps
from rich.cells import set_cell_size
from rich.console import Console
from rich.control import Control
from rich.segment import ControlType, Segment
from rich.style import Style
from textual.geometry import Region
from textual.message import Message
from textual.strip import Strip
from textual.worker import get_current_worker

from picksel.textsafe import printable
from picksel.thumbs import placeholder
from picksel.tui.halfcell import TRUECOLOR, colour_system_of, halfcell_strips
from picksel.tui.marks import fit_labels, quality_labels
from picksel.tui.widgets.graphics import GraphicsMode, cell_pixel_size, resolve

if TYPE_CHECKING:
    from picksel.tui.widgets.thumblist import ThumbList

IMG_W = 16  # image area of a cell, in terminal cells (16 × 8 cells is about square)
IMG_H = 8
CELL_W = IMG_W + 2  # a frame column on each side (the cursor's bars)
CELL_H = IMG_H + 2  # + the name line and the votes line
HALFCELL_SOURCE = 64  # cached thumbnail size the half-cell images are made from
GRID_LRU = 120  # drawn thumbnails kept (~4 screens; a half-cell one is ~60 KiB of segments)

_PLAIN = Style()
_NAME = Style(bold=True)
_DIM = Style(dim=True)
_LOADING = Style(bgcolor="#262626")
_FRAME = Style(color="#5f87ff", bold=True)
_FRAME_BLUR = Style(color="#808080")
_FRAME_MONO = Style(reverse=True)
_HIGHLIGHT = Style(bgcolor="#264f78")
_HIGHLIGHT_BLUR = Style(bgcolor="#3a3a3a")
_HIGHLIGHT_MONO = Style(reverse=True)
_NULL_CONTROL = ((ControlType.CURSOR_FORWARD, 0),)
_BACKGROUND = (30, 30, 30)

Loader = Callable[[Path, str, Path, int], Image.Image]


def image_mode(mode: GraphicsMode | str) -> GraphicsMode:
    """How the grid draws its thumbnails in ``mode``: SIXEL or KITTY where the terminal
    draws pixels, HALFCELL otherwise (a photo has no braille form)."""
    concrete = resolve(mode)
    return concrete if concrete in (GraphicsMode.SIXEL, GraphicsMode.KITTY) else GraphicsMode.HALFCELL


def fit_canvas(image: Image.Image, size: tuple[int, int],
               background: tuple[int, int, int] = _BACKGROUND) -> Image.Image:
    """``image`` scaled to fit ``size`` keeping its aspect, centred on a background canvas
    (so every cell's picture covers the same area)."""
    w, h = max(1, size[0]), max(1, size[1])
    fitted = ImageOps.contain(image.convert("RGB"), (w, h), Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", (w, h), background)
    canvas.paste(fitted, ((w - fitted.width) // 2, (h - fitted.height) // 2))
    return canvas


def halfcell_lines(image: Image.Image, cols: int, rows: int,
                   background: tuple[int, int, int] = _BACKGROUND,
                   colour_system: str | None = TRUECOLOR) -> list[list[Segment]]:
    """``image`` letterboxed into ``rows`` lines of ``cols`` half-cell characters, dithered
    for the terminal's ``colour_system`` like the list's swatches and the previews
    (:func:`picksel.tui.halfcell.halfcell_strips`)."""
    canvas = fit_canvas(image, (cols, rows * 2), background)
    strips = halfcell_strips(canvas, cols, rows, colour_system, fit="stretch")
    return [list(strip) for strip in strips[:rows]]


def sixel_data(image: Image.Image, size: tuple[int, int]) -> str:
    """Sixel escape sequence (ESC P … q … ESC \\) of ``image`` fitted to ``size`` pixels,
    with textual-image's encoder. The letterbox bars are transparent: the terminal's own
    cell background shows there (a 256-colour terminal maps the pane's colour to a
    palette entry no RGB value would match)."""
    from textual_image._sixel import image_to_sixels

    w, h = max(1, size[0]), max(1, size[1])
    fitted = ImageOps.contain(image.convert("RGB"), (w, h), Image.Resampling.LANCZOS)
    canvas = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    canvas.paste(fitted, ((w - fitted.width) // 2, (h - fitted.height) // 2))
    return image_to_sixels(canvas)


_RASTER = re.compile(r'"(\d+);(\d+);(\d+);(\d+)')


def crop_sixel(data: str, height: int) -> str | None:
    """The top ``height`` pixel rows of a sixel picture, rounded down to whole 6-row bands
    (so it never reaches below ``height``), or None when not one band fits.

    A sixel picture is a header, a palette and bands of six pixel rows each ended by
    ``-`` (which no sixel data byte can be), so cropping is cutting the string after a
    band and lowering the height the raster attributes declare: no re-encoding, which
    took 30-120 ms a picture in textual-image's encoder, too slow for a redraw."""
    bands = height // 6
    start = data.find("q") + 1
    raster = _RASTER.match(data, start)
    if bands <= 0 or start <= 0 or raster is None:
        return None
    if int(raster.group(4)) <= bands * 6:
        return data
    end = raster.end()
    for _ in range(bands):
        end = data.find("-", end) + 1
        if end <= 0:
            return data
    pan, pad, width, _ = raster.groups()
    return f'{data[:start]}"{pan};{pad};{width};{bands * 6}{data[raster.end():end]}\x1b\\'


class _NullFile:
    def write(self, _text: str) -> int:
        return 0

    def flush(self) -> None:
        pass


@dataclass
class Drawn:
    """A thumbnail in the form its mode draws: half-cell ``lines``, ``sixel`` data, or
    ``pixels`` that the kitty renderable turns into placeholder lines on first draw."""

    lines: list[list[Segment]] | None = None
    sixel: str | None = None
    pixels: Image.Image | None = None
    tgp: object | None = None  # textual-image TGP renderable (deleted from the terminal on eviction)


class GridThumbReady(Message):
    """A grid worker finished the drawn form of index row ``row``."""

    def __init__(self, row: int, generation: int, drawn: Drawn) -> None:
        super().__init__()
        self.row = row
        self.generation = generation
        self.drawn = drawn


class GridPainter:
    """Geometry, drawn-thumbnail cache and line rendering of the grid for one ThumbList."""

    def __init__(self, owner: ThumbList, loader: Loader) -> None:
        self.owner = owner
        self.loader = loader
        self.mode = GraphicsMode.HALFCELL
        self.generation = 0
        self._cache: OrderedDict[int, Drawn] = OrderedDict()
        self._lock = threading.Lock()
        self._batch: set[int] = set()  # rows the running worker still has to do
        self._kick_pending = False
        self.thumb_requests = 0  # tests/bench: rows handed to a worker
        self.decode_threads: set[str] = set()  # tests: names of the threads that decoded

    # ---- geometry -----------------------------------------------------------------

    @staticmethod
    def columns(width: int) -> int:
        return max(1, width // CELL_W)

    def cell_at(self, x: int, vy: int, width: int) -> int | None:
        """Position (in the list order) of the cell at content x and virtual line vy."""
        col = x // CELL_W
        if col >= self.columns(width):
            return None
        return (vy // CELL_H) * self.columns(width) + col

    # ---- cache --------------------------------------------------------------------

    def set_mode(self, mode: GraphicsMode | str) -> None:
        new = image_mode(mode)
        if new is not self.mode:
            self.mode = new
            self.clear()

    def clear(self) -> None:
        """Forget every drawn thumbnail (new files or a new mode)."""
        self.generation += 1
        with self._lock:
            for drawn in self._cache.values():
                self._free(drawn)
            self._cache.clear()
            self._batch.clear()

    def __len__(self) -> int:
        return len(self._cache)

    def ready(self, message: GridThumbReady) -> bool:
        """Store a worker's result; True when it is for the current files and mode."""
        with self._lock:
            self._batch.discard(message.row)
            if message.generation != self.generation:
                return False
            self._cache[message.row] = message.drawn
            self._cache.move_to_end(message.row)
            while len(self._cache) > GRID_LRU:
                _, old = self._cache.popitem(last=False)
                self._free(old)
        return True

    @staticmethod
    def _free(drawn: Drawn) -> None:
        if drawn.tgp is not None:
            # the terminal may have gone away: then there is nothing to free
            with contextlib.suppress(Exception):
                drawn.tgp.cleanup()  # type: ignore[attr-defined]
            drawn.tgp = None

    def _get(self, row: int) -> Drawn | None:
        with self._lock:
            hit = self._cache.get(row)
            if hit is not None:
                self._cache.move_to_end(row)
            return hit

    # ---- decoding -----------------------------------------------------------------

    def _want(self) -> None:
        """A visible cell has no thumbnail: start (once per refresh) a worker for all."""
        if not self._kick_pending:
            self._kick_pending = True
            self.owner.call_later(self._kick)

    def _kick(self) -> None:
        self._kick_pending = False
        owner = self.owner
        vm = owner.model
        if vm is None or not owner.is_mounted:
            return
        rows = [r for r in self.visible_rows() if self._get(r) is None]
        with self._lock:
            if not rows or set(rows) <= self._batch:
                return
            self._batch = set(rows)
        self.thumb_requests += len(rows)
        mode, gen = self.mode, self.generation
        pixels = self._pixel_size()
        background = owner.background_colors[1].rgb  # letterbox bars in the pane's colour
        colours = colour_system_of(owner.app)  # read here: workers must not touch the app
        owner.run_worker(
            lambda: self._decode(rows, vm.root, vm.paths, vm.state_dir, mode, pixels, gen,
                                 background, colours),
            thread=True, exclusive=True, group="grid-thumbs", name="grid thumbnails",
        )

    def visible_rows(self) -> list[int]:
        """Index rows of the cells on screen, top-left first, plus one row of cells below."""
        owner = self.owner
        order = owner.rows
        cols = self.columns(owner.scrollable_content_region.width)
        first = int(owner.scroll_offset.y) // CELL_H
        last = (int(owner.scroll_offset.y) + owner.size.height) // CELL_H + 1
        return [int(r) for r in order[first * cols : (last + 1) * cols]]

    def _pixel_size(self) -> tuple[int, int]:
        cw, ch = cell_pixel_size()
        return IMG_W * cw, IMG_H * ch

    def _decode(self, rows: list[int], root: Path, paths: list[str], state_dir: Path,
                mode: GraphicsMode, pixels: tuple[int, int], generation: int,
                background: tuple[int, int, int] = _BACKGROUND,
                colour_system: str | None = TRUECOLOR) -> None:
        """Worker thread: load each thumbnail from the cache and make its drawn form."""
        worker = get_current_worker()
        self.decode_threads.add(threading.current_thread().name)
        source = HALFCELL_SOURCE if mode is GraphicsMode.HALFCELL else (
            128 if max(pixels) <= 128 else 256
        )
        for row in rows:
            if worker.is_cancelled or generation != self.generation:
                return
            try:
                image = self.loader(root, paths[row], state_dir, source)
            except Exception:  # noqa: BLE001 - a worker must never leave a cell pending
                image = placeholder(source, "error")
            if mode is GraphicsMode.HALFCELL:
                drawn = Drawn(lines=halfcell_lines(image, IMG_W, IMG_H, background, colour_system))
            elif mode is GraphicsMode.SIXEL:
                drawn = Drawn(sixel=sixel_data(image, pixels))
            else:
                drawn = Drawn(pixels=fit_canvas(image, pixels, background))
            self.owner.post_message(GridThumbReady(row, generation, drawn))

    # ---- rendering ----------------------------------------------------------------

    def render_line(self, y: int, width: int) -> Strip:
        owner = self.owner
        vm = owner.model
        order = owner.rows
        scroll_y = int(owner.scroll_offset.y)
        vy = y + scroll_y
        cell_row, line = divmod(vy, CELL_H)
        cols = self.columns(width)
        start = cell_row * cols
        if vm is None or start >= len(order):
            return Strip.blank(width, _PLAIN)
        no_color = owner._no_color()
        focused = owner.has_focus
        segs: list[Segment] = []
        n = len(order)
        for col in range(cols):
            pos = start + col
            if pos >= n:
                segs.append(Segment(" " * CELL_W, _PLAIN))
                continue
            row = int(order[pos])
            cursor = pos == owner.cursor
            frame = (_FRAME_MONO if no_color else _FRAME if focused else _FRAME_BLUR) if cursor else None
            left, right = ("▐", "▌") if frame is not None else (" ", " ")
            segs.append(Segment(left, frame or _PLAIN))
            if line < IMG_H:
                segs.extend(self._image_line(row, line))
            else:
                segs.extend(self._text_line(vm, row, line - IMG_H, cursor, focused, no_color))
            segs.append(Segment(right, frame or _PLAIN))
        used = cols * CELL_W
        if used < width:
            segs.append(Segment(" " * (width - used), _PLAIN))
        elif used > width:  # a pane narrower than one cell
            return Strip(segs).crop_pad(width, 0, 0, _PLAIN)
        return Strip(segs, width)  # every piece has a known width: no measuring

    def _image_line(self, row: int, line: int) -> list[Segment]:
        drawn = self._get(row)
        if drawn is None:
            self._want()
            return [Segment(" " * IMG_W, _LOADING)]
        if drawn.lines is None and drawn.pixels is not None:
            drawn.lines = self._tgp_lines(drawn)
        if drawn.lines is not None:
            return drawn.lines[line] if line < len(drawn.lines) else [Segment(" " * IMG_W, _PLAIN)]
        return [Segment(" " * IMG_W, _PLAIN)]  # sixel: drawn over these blanks (add_sixels)

    def _tgp_lines(self, drawn: Drawn) -> list[list[Segment]]:
        """Kitty: textual-image's TGP renderable sends the pixels once and gives lines of
        placeholder characters that the terminal replaces with them."""
        from textual_image.renderable.tgp import Image as TGPRenderable

        tgp = TGPRenderable(drawn.pixels, width=IMG_W, height=IMG_H)
        drawn.tgp = tgp
        drawn.pixels = None
        console = Console(width=IMG_W, height=IMG_H, color_system="truecolor", force_terminal=True,
                          file=_NullFile())
        options = console.options.update(width=IMG_W, height=IMG_H)
        try:
            return [list(line) for line in console.render_lines(tgp, options, pad=True)[:IMG_H]]
        except Exception:  # noqa: BLE001 - no terminal to send to (tests): a blank picture
            return [[Segment(" " * IMG_W, _LOADING)] for _ in range(IMG_H)]

    def _text_line(self, vm, row: int, line: int, cursor: bool, focused: bool,
                   no_color: bool) -> list[Segment]:
        from picksel.tui.widgets.thumblist import _LABEL, _LABEL_MONO, row_badge, row_marks

        if line == 0:
            marks = row_marks(vm, row)
            name_w = max(0, IMG_W - len(marks))
            name = _fit(printable(PurePosixPath(vm.paths[row]).name), name_w)
            text = [Segment(ch, st) for ch, st in marks]
            text.append(Segment(set_cell_size(name, name_w), _NAME))  # wide characters too
        else:
            state = int(vm.states[row]) if row < len(vm.states) else 0
            votes = f"{float(vm.frequency[row]):3.0f}%" if vm.votes[row] > 0 else ""
            badge, style = row_badge(state, no_color)
            # quality marks (dup, keep, dark, blur...) between the votes and the badge
            room = max(0, IMG_W - len(votes) - len(badge) - 2)
            labels = fit_labels(quality_labels(vm.quality, row), room)
            styles = _LABEL_MONO if no_color else _LABEL
            marks = [Segment(" ", _PLAIN)]
            for t, kind in labels:
                marks += [Segment(t, styles[kind]), Segment(" ", _PLAIN)]
            used = len(votes) + sum(len(seg.text) for seg in marks) + len(badge)
            pad = max(0, IMG_W - used)
            text = [Segment(votes, _DIM), *marks, Segment(" " * pad, _PLAIN), Segment(badge, style)]
        if cursor:
            hl = _HIGHLIGHT_MONO if no_color else (_HIGHLIGHT if focused else _HIGHLIGHT_BLUR)
            text = [Segment(t, (s or Style()) + hl) for t, s, _ in text]
        return text

    def add_sixels(self, strips: list[Strip], crop: Region) -> list[Strip]:
        """Put the sixel pictures into the lines the compositor gets (``crop`` is in widget
        lines, border included). Textual cuts lines into pieces by character count, which
        would cut a sixel sequence apart and drops anything after a line's last piece, so
        the pictures of a cell row go first on the line just below its images, before the
        pane's left border: the image lines above are written by then (their blanks do not
        erase the pictures), and each picture is drawn from its top-left corner with an
        absolute move; then the cursor goes back to the start of the line."""
        owner = self.owner
        if self.mode is not GraphicsMode.SIXEL or owner.model is None:
            return strips
        try:
            if not owner.screen.is_active:
                return strips  # a dialog on top: no pixels over it
        except Exception:  # noqa: BLE001 - no screen yet
            return strips
        region, content = owner.region, owner.content_region
        top_gutter = content.y - region.y
        scroll_y = int(owner.scroll_offset.y)
        cols = self.columns(owner.scrollable_content_region.width)
        order = owner.rows
        out = list(strips)
        for i, strip in enumerate(strips):
            y = crop.y + i - top_gutter  # content line just below the pictures
            top, lines = y - IMG_H, IMG_H
            if y == content.height and (y - IMG_H + scroll_y) % CELL_H:
                # The bottom border: the pictures of a cell row cut by the pane's bottom
                # edge go here, cropped to the lines on screen (they stayed blank).
                top = y - (y + scroll_y) % CELL_H
                lines = y - top
                if top < 0 or not 0 < lines < IMG_H:
                    continue
            elif y < IMG_H or y > content.height or (y - IMG_H + scroll_y) % CELL_H:
                continue
            cell_row = (top + scroll_y) // CELL_H
            px_high = lines * cell_pixel_size()[1]
            extra: list[Segment] = []
            for col in range(cols):
                pos = cell_row * cols + col
                if pos >= len(order):
                    break
                drawn = self._get(int(order[pos]))
                if drawn is None or drawn.sixel is None:
                    continue
                data = drawn.sixel if lines == IMG_H else crop_sixel(drawn.sixel, px_high)
                if data is None:
                    continue
                x = content.x + col * CELL_W + 1
                extra.append(_control(Control.move_to(x, content.y + top)))
                extra.append(Segment(data, _PLAIN, _NULL_CONTROL))
            if extra:
                extra.append(_control(Control.move_to(region.x + crop.x, region.y + crop.y + i)))
                out[i] = Strip([*extra, *strip], strip.cell_length)
        return out


def _control(control: Control) -> Segment:
    """A cursor move as a zero-width segment (Textual's cuts skip it)."""
    return Segment(control.segment.text, _PLAIN, _NULL_CONTROL)


def _fit(text: str, width: int) -> str:
    if width <= 0:
        return ""
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"
