"""The how-many screen: the covering-radius curve full screen, its knee and the count.

The curve (one FPS run to K, see :mod:`picksel.curve`) is computed, or read from
``.picksel/curve.npz``, in a thread worker with a progress bar, so the app never waits
for it; escape cancels the run and closes. Enter closes with the suggested count, which
the app then puts in the sidebar and saves like a typed count.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Footer, ProgressBar, Static

from picksel.curve import DEFAULT_MAX, CoverCurve
from picksel.errors import Cancelled
from picksel.tui.screens.modal import PickselModal


class CurveScreen(PickselModal[int | None]):
    """Dismisses with the suggested count (enter) or None (escape)."""

    BINDINGS = [
        Binding("escape,q", "close", "Close"),
        Binding("enter", "use", "Use the suggested count"),
    ]

    def __init__(
        self,
        state_dir: Path,
        fingerprint: str,
        embeddings: np.ndarray,
        excluded: np.ndarray,
        pinned: np.ndarray,
        count: int,
        k_max: int = DEFAULT_MAX,
    ) -> None:
        super().__init__()
        self.state_dir = state_dir
        self.fingerprint = fingerprint
        self.embeddings = embeddings
        self.excluded = excluded
        self.pinned = pinned
        self.count = int(count)
        self.k_max = k_max
        self.curve: CoverCurve | None = None
        self.cancel_event = threading.Event()  # the app sets it on quit (stop_workers)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog curve-dialog") as box:
            box.border_title = "How many images?"
            box.border_subtitle = "enter: use the suggested count · escape: close"
            yield Static("Running FPS once to measure how well k images cover the album…",
                         id="curve-note")
            yield ProgressBar(id="curve-progress", show_eta=False)
            yield Static("", id="curve-chart")
        yield Footer()

    def on_mount(self) -> None:
        self.compute()

    @work(thread=True, exclusive=True, group="curve")
    def compute(self) -> None:
        from picksel.curve import ensure_curve

        def progress(done: int, total: int, _message: str = "") -> None:
            self.app.call_from_thread(self._progress, done, total)

        try:
            curve = ensure_curve(
                self.state_dir, self.fingerprint, self.embeddings, self.k_max,
                excluded=self.excluded, pinned=self.pinned,
                progress=progress, cancel=self.cancel_event.is_set,
            )
        except Cancelled:
            return
        except Exception as e:  # noqa: BLE001 - a message, never a crash
            self.app.call_from_thread(self._failed, f"{type(e).__name__}: {e}")
            return
        self.app.call_from_thread(self._show, curve)

    def _progress(self, done: int, total: int) -> None:
        self.query_one("#curve-progress", ProgressBar).update(total=total, progress=done)

    def _failed(self, message: str) -> None:
        self.query_one("#curve-progress").display = False
        self.query_one("#curve-note", Static).update(f"Could not compute the curve: {message}")

    def _show(self, curve: CoverCurve) -> None:
        self.curve = curve
        self.query_one("#curve-progress").display = False
        knee = curve.knee
        r = dict(zip(curve.k.tolist(), curve.radius.tolist(), strict=True))
        now = f"now {self.count:,} (radius {r[self.count]:.3f})" if self.count in r else f"now {self.count:,}"
        self.query_one("#curve-note", Static).update(
            f"Suggested count: {knee:,} (the knee: radius {r[knee]:.3f}) · {now} · "
            f"k = 1…{int(curve.k[-1]):,}, one FPS run"
        )
        self._draw()

    def on_resize(self) -> None:
        if self.curve is not None:
            self._draw()

    def _draw(self) -> None:
        from picksel.tui.curvechart import chart_text

        curve = self.curve
        if curve is None:
            return
        chart = self.query_one("#curve-chart", Static)
        width = max(20, self.size.width - 6)
        height = max(8, self.size.height - 6)
        chart.update(chart_text(curve.k, curve.radius, curve.knee, self.count, width, height))

    def action_use(self) -> None:
        if self.curve is None:
            self.notify("The curve is still being computed.", severity="warning")
            return
        self.dismiss(self.curve.knee)

    def action_close(self) -> None:
        self.cancel_event.set()
        self.dismiss(None)
