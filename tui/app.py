"""The picksel Textual application: map, thumbnail list and curator sidebar.

Structure: :class:`~picksel.tui.controller.Curator` holds the album (index + state) and
every rule; this module wires keys, buttons and command-palette entries to it, runs the
long jobs (UMAP, selection) in thread workers that report through
:mod:`picksel.tui.messages`, and redraws both panes plus the counts after each change.
The modal dialogs live in :mod:`picksel.tui.screens`.

``run_app`` is what ``picksel ALBUM`` calls. textual-image asks the terminal what it can
draw (sixel, kitty graphics) by writing escape codes and reading the answer, which is
only possible before Textual owns the terminal, so the probe happens in ``run_app``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
import time
from concurrent.futures import Future
from pathlib import Path

import numpy as np
from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Header, Input, Static

from picksel.errors import Cancelled, IndexCorrupt, IndexMissing, PickselError, UsageError
from picksel.statelock import StateBusy
from picksel.textsafe import printable
from picksel.tui.controller import (
    METHOD_LABELS,
    Curator,
    default_export_path,
    default_inventory_path,
)
from picksel.tui.halfcell import keep_image_colours
from picksel.tui.marks import preview_caption
from picksel.tui.messages import (
    IndexDamaged,
    MapFailed,
    MapProgress,
    MapReady,
    SelectionFinished,
    SelectionProgress,
)
from picksel.tui.quality_ui import QualityActions
from picksel.tui.widgets.findbar import FindBar
from picksel.tui.widgets.graphics import GraphicsMode, prepare_terminal
from picksel.tui.widgets.graphics import describe as describe_graphics
from picksel.tui.widgets.preview import ImagePreview
from picksel.tui.widgets.scatter import MapView
from picksel.tui.widgets.sidebar import CuratorSidebar
from picksel.tui.widgets.thumblist import ThumbList

MAP_LABELS = {"umap": "UMAP", "pca": "PCA", "photomap-umap": "UMAP (PhotoMapAI)"}

# (action, title for the palette, help) — the palette offers every action by name.
COMMANDS: list[tuple[str, str, str]] = [
    ("select", "Run selection", "Monte Carlo selection with the sidebar's settings (s)"),
    ("cancel", "Cancel run", "Stop the running selection (escape)"),
    ("switch_method", "Switch method", "Diversity (FPS) ↔ Blocks (K-Means) (m)"),
    ("toggle_exclude", "Exclude / include current image", "Toggle the exclusion (x)"),
    ("exclude_threshold", "Exclude at or above threshold", "Bulk-exclude by vote frequency (X)"),
    ("clear_exclusions", "Clear exclusions", "Include every image again (C)"),
    ("clear_selection", "Clear selection", "Forget the last run; exclusions stay (c)"),
    ("pin", "Pin / unpin current image", "Pinned images are always selected (p)"),
    ("favorites", "Set favorites", "Favorites := selection minus exclusions (f)"),
    ("undo", "Undo", "Take back the last change of exclusions, pins, favorites or selection (u)"),
    ("export", "Export…", "Copy the selection and its captions to a folder (e)"),
    ("inventory", "Inventory…", "Write a TSV/CSV of included and excluded images (i)"),
    ("preview", "Preview current image", "Large image, votes and caption (enter)"),
    ("curve", "How many images? (coverage curve)", "Covering radius for 1…1,000 images and a suggested count (n)"),
    ("cycle_filter", "Cycle list filter", "all → selected → excluded → favorites → flagged → duplicates (v)"),
    ("duplicates", "Review duplicates…", "One duplicate group side by side: keep one, exclude the others (d)"),
    ("exclude_flagged", "Exclude flagged images…", "Every image the quality check flags with a chosen kind (F)"),
    ("toggle_view", "List / thumbnail grid", "Show the images as a list or as a grid of thumbnails (t)"),
    ("find", "Find in file names", "Narrow the list to paths containing a text (/)"),
    ("cycle_graphics", "Cycle graphics mode", "auto → sixel → kitty → half-cell → text (g)"),
    ("reindex", "Re-index album", "Scan for new or changed images (r)"),
    ("help", "Help", "Every key, grouped (?)"),
]

# Actions that need an opened album; refused with a message otherwise.
_DATA_ACTIONS = {c[0] for c in COMMANDS} - {"help", "cancel", "reindex", "cycle_graphics"}
# Actions bound to keys of the main screen; a dialog on top turns them off.
_MAIN_SCREEN_ACTIONS = {c[0] for c in COMMANDS} | {"undo"}


class PickselApp(QualityActions, App[int]):
    """Keyboard-first dataset curator for one album."""

    CSS_PATH = "picksel.tcss"
    TITLE = "picksel"
    HORIZONTAL_BREAKPOINTS = [(0, "-tiny"), (80, "-narrow"), (110, "-wide")]
    quit_on_sigterm = False
    """run_app sets it: SIGTERM quits like q (workers stopped, terminal restored, exit
    143) instead of killing the app mid-screen. Off in tests, which share the process."""
    VERTICAL_BREAKPOINTS = [(0, "-short"), (34, "-tall")]

    BINDINGS = [
        Binding("s", "select", "Select"),
        Binding("escape", "cancel", "Cancel", show=False),
        Binding("m", "switch_method", "Method", show=False),
        Binding("x", "toggle_exclude", "Exclude"),
        Binding("X", "exclude_threshold", "Excl≥T", show=False, key_display="X"),
        Binding("C", "clear_exclusions", "Clear excl.", show=False, key_display="C"),
        Binding("c", "clear_selection", "Clear sel.", show=False),
        Binding("p", "pin", "Pin", show=False),
        Binding("f", "favorites", "Favorites", show=False),
        Binding("u", "undo", "Undo", show=False),  # footer full at 80 columns; X C c f say "u undoes"
        Binding("U", "redo", "Redo", show=False, key_display="U"),
        Binding("e", "export", "Export"),
        Binding("i", "inventory", "Inventory", show=False),
        Binding("enter", "preview", "Preview", show=False),
        Binding("v", "cycle_filter", "Filter", show=False),
        Binding("d", "duplicates", "Duplicates", show=False),
        Binding("F", "exclude_flagged", "Excl. flagged", show=False, key_display="F"),
        Binding("n", "curve", "How many?", show=False),
        Binding("slash", "find", "Find", show=False, key_display="/"),
        Binding("g", "cycle_graphics", "Graphics", show=False),
        Binding("r", "reindex", "Re-index", show=False),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("q", "quit", "Quit"),
        Binding("t", "toggle_view", "Grid"),  # after q: at 80 columns the footer is full, q stays
        Binding("tab", "focus_pane(1)", "Next pane", show=False, priority=True),
        Binding("shift+tab", "focus_pane(-1)", "Previous pane", show=False, priority=True),
    ]

    def __init__(
        self,
        album: Path,
        *,
        state_dir: Path | None = None,
        graphics: str = "auto",
        seed: int | None = None,
        compute_umap: bool = True,
    ) -> None:
        super().__init__()
        keep_image_colours(self)  # NO_COLOR greys the interface, never the pictures
        self.compute_umap = compute_umap  # tests/screenshots: keep the PCA map, no UMAP thread
        self.album = Path(album)
        self.state_dir_override = Path(state_dir) if state_dir is not None else None
        self.graphics = GraphicsMode.parse(graphics)
        self.fixed_seed = seed  # tests and screenshots: deterministic runs
        self._state_timer = None
        self.curator: Curator | None = None
        self.job = None  # running SelectionJob
        self.map_cancel = threading.Event()
        self._pca: np.ndarray | None = None
        self._map_pct = -1
        self._preview_timer = None
        self.title = f"picksel — {self.album.name}"
        self._cached_map = None
        # start reading the album now: by the time the screen is up, the data is too
        self._loading: Future | None = self._start_loading()

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield Header(icon="▦")
        with Horizontal(id="main"):
            yield MapView(id="map", graphics=self.graphics)
            with Vertical(id="middle"):
                yield Static("", id="banner")
                yield ThumbList(id="list", graphics=self.graphics)
                yield FindBar(placeholder="find in file names", id="find", compact=True)
                yield ImagePreview(id="preview", graphics=self.graphics)
            yield CuratorSidebar(id="sidebar")
        yield Footer()

    # ------------------------------------------------------------------ names on screen
    # File names are data: a name holding ESC sequences must not retitle or clear the
    # terminal, nor a "[/]" in it break markup. Titles and notifications are the places
    # any code can put a name, so they are made safe here, once.

    def validate_title(self, title: str) -> str:
        return printable(title)

    def validate_sub_title(self, sub_title: str) -> str:
        return printable(sub_title)

    def notify(self, message: str, *, title: str = "", markup: bool = False, **kw) -> None:  # type: ignore[override]
        super().notify(printable(message), title=printable(title), markup=markup, **kw)

    def main_query(self, selector: str, expect_type=None):
        """Query the main screen even while a dialog is on top."""
        if not self.screen_stack:  # shutting down
            raise NoMatches(f"no screen for {selector!r}")
        screen = self.screen_stack[0]
        return screen.query_one(selector, expect_type) if expect_type else screen.query_one(selector)

    @property
    def map_view(self) -> MapView:
        return self.main_query("#map", MapView)

    @property
    def thumbs(self) -> ThumbList:
        return self.main_query("#list", ThumbList)

    @property
    def sidebar(self) -> CuratorSidebar:
        return self.main_query("#sidebar", CuratorSidebar)

    def on_mount(self) -> None:
        if self.quit_on_sigterm:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, self._terminate)
        self.query_one("#map").border_title = "Map"
        self.query_one("#list").border_title = "Images"
        self.watch(self.thumbs, "query", self._query_changed, init=False)
        self.banner("")
        self.open_album()

    def _query_changed(self, query: str) -> None:
        """The list dropped its find itself (the map jumped to an image it hid): empty
        the bar too, so what it shows is what the list does."""
        find = self.query_one("#find", FindBar)
        if not query and find.value:
            with find.prevent(Input.Changed):
                find.value = ""
            find.display = False

    def banner(self, text: str) -> None:
        """A persistent message above the list (no index, empty album...)."""
        b = self.main_query("#banner", Static)
        b.update(Text(printable(text)))
        b.display = bool(text)

    # ------------------------------------------------------------------ opening

    def _start_loading(self) -> Future:
        """Read index, state and cached map in a thread: it overlaps Textual's own
        start-up, and numpy's file reads release the GIL."""
        future: Future = Future()

        def load() -> None:
            from picksel.mapping import load_map

            try:
                curator, warning = Curator.open(self.album, self.state_dir_override)
                cached = load_map(curator.state_dir, curator.fingerprint) if curator.n else None
                curator.rows  # noqa: B018 - build the path -> row table here, off the UI thread
                future.set_result((curator, warning, cached))
            except BaseException as e:  # noqa: BLE001 - re-raised on the UI side
                future.set_exception(e)

        threading.Thread(target=load, name="picksel-open", daemon=True).start()
        return future

    def open_album(self) -> None:
        if self._loading is None:
            self._loading = self._start_loading()
        self.finish_open(self._loading)

    @work(exclusive=True, group="open")
    async def finish_open(self, loading: Future) -> None:
        try:
            curator, warning, cached = await asyncio.wrap_future(loading)
        except IndexMissing:
            self.banner(f"{self.album} has no index yet. Press r to index it.")
            self.push_screen(IndexingScreen(self.album, self.state_dir_override), self._indexed)
            return
        except IndexCorrupt as e:
            self.banner(f"The index is damaged ({e}). Press r to rebuild it.")
            self.notify(str(e), title="Index", severity="error", timeout=10)
            return
        except PickselError as e:
            self.banner(f"Cannot open the album: {e}")
            self.notify(str(e), severity="error", timeout=10)
            return
        finally:
            self._loading = None
        self._cached_map = cached
        if warning:
            self.notify(warning, title="state.json", severity="warning", timeout=12)
        self.curator = curator
        curator.seed_override = self.fixed_seed
        s = curator.settings
        self.sidebar.set_settings(s.method, s.count, s.iterations, s.threshold)
        self._show_view(s.view)
        if curator.n == 0:
            self.banner(f"No images in {self.album}. Add some and press r to re-index.")
        else:
            self.banner("")
        self.refresh_view()
        self.start_map()
        # The check stats every image and the verify reads every vector: both hold the
        # GIL for long stretches, so they start once the first screen is drawn (at
        # 100,000 images they had pushed that from 0.9 s to 2.1 s).
        self.call_after_refresh(self._after_first_screen, curator)
        if self._state_timer is None:
            self._state_timer = self.set_interval(self.STATE_POLL, self._watch_state)
        if curator.n:
            # Start at the top of the list (the saved selection's best image, else the
            # first path): what the user reviews first, with the map cursor on it.
            first = int(self.thumbs.rows[0]) if len(self.thumbs.rows) else self.map_view.cursor_row
            if first is not None:
                self.current_row = first
        self.thumbs.focus()

    def _after_first_screen(self, curator: Curator) -> None:
        if curator is not self.curator:  # another album opened meanwhile
            return
        self.start_quality()
        self._verify_index(curator)

    def _verify_index(self, curator: Curator) -> None:
        """Read and check the vectors the open left unread (seconds at 1M images), in a
        daemon thread: quitting never waits for a read of 3 GB."""
        if curator.index.verified:
            return

        def check() -> None:
            try:
                curator.index.verify()
            except IndexCorrupt as e:
                self.post_message(IndexDamaged(curator, str(e)))

        threading.Thread(target=check, name="picksel-verify", daemon=True).start()

    @on(IndexDamaged)
    def _index_damaged(self, msg: IndexDamaged) -> None:
        if msg.curator is not self.curator:
            return
        if self.job is not None:
            self.job.cancel_event.set()
        self.curator = None
        self.banner(f"The index is damaged ({msg.error}). Press r to rebuild it.")
        self.notify(msg.error, title="Index", severity="error", timeout=10)

    NOTIFICATION_TIMEOUT = 3.0
    """Seconds an information toast stays; warnings and errors pass their own."""

    def on_notify(self, event) -> None:
        """One information toast at a time: the newest replaces the last instead of
        stacking over the list and the sidebar (warnings and errors stay until their own
        timeout). Runs after Textual added the new one; ``notify`` only posts it, so keys
        arriving in one burst are handled here, not there."""
        new = event.notification
        if new.severity != "information":
            return
        for old in [n for n in self._notifications if n.severity == "information" and n is not new]:
            self._unnotify(old)

    STATE_POLL = 2.0
    """Seconds between checks whether another picksel changed state.json."""

    def _watch_state(self) -> None:
        """Show what a CLI ``exclude`` / ``select`` in another shell did to this album
        while it is open here (and keep our next save from undoing it)."""
        c = self.curator
        if c is None:
            return
        self._tell_save_problem()  # settings edits and dialogs save without a _changed()
        reloaded, warning = c.reload_if_changed()
        if warning:
            self.notify(warning, title="state.json", severity="warning", timeout=12)
        if reloaded:
            self.recheck_if_thresholds_changed()
            s = c.settings
            self.sidebar.set_settings(s.method, s.count, s.iterations, s.threshold)
            self._changed("state.json was changed by another picksel: exclusions, pins, favorites and selection reloaded")

    def _indexed(self, ok: bool | None) -> None:
        if ok:
            self.open_album()
        elif self.curator is None:
            self.banner(f"{self.album} is not indexed. Press r to index it, q to quit.")

    def action_reindex(self) -> None:
        full = "damaged" in str(self.main_query("#banner", Static).render())
        self.map_cancel.set()
        self.push_screen(
            IndexingScreen(self.album, self.state_dir_override, full=full), self._indexed
        )

    # ------------------------------------------------------------------ map

    def _set_map(self, coords: np.ndarray, label: str) -> None:
        self.map_view.set_coords(coords, label)
        self._map_points = int(coords.shape[0])
        if self._vm is not None and len(self._vm.states) == self._map_points:
            self.map_view.set_states(self._vm.states)

    def _set_map_label(self, label: str) -> None:
        """Progress text only: set_coords would reset the user's zoom on every tick."""
        self.map_view.set_label(label)

    def start_map(self) -> None:
        """Cached map at once; otherwise PCA at once and UMAP in a thread worker."""
        from picksel.mapping import load_map, pca_map

        c = self.curator
        assert c is not None
        if c.n == 0:
            self._set_map(np.zeros((0, 2), np.float32), "map: empty album")
            return
        cached, self._cached_map = self._cached_map, None
        if cached is None:
            cached = load_map(c.state_dir, c.fingerprint)
        if cached is not None and cached.coords.shape[0] == c.n:
            self._set_map(cached.coords, f"map: {MAP_LABELS.get(cached.kind, cached.kind)}")
            return
        try:
            self._pca = pca_map(c.index.embeddings)  # waits for the vectors if still unread
        except IndexCorrupt as e:
            self._index_damaged(IndexDamaged(c, str(e)))
            return
        self._map_pct = 0
        if not self.compute_umap:
            self._set_map(self._pca, "map: PCA")
            self._pca = None
            return
        self._set_map(self._pca, "map: PCA (UMAP 0%)")
        self.map_cancel = threading.Event()
        self.compute_map(c.index, c.state_dir, self.map_cancel)

    @work(thread=True, exclusive=True, group="map")
    def compute_map(self, index, state_dir: Path, cancel: threading.Event) -> None:
        """UMAP off the UI thread. The computation itself runs in a daemon thread that
        this worker watches: numba's first compile cannot be interrupted, and quitting
        must not wait for it (the map file is written atomically, so nothing is lost)."""
        from picksel.mapping import ensure_map

        box: dict[str, object] = {}
        done = threading.Event()

        def progress(done_: int, total: int, message: str = "") -> None:
            if not cancel.is_set():
                self.post_message(MapProgress(done_, total, message))

        def compute() -> None:
            try:
                box["data"] = ensure_map(index, state_dir, progress=progress, cancel=cancel.is_set)
            except BaseException as e:  # noqa: BLE001 - reported by the worker below
                box["error"] = e
            finally:
                done.set()

        threading.Thread(target=compute, name="picksel-umap", daemon=True).start()
        while not done.wait(0.1):
            if cancel.is_set():
                return  # quitting or re-indexing: leave the daemon thread behind
        error = box.get("error")
        if isinstance(error, Cancelled):
            self.post_message(MapFailed("cancelled", cancelled=True))
        elif error is not None:
            self.post_message(MapFailed(f"{type(error).__name__}: {error}"))
        else:
            self.post_message(MapReady(box["data"]))

    @on(MapProgress)
    def _map_progress(self, msg: MapProgress) -> None:
        if self._pca is None or msg.total <= 0:
            return
        pct = int(msg.done * 100 / msg.total)
        if pct != self._map_pct and 0 <= pct < 100:
            self._map_pct = pct
            self._set_map_label(f"map: PCA (UMAP {pct}%)")

    @on(MapReady)
    def _map_ready(self, msg: MapReady) -> None:
        c = self.curator
        if c is None or msg.data.coords.shape[0] != c.n:
            return
        self._pca = None
        self._set_map(msg.data.coords, f"map: {MAP_LABELS.get(msg.data.kind, msg.data.kind)}")
        if self.current_row is not None:
            self.map_view.move_cursor_to(self.current_row)

    @on(MapFailed)
    def _map_failed(self, msg: MapFailed) -> None:
        if not msg.cancelled:
            self.notify(f"UMAP failed, keeping the PCA map: {msg.error}", severity="warning")
        self._set_map_label("map: PCA")
        self._pca = None

    # ------------------------------------------------------------------ redraw

    _vm = None
    _map_points = -1

    def refresh_view(self) -> None:
        """Redraw both panes, the counts and the title from the current state."""
        c = self.curator
        if c is None:
            return
        vm = c.view_model()
        self._vm = vm
        if self._map_points == c.n:
            self.map_view.set_states(vm.states)
        self.thumbs.set_model(vm)
        counts = c.counts(vm)
        sel = c.state.selection
        self.sidebar.show_counts(counts, c.voted_frequencies(), sel.iterations if sel else 0)
        self.sidebar.set_available(counts.images - counts.excluded)
        self.sidebar.show_quality(self.quality_line())
        self.title = c.title()
        self.sub_title = METHOD_LABELS.get(c.settings.method, c.settings.method)
        self.tell_marks_changed()  # the keepers follow the pins (quality_ui)

    # ------------------------------------------------------------------ pane sync

    @property
    def current_row(self) -> int | None:
        """The image x, p and enter act on: the map cursor while the map has the focus,
        else the highlighted row of the list as it is shown now (None for an empty list).

        Derived, never stored: a filter, a find, a re-run or an exclusion that moves the
        highlight can never leave a "current image" behind that is not on screen."""
        if self.curator is None or not self.screen_stack:
            return None
        try:
            map_view, thumbs = self.map_view, self.thumbs
        except NoMatches:
            return None
        if self.screen_stack[0].focused is map_view and map_view.cursor_row is not None:
            return map_view.cursor_row
        return thumbs.highlighted_row

    @current_row.setter
    def current_row(self, row: int) -> None:
        """Make ``row`` the current image on both panes (a hidden row widens the list)."""
        self.thumbs.focus_row(row)
        self.map_view.move_cursor_to(row)
        self._schedule_preview()

    @on(MapView.CursorMoved)
    def _cursor_moved(self, msg: MapView.CursorMoved) -> None:
        self.thumbs.focus_row(msg.row)
        self._schedule_preview()

    @on(ThumbList.Highlighted)
    def _highlighted(self, msg: ThumbList.Highlighted) -> None:
        if self.map_view.cursor_row != msg.row:
            self.map_view.move_cursor_to(msg.row)
        self._schedule_preview()

    @on(ThumbList.Moved)
    def _list_moved(self, msg: ThumbList.Moved) -> None:
        """The list changed under its highlight (filter, find, run, exclusion): the map
        cursor and the preview follow the new highlighted row, unless the user is on the
        map, where the cursor stays the current image and the list shows it if it can."""
        map_view = self.map_view
        if self.screen_stack and self.screen_stack[0].focused is map_view:
            row = map_view.cursor_row
            if row is not None and self.thumbs.shows(row):
                self.thumbs.focus_row(row)
        elif msg.row is not None and map_view.cursor_row != msg.row:
            map_view.move_cursor_to(msg.row)
        self._schedule_preview()

    @on(ThumbList.Activated)
    def _activated(self, msg: ThumbList.Activated) -> None:
        self.action_preview()

    @on(MapView.GraphicsChanged)
    def _graphics_changed(self, msg: MapView.GraphicsChanged) -> None:
        self.graphics = msg.mode
        for widget in (self.thumbs, self.main_query("#preview")):
            if hasattr(widget, "set_graphics"):
                widget.set_graphics(msg.mode)
        text, warn = describe_graphics(msg.mode, msg.effective, in_tmux=bool(os.environ.get("TMUX")))
        self.notify(text, severity="warning" if warn else "information", timeout=6 if warn else None)

    def _schedule_preview(self) -> None:
        if self._preview_timer is not None:
            self._preview_timer.stop()
        self._preview_timer = self.set_timer(0.15, self._show_preview)

    def _show_preview(self) -> None:
        c, row = self.curator, self.current_row
        try:
            preview = self.main_query("#preview", ImagePreview)
        except NoMatches:  # shutting down
            return
        if c is None or not preview.display:
            return
        # an empty list has no current image: the preview must not show the last one
        if row is None or row >= c.n:
            preview.show(None, "")
        else:
            preview.show(c.album / c.rel(row), preview_caption(c.quality, row, c.rel))

    # ------------------------------------------------------------------ actions

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        on_main = not isinstance(self.screen, ModalScreen) and self.screen is self.screen_stack[0]
        if action == "focus_pane":
            # priority binding: inside dialogs tab keeps its normal meaning
            return on_main
        # under a dialog the main screen's keys would act on images the user cannot see
        # (s, x, C...): off, and so gone from the dialog's footer
        return on_main or action not in _MAIN_SCREEN_ACTIONS

    def _need_album(self) -> Curator | None:
        if self.curator is None:
            self.notify("No album is open (press r to index it).", severity="warning")
        return self.curator

    def _need_row(self) -> int | None:
        c = self._need_album()
        if c is None:
            return None
        if self.current_row is None or not (0 <= self.current_row < c.n):
            self.notify("No current image: move the map cursor or the list first.", severity="warning")
            return None
        return self.current_row

    def _changed(self, message: str | None = None, severity: str = "information") -> None:
        self.refresh_view()
        if message:
            self.notify(message, severity=severity)  # type: ignore[arg-type]
        self._tell_save_problem()

    _edit_failed = False

    def _edit(self, change, *args):
        """Run a curator change; another picksel holding state.json's lock (StateBusy)
        or a refused change (no selection yet) is a message, never a crash. Returns
        the change's result, or None when it did not happen."""
        self._edit_failed = False
        try:
            return change(*args)
        except PickselError as e:
            self._edit_failed = True
            self.notify(str(e), severity="warning")
            return None
        finally:
            notes, self.curator.notes[:] = list(self.curator.notes), []  # type: ignore[union-attr]
            for note in notes:
                self.notify(note, title="state.json", severity="warning", timeout=12)

    _told_save_problem: str | None = None

    def _tell_save_problem(self) -> None:
        """Say once that state.json cannot be written (and again if the reason changes)."""
        problem = self.curator.save_problem if self.curator is not None else None
        if problem and problem != self._told_save_problem:
            self.notify(problem, title="state.json not saved", severity="error", timeout=15)
        self._told_save_problem = problem

    def action_focus_pane(self, step: int) -> None:
        # Under 80 columns the map is hidden: tab only visits what is on screen.
        panes = [p for p in (self.map_view, self.thumbs, self.sidebar) if p.styles.display != "none"]
        focused = self.focused
        current = 0
        for i, pane in enumerate(panes):
            if focused is not None and (focused is pane or pane in focused.ancestors):
                current = i
                break
        target = panes[(current + step) % len(panes)]
        if target is self.sidebar:
            self.sidebar.focus_first()
        else:
            target.focus()

    def action_select(self) -> None:
        c = self._need_album()
        if c is None:
            return
        if self.job is not None:
            self.notify("A selection is already running (escape cancels it).", severity="warning")
            return
        try:
            count = self.sidebar.commit("count")
            iterations = self.sidebar.commit("iterations")
        except UsageError as e:
            self.notify(str(e), severity="error")
            return
        c.update_settings(count=count, iterations=iterations)
        try:
            job = c.selection_job()
        except PickselError as e:
            self.notify(str(e), severity="error")
            return
        self.job = job
        self.sidebar.set_running(True)
        self.run_selection(job)

    PROGRESS_EVERY = 0.25
    """Seconds between progress messages from the selection worker: each one makes the
    UI thread lay out and redraw, which the worker then waits for (the GIL)."""

    @work(thread=True, exclusive=True, group="select")
    def run_selection(self, job) -> None:
        last = [-1.0]

        def progress(done: int, total: int, message: str = "") -> None:
            now = time.monotonic()
            if now - last[0] >= self.PROGRESS_EVERY or done >= total:
                last[0] = now
                self.post_message(SelectionProgress(done, total, message))

        try:
            result = job.run(progress)
        except Cancelled:
            self.post_message(SelectionFinished(cancelled=True))
        except PickselError as e:
            self.post_message(SelectionFinished(error=str(e)))
        except Exception as e:  # noqa: BLE001 - report, never crash the app
            self.post_message(SelectionFinished(error=f"{type(e).__name__}: {e}"))
        else:
            self.post_message(SelectionFinished(result=result))

    @on(SelectionProgress)
    def _selection_progress(self, msg: SelectionProgress) -> None:
        if self.job is not None:
            self.sidebar.show_progress(msg.done, msg.total, msg.text)

    @on(SelectionFinished)
    def _selection_finished(self, msg: SelectionFinished) -> None:
        self.job = None
        self.sidebar.set_running(False)
        c = self.curator
        if msg.cancelled:
            self.sidebar.show_note("Cancelled; the previous selection is kept.")
            self.notify("Selection cancelled.")
            return
        if msg.error or c is None:
            self.sidebar.show_note("Failed.")
            self.notify(f"Selection failed: {msg.error}", severity="error", timeout=10)
            return
        saved = self._apply_result(msg.result)
        if saved is None:
            return
        short = {"fps": "FPS", "kmeans": "K-Means"}.get(saved.method, saved.method)
        self.sidebar.show_note(f"{short} · {saved.iterations} runs · seed {saved.seed}")
        self._changed()
        # jump to the top of the new selection so the result is in view on both panes
        first = c.rows.get(saved.consensus[0]) if saved.consensus else None
        if first is not None:
            self.current_row = first

    def _apply_result(self, result, tries: int = 0):
        """Save a finished run; while another picksel holds the lock, retry every second
        (for a minute) instead of losing a run that may have taken a while."""
        c = self.curator
        assert c is not None
        try:
            return c.apply_result(result)
        except StateBusy:
            if tries == 0:
                self.sidebar.show_note("Waiting for another picksel to save…")
            if tries < 60:
                self.set_timer(1.0, lambda: self._retry_apply(result, tries + 1))
            else:
                self.notify("Could not save the selection: state.json stayed locked by another picksel.",
                            severity="error", timeout=15)
            return None

    def _retry_apply(self, result, tries: int) -> None:
        saved = self._apply_result(result, tries)
        if saved is not None:
            self.sidebar.show_note(f"saved · {saved.iterations} runs · seed {saved.seed}")
            self._changed()

    def action_cancel(self) -> None:
        if self.job is not None:
            self.job.cancel_event.set()
            self.sidebar.show_note("Cancelling…")
            return
        focused = self.focused
        if focused is not None and self.sidebar in focused.ancestors:
            self.thumbs.focus()
            return
        find = self.main_query("#find", FindBar)
        if find.display:
            find.action_close()  # escape drops an active find, wherever the focus is

    def action_switch_method(self) -> None:
        c = self._need_album()
        if c is None:
            return
        method = "kmeans" if c.settings.method == "fps" else "fps"
        c.update_settings(method=method)
        self.sidebar.set_method(method)
        self.sub_title = METHOD_LABELS[method]
        self.notify(f"Method: {METHOD_LABELS[method]}")

    @on(CuratorSidebar.SettingChanged)
    def _setting_changed(self, msg: CuratorSidebar.SettingChanged) -> None:
        c = self.curator
        if c is None:
            return
        c.update_settings(**{msg.key: msg.value})
        if msg.key == "method":
            self.sub_title = METHOD_LABELS.get(str(msg.value), str(msg.value))

    UNDO_HINT = " · u undoes"
    CONFIRM_OVER = 50
    """X asks first when it would exclude more than this many images, or 10% of the album."""

    def action_toggle_exclude(self) -> None:
        row = self._need_row()
        if row is None:
            return
        now = self._edit(self.curator.toggle_excluded, row)  # type: ignore[union-attr]
        if now is not None:
            self._changed(f"{'Excluded' if now else 'Included'} {self.curator.rel(row)}")  # type: ignore[union-attr]

    def action_exclude_threshold(self) -> None:
        c = self._need_album()
        if c is None:
            return
        try:
            threshold = self.sidebar.commit("threshold")
        except UsageError as e:
            self.notify(str(e), severity="error")
            return
        c.update_settings(threshold=threshold)
        new = self._edit(c.at_or_above, threshold)
        if new is None:
            return
        n = len(new)
        if n > self.CONFIRM_OVER or n > 0.1 * c.n:
            question = (
                f"Exclude {n:,} images ({n * 100 / max(c.n, 1):.0f}% of the album) "
                f"picked in ≥ {threshold:g}% of the runs?\n(u undoes it afterwards)"
            )
            self.push_screen(
                ConfirmScreen(question, yes=f"Exclude {n:,}"),
                lambda ok: self._exclude_threshold(threshold) if ok else self.notify("Nothing excluded"),
            )
            return
        self._exclude_threshold(threshold)

    def _exclude_threshold(self, threshold: float) -> None:
        new = self._edit(self.curator.exclude_at_or_above, threshold)  # type: ignore[union-attr]
        if new is not None:
            self._changed(
                f"Excluded {new} new image{'s' if new != 1 else ''} at or above {threshold:g}%"
                + (self.UNDO_HINT if new else "")
            )

    def action_clear_exclusions(self) -> None:
        c = self._need_album()
        if c is None:
            return
        n = len(c.state.excluded)
        if n == 0:
            self.notify("No exclusions to clear")
            return
        self.push_screen(
            ConfirmScreen(f"Clear all {n:,} exclusions?\n(u undoes it afterwards)", yes=f"Clear {n:,}"),
            lambda ok: self._clear_exclusions() if ok else self.notify("Exclusions kept"),
        )

    def _clear_exclusions(self) -> None:
        n = self._edit(self.curator.clear_exclusions)  # type: ignore[union-attr]
        if n is not None:
            self._changed(f"Cleared {n} exclusion{'s' if n != 1 else ''}" + self.UNDO_HINT)

    def action_clear_selection(self) -> None:
        c = self._need_album()
        if c is None:
            return
        had = self._edit(c.clear_selection)
        if had is None:
            return
        self.sidebar.show_note("")
        self._changed("Selection cleared (exclusions kept)" + self.UNDO_HINT if had else "No selection to clear")

    def action_pin(self) -> None:
        row = self._need_row()
        if row is None:
            return
        now = self._edit(self.curator.toggle_pin, row)  # type: ignore[union-attr]
        if now is None:
            return
        self._changed(
            f"{'Pinned' if now else 'Unpinned'} {self.curator.rel(row)}"  # type: ignore[union-attr]
            + (" (used from the next run)" if now else "")
        )

    def action_favorites(self) -> None:
        c = self._need_album()
        if c is None:
            return
        n = self._edit(c.set_favorites)
        if n is not None:
            self._changed(f"Favorites set to the {n} selected images" + self.UNDO_HINT)

    def action_undo(self) -> object:
        """Undo the newest change; returns what was undone (None: nothing)."""
        return self._journal_step("undo")

    def action_redo(self) -> object:
        return self._journal_step("redo")

    def _journal_step(self, which: str) -> object:
        c = self._need_album()
        if c is None:
            return None
        done = self._edit(c.undo if which == "undo" else c.redo)
        if done is None:
            if not self._edit_failed:
                self.notify(f"Nothing to {which}")
            return None
        msg = done.message(with_time=False)  # short: notifications are narrow
        self._changed(msg[0].upper() + msg[1:])
        return done

    def action_export(self) -> None:
        c = self._need_album()
        if c is None:
            return
        rels = c.included_rels()
        if not rels:
            self.notify("Nothing to export: run a selection first (s).", severity="warning")
            return
        self.push_screen(
            ExportScreen(c.album, rels, default_export_path(c), indexed=c.paths), self._exported
        )

    def _exported(self, report) -> None:
        if report is not None and self.curator is not None:
            self.curator.set_export_path(str(report.dest))

    def action_inventory(self) -> None:
        c = self._need_album()
        if c is None:
            return
        self.push_screen(
            InventoryScreen(c.paths, c.state.selection, set(c.state.excluded), default_inventory_path(c),
                            quality=lambda: inventory_quality(c)),
            self._inventoried,
        )

    def _inventoried(self, path: str | None) -> None:
        if path and self.curator is not None:
            self.curator.set_inventory_path(path)

    def action_preview(self) -> None:
        row = self._need_row()
        if row is None:
            return
        details = self.curator.details(row)  # type: ignore[union-attr]
        self.push_screen(PreviewScreen(details, self.graphics.value, row=row))

    def preview_step(self, row: int, delta: int):
        """For the preview's ←/→: the image ``delta`` places from ``row`` in the list as
        it is shown (filter and find apply), as (details, row); None at either end. The
        list and the map follow, so closing the preview leaves the user on that image."""
        c = self.curator
        rows = self.thumbs.rows
        if c is None or not len(rows):
            return None
        pos = self.thumbs.position(row)
        if pos < 0:
            # the shown image left the list (x under "excluded"): the highlight already
            # sits on the image that took its place, which is the next one
            pos = self.thumbs.cursor - (1 if delta > 0 else 0)
        target = pos + delta
        if not 0 <= target < len(rows):
            self.notify("End of the list." if delta > 0 else "Start of the list.", timeout=1.5)
            return None
        new = int(rows[target])
        self.current_row = new
        return c.details(new), new

    def preview_toggle(self, row: int, what: str):
        """For the preview's x / p: toggle the exclusion or the pin of the image shown
        there (not whatever the list highlights behind it); returns its new details."""
        c = self.curator
        if c is None or not 0 <= row < c.n:
            return None
        rel = c.rel(row)
        if what == "exclude":
            now = c.toggle_excluded(row)
            self._changed(f"{'Excluded' if now else 'Included'} {rel}")
        else:
            now = c.toggle_pin(row)
            self._changed(f"{'Pinned' if now else 'Unpinned'} {rel}")
        return c.details(row), row

    def action_find(self) -> None:
        if self._need_album() is None:
            return
        self.main_query("#find", FindBar).open()

    @on(Input.Changed, "#find")
    def _find_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.thumbs.query = event.value

    @on(FindBar.Closed)
    def _find_closed(self, event: FindBar.Closed) -> None:
        event.stop()
        if event.cleared:
            self.thumbs.query = ""
        self.thumbs.focus()

    def action_cycle_filter(self) -> None:
        if self._need_album() is None:
            return
        self.thumbs.cycle_filter()
        self.notify(f"List: {self.thumbs.filter}")

    def action_toggle_view(self) -> None:
        """t: list ⇄ thumbnail grid, remembered in the album's settings."""
        c = self._need_album()
        if c is None:
            return
        view = "grid" if self.thumbs.view == "list" else "list"
        self._show_view(view)
        c.update_settings(view=view)
        self._tell_save_problem()

    def _show_view(self, view: str) -> None:
        # the grid is the preview: the small one under it gives its lines to the thumbnails
        self.thumbs.view = view
        self.main_query("#middle").set_class(view == "grid", "-grid")
        self._schedule_preview()

    def action_cycle_graphics(self) -> None:
        self.map_view.action_cycle_graphics()

    def action_curve(self) -> None:
        c = self._need_album()
        if c is None:
            return
        if c.n == 0:
            self.notify("No images to measure.", severity="warning")
            return
        pinned = np.flatnonzero(c.pinned_mask()).astype(np.int64)
        try:
            emb = c.index.embeddings  # waits for the vectors if still unread
        except IndexCorrupt as e:
            self._index_damaged(IndexDamaged(c, str(e)))
            return
        screen = CurveScreen(c.state_dir, c.fingerprint, emb, c.excluded_mask(), pinned, c.settings.count)
        self.push_screen(screen, self._use_count)

    def _use_count(self, count: int | None) -> None:
        """Enter on the how-many screen: the suggested count, set and saved like a typed one."""
        c = self.curator
        if count is None or c is None:
            return
        c.update_settings(count=int(count))
        s = c.settings
        self.sidebar.set_settings(s.method, s.count, s.iterations, s.threshold)
        self.notify(f"Count set to {count:,} (the knee of the curve); press s to run.")

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    async def action_quit(self) -> None:
        self.stop_workers()
        self.exit(0)

    def _terminate(self) -> None:
        self.stop_workers()
        self.exit(return_code=143)

    def stop_workers(self) -> None:
        """Ask every thread worker to stop; whatever they already wrote is complete."""
        if self.job is not None:
            self.job.cancel_event.set()
        self.map_cancel.set()
        self.cancel_quality()
        for screen in self.screen_stack:
            ev = getattr(screen, "cancel_event", None)
            if ev is not None:
                ev.set()

    def on_unmount(self) -> None:
        if self._preview_timer is not None:
            self._preview_timer.stop()
        self.stop_workers()

    # ------------------------------------------------------------------ palette

    def get_system_commands(self, screen: Screen):
        yield from super().get_system_commands(screen)
        for action, title, help_text in COMMANDS:
            yield SystemCommand(title, help_text, lambda a=action: self.run_action(a))


