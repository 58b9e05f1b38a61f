"""The large preview (enter): the image, its facts, its votes and its caption."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from picksel.textsafe import printable, printable_lines
from picksel.tui.controller import Details, human_size
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


class PreviewScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,enter,q", "close", "Close")]

    def __init__(self, details: Details, graphics: str = "auto") -> None:
        super().__init__()
        self.details = details
        self.graphics = graphics

    def compose(self) -> ComposeResult:
        from picksel.tui.widgets.preview import ImagePreview

        with Horizontal(classes="dialog preview-dialog") as box:
            box.border_title = printable(self.details.rel)
            box.border_subtitle = "escape closes"
            yield ImagePreview(id="big-image", graphics=self.graphics)
            with VerticalScroll(id="preview-facts"):
                yield Static(details_table(self.details), id="preview-table")
                yield Static(
                    Text("caption\n", style="bold")
                    + Text(
                        printable_lines(self.details.caption) or "(no caption file)",
                        style="" if self.details.caption else "dim",
                    ),
                    id="preview-caption",
                )

    def on_mount(self) -> None:
        self.query_one("#big-image").show(self.details.path, "")  # caption is in the facts

    def action_close(self) -> None:
        self.dismiss(None)
