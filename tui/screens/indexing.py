"""Indexing an album that has none yet, with progress; escape cancels."""

from __future__ import annotations

import threading
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import ProgressBar, Static

from picksel.errors import Cancelled, PickselError
from picksel.textsafe import printable
from picksel.tui.screens.modal import PickselModal


class IndexingScreen(PickselModal[bool]):
    """Runs ``build_index`` in a thread; dismisses True when the index was written."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, album: Path, state_dir: Path | None = None, *, full: bool = False) -> None:
        super().__init__()
        self.album = Path(album)
        self.state_dir = state_dir
        self.full = full
        self.cancel_event = threading.Event()

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog indexing-dialog") as box:
            box.border_title = printable(f"Indexing {self.album.name}")
            box.border_subtitle = "escape cancels"
            yield Static("This album has no index yet: reading every image once.", id="index-what")
            yield ProgressBar(id="index-progress", total=None, show_eta=False)
            yield Static("Scanning…", id="index-message")

    def on_mount(self) -> None:
        self.build()

    @work(thread=True, exclusive=True, group="index")
    def build(self) -> None:
        from picksel.index import build_index

        def progress(done: int, total: int, message: str = "") -> None:
            self.app.call_from_thread(self._progress, done, total, message)

        try:
            index, report = build_index(
                self.album,
                full=self.full,
                state_dir=self.state_dir,
                progress=progress,
                cancel=self.cancel_event.is_set,
            )
        except Cancelled:
            self.app.call_from_thread(self._finish, False, "Indexing cancelled.")
            return
        except PickselError as e:
            self.app.call_from_thread(self._finish, False, f"Indexing failed: {e}")
            return
        except Exception as e:  # noqa: BLE001 - show, never crash the app
            self.app.call_from_thread(self._finish, False, f"Indexing failed: {type(e).__name__}: {e}")
            return
        note = f"Indexed {len(index):,} images"
        if report.failures:
            note += f" ({len(report.failures)} unreadable files skipped)"
        self.app.call_from_thread(self._finish, True, note)

    def _progress(self, done: int, total: int, message: str) -> None:
        bar = self.query_one("#index-progress", ProgressBar)
        if total > 0:
            bar.update(total=total, progress=done)
        if message:
            self.query_one("#index-message", Static).update(Text(printable(message)))

    def _finish(self, ok: bool, note: str) -> None:
        if self.app.return_code is not None:
            return  # the app is quitting (that cancelled us): no screen is left to update
        self.app.notify(note, severity="information" if ok else "warning")
        self.dismiss(ok)

    def action_cancel(self) -> None:
        self.cancel_event.set()
        self.query_one("#index-message", Static).update("Cancelling…")