# imported late: the screens import widgets that import this module's siblings
from picksel.tui.screens.confirm import ConfirmScreen  # noqa: E402
from picksel.tui.screens.curve import CurveScreen  # noqa: E402
from picksel.tui.screens.export import ExportScreen  # noqa: E402
from picksel.tui.screens.help import HelpScreen  # noqa: E402
from picksel.tui.screens.indexing import IndexingScreen  # noqa: E402
from picksel.tui.screens.inventory import InventoryScreen  # noqa: E402
from picksel.tui.screens.inventory import quality_of as inventory_quality  # noqa: E402
from picksel.tui.screens.preview import PreviewScreen  # noqa: E402


def run_app(album: Path, *, state_dir: Path | None = None, graphics: str = "auto") -> int:
    """Open the TUI on ``album`` (indexing it first when needed); returns the exit code.

    textual-image probes the terminal (sixel / kitty support, cell size) when imported;
    that must happen before ``App.run`` takes over stdin, so it happens here first
    (:func:`prepare_terminal`). A forced half-cell/text mode skips the probe; any forced
    mode is handed to the widgets and wins over what the probe found.
    """
    try:
        mode = GraphicsMode.parse(graphics)
    except ValueError as e:
        raise UsageError(str(e)) from None
    prepare_terminal(mode)

    app = PickselApp(Path(album), state_dir=state_dir, graphics=mode.value)
    app.quit_on_sigterm = True
    app.run()
    return int(app.return_code or 0)
