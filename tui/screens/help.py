"""The `?` screen: every key, grouped, with a few lines on how the curator is used."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Footer, Static

from picksel.tui.screens.modal import PickselModal

INTRO = (
    "picksel picks a subset of your album. Diversity (FPS) keeps the images that are most "
    "different from each other (good for finding garbage and rare concepts); Blocks (K-Means) "
    "keeps one image per cluster (good for a balanced training set). Every run is repeated "
    "for a number of iterations; images picked in ≥90% of them are core (magenta), ≥70% "
    "stable (cyan), the rest variable (green). Excluded images are red and never picked.\n\n"
    "Cleaning: count 20, iterations 20, press s, look at the magenta ones, press x on garbage "
    "(or X to exclude everything at or above the threshold), press s again.\n"
    "Training set: c to clear the selection (exclusions stay), set the count, press s, "
    "review, exclude what you do not want, run again, then e to export.\n"
    "Quality: when an album opens, every image is checked (cached, so only new files cost "
    "time): rows are marked dark, brt (bright), blank, blur, noise, small, gray, aspect, "
    "dup (a duplicate copy) or keep (its group's keeper); the sidebar counts them. Nothing "
    "is excluded until you press F or x in the duplicates review (d)."
)

GROUPS: list[tuple[str, list[tuple[str, str]]]] = [
    (
        "Selection",
        [
            ("s", "run the selection with the sidebar's settings"),
            ("escape", "cancel a running selection / close a dialog / drop a find"),
            ("m", "switch method: Diversity (FPS) ↔ Blocks (K-Means)"),
            ("c", "clear the selection (exclusions are kept)"),
            ("p", "pin / unpin the current image (always selected)"),
            ("f", "set favorites := selection minus exclusions"),
            ("n", "how many images? coverage curve for 1…1,000, knee = suggested count"),
        ],
    ),
    (
        "Exclusions",
        [
            ("x", "exclude / include the current image"),
            ("X", "exclude every image at or above the threshold (asks first when many)"),
            ("C", "clear all exclusions (asks first)"),
            ("u", "undo the last change of exclusions, pins, favorites or selection"),
            ("U", "redo: make again what u took back (until a new change)"),
        ],
    ),
    (
        "Quality",
        [
            ("d", "review duplicates: one group side by side with sizes and sharpness"),
            ("← → / ↑ ↓", "in the review: choose the keeper / previous, next group"),
            ("x / enter", "in the review: keep the chosen image, exclude the others"),
            ("F", "exclude every flagged image of a kind (asks first when many)"),
        ],
    ),
    (
        "Moving around",
        [
            ("tab / shift+tab", "next / previous pane (map, list, curator)"),
            ("arrows / h j k l", "map: move the cursor to the nearest image · list, grid: move"),
            ("pgup pgdn home end", "list: page up / down, first / last"),
            ("+ / - / 0", "map: zoom in / out / reset (around the cursor)"),
            ("up / down", "curator: previous / next control"),
            ("enter / escape", "in a curator field: run (saves the value) / back to the list"),
            ("enter", "show the current image large, with its caption and votes"),
            ("← → / j k", "in that preview: previous / next image of the list; x, p act there"),
            ("v", "list filter: all → selected → excluded → favorites → flagged → duplicates"),
            ("t", "list ⇄ thumbnail grid (remembered per album; same filter, find, x, p, enter)"),
            ("/", "find: narrow the list to file names containing a text (escape clears)"),
        ],
    ),
    (
        "Files and display",
        [
            ("e", "export the selection (images + captions) to a folder"),
            ("i", "write an inventory (TSV or CSV) of the selection"),
            ("g", "graphics: auto → sixel → kitty → half-cell → text"),
            ("ctrl+p", "command palette: every action by name"),
            ("?", "this help"),
            ("q", "quit (everything is already saved)"),
        ],
    ),
]


def help_table() -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    for i, (group, keys) in enumerate(GROUPS):
        if i:
            table.add_row("", "")
        table.add_row(Text(group, style="bold underline"), "")
        for key, what in keys:
            table.add_row(key, what)
    return table


class HelpScreen(PickselModal[None]):
    BINDINGS = [Binding("escape,q,question_mark,f1", "close", "Close")]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog help-dialog") as box:
            box.border_title = "picksel — keys"
            box.border_subtitle = "escape closes · ↑↓ scroll"
            with VerticalScroll(id="help-scroll"):
                yield Static(INTRO, classes="help-intro")
                yield Static(help_table(), classes="help-keys")
        yield Footer()  # its own: the main screen's keys do not work under this dialog

    def on_mount(self) -> None:
        self.query_one("#help-scroll").focus()

    def action_close(self) -> None:
        self.dismiss(None)
