"""The large preview (enter): the image, its facts, its votes and its caption."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Footer, Static

from picksel.textsafe import printable, printable_lines
from picksel.tui.controller import Details, human_size
from picksel.tui.screens.modal import PickselModal
from picksel.tui.widgets.sidebar import TIER_STYLES


def details_table(d: Details) -> Table:
    table = Table.grid(padding=(0, 1))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    table.add_row("path", printable(d.rel))
    table.add_row("size", human_size(d.size))
    table.add_row("pixels", d.dimensions)
    if d.iterations:
        table.add_row("votes", f"{d.votes} of {d.iterations} runs")
        table.add_row("frequency", f"{d.frequency:.0f}%")
    tier = d.tier.split(" ")[0]
    table.add_row("tier", Text(d.tier, style=TIER_STYLES.get(tier, "")))
    marks = [m for m, on in (("excluded", d.excluded), ("pinned", d.pinned), ("favorite", d.favorite)) if on]
    if marks:
        table.add_row("marks", Text(", ".join(marks), style="bold red" if d.excluded else "bold"))
    return table


class PreviewScreen(PickselModal[None]):
    """One image large. ←/→ (j/k) step through the list as it is shown behind (filter
    and find apply), x and p act on the image shown here and the facts update at once,
    so reviewing 150 picks is 150 key presses, not 450.

    The screen asks the app for everything (``preview_step``, ``preview_toggle``): the
    app owns the list and the album state, the screen only shows one row."""

    BINDINGS = [
        Binding("escape,enter,q", "close", "Close"),
        # priority: the facts pane scrolls with ←/→ otherwise
        Binding("right,j", "step(1)", "Next", key_display="→/j", priority=True),
        Binding("left,k", "step(-1)", "Previous", key_display="←/k", priority=True),
        Binding("x", "toggle('exclude')", "Exclude"),
        Binding("p", "toggle('pin')", "Pin"),
    ]

    def __init__(self, details: Details, graphics: str = "auto", row: int | None = None) -> None:
        super().__init__()
        self.details = details
        self.graphics = graphics
        self.row = row

    def compose(self) -> ComposeResult:
        from picksel.tui.widgets.preview import ImagePreview

        with Horizontal(classes="dialog preview-dialog") as box:
            box.border_subtitle = "←/→ step · x exclude · p pin · escape closes"
            yield ImagePreview(id="big-image", graphics=self.graphics)
            with VerticalScroll(id="preview-facts"):
                yield Static(id="preview-table")
                yield Static(id="preview-caption")
        yield Footer()

    def on_mount(self) -> None:
        self.show(self.details, self.row)

    def show(self, details: Details, row: int | None) -> None:
        """Show another image (or the same one with changed marks)."""
        self.details, self.row = details, row
        self.query_one(".preview-dialog").border_title = printable(details.rel)
        self.query_one("#preview-table", Static).update(details_table(details))
        self.query_one("#preview-caption", Static).update(
            Text("caption\n", style="bold")
            + Text(
                printable_lines(details.caption) or "(no caption file)",
                style="" if details.caption else "dim",
            )
        )
        big = self.query_one("#big-image")
        if big.path != details.path:  # type: ignore[attr-defined]
            big.show(details.path, "")  # type: ignore[attr-defined]  # caption is in the facts

    def action_step(self, delta: int) -> None:
        if self.row is None:
            return
        found = self.app.preview_step(self.row, delta)  # type: ignore[attr-defined]
        if found is not None:
            self.show(*found)

    def action_toggle(self, what: str) -> None:
        if self.row is None:
            return
        found = self.app.preview_toggle(self.row, what)  # type: ignore[attr-defined]
        if found is not None:
            self.show(*found)

    def action_close(self) -> None:
        self.dismiss(None)
