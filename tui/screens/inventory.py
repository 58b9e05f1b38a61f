"""Inventory dialog: write a TSV (or CSV) of the included and excluded images.

The file name defaults to the last inventory written, else ``SET_inventory.tsv`` beside
the last export folder SET, else ``ALBUM_inventory.tsv`` in the home folder; an existing
file is only replaced after a yes in a confirmation. Without a selection it refuses with
the CLI's words (``picksel.inventory.NO_SELECTION``) instead of writing a bare header.
The flag and duplicate columns come from the cached measures, as in the CLI (looked up
when the file is written, never measured here); images without them are ``unchecked``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, RadioButton, RadioSet, Static

from picksel.errors import PickselError
from picksel.tui.safetext import safe_text
from picksel.tui.screens.confirm import ConfirmScreen
from picksel.tui.screens.modal import PickselModal
from picksel.tui.widgets.sidebar import MethodButton


def quality_of(curator):
    """The album's flags and duplicate groups from the cached measures (what
    ``picksel inventory`` writes), for ``InventoryScreen(quality=...)``."""
    from picksel.embeddingdups import semantic_vectors
    from picksel.quality import Thresholds
    from picksel.qualitylookup import cached_quality

    return cached_quality(curator.album, list(curator.paths), curator.state_dir,
                          Thresholds.from_dict(curator.state.quality), set(curator.state.pins),
                          semantic_vectors(curator.index))


class FormatButton(MethodButton):
    """TSV / CSV: ● for the chosen format, ○ for the other, readable without colour."""


class InventoryScreen(PickselModal[str | None]):
    """Dismisses with the written file's path (None when closed)."""

    BINDINGS = [Binding("escape", "close", "Close")]

    def __init__(self, paths: list[str], selection, excluded: set[str], default_path: str,
                 quality: Callable[[], object] | None = None) -> None:
        super().__init__()
        self.quality = quality  # () -> QualityLookup, called when writing
        self.paths = paths
        self.selection = selection
        self.excluded = excluded
        self.default_path = default_path

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog inventory-dialog") as box:
            box.border_title = "Inventory"
            box.border_subtitle = "enter: write · escape: close"
            yield Static("File to write (Filename, Subfolder, Count, Frequency, Index, Status, "
                         "Flags, DupGroup, DupRole):")
            yield Input(self.default_path, id="inv-path")
            with RadioSet(id="inv-format", compact=True):
                yield FormatButton("TSV (tab-separated)", id="fmt-tsv", value=not self._is_csv(self.default_path))
                yield FormatButton("CSV (commas)", id="fmt-csv", value=self._is_csv(self.default_path))
            yield Static("", id="inv-message")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Write  enter", id="write", variant="primary", compact=True)
                yield Button("Close  esc", id="close", compact=True)

    def on_mount(self) -> None:
        from picksel.inventory import NO_SELECTION

        self.query_one("#inv-path", Input).focus()
        if self.selection is None:
            self._message(Text(NO_SELECTION, style="bold red"))
            self.query_one("#write", Button).disabled = True

    @staticmethod
    def _is_csv(path: str) -> bool:
        return path.lower().endswith(".csv")

    def csv(self) -> bool:
        return self.query_one("#fmt-csv", RadioButton).value

    @on(RadioSet.Changed, "#inv-format")
    def _format(self, event: RadioSet.Changed) -> None:
        event.stop()
        field = self.query_one("#inv-path", Input)
        p = Path(field.value.strip())
        if p.suffix.lower() in (".tsv", ".csv", ".txt"):
            field.value = str(p.with_suffix(".csv" if self.csv() else ".tsv"))

    @on(Input.Submitted, "#inv-path")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.write()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "write":
            self.write()
        else:
            self.action_close()

    def _message(self, text: Text | str) -> None:
        self.query_one("#inv-message", Static).update(safe_text(text))

    def write(self) -> None:
        from picksel.inventory import NO_SELECTION

        if self.selection is None:
            self._message(Text(NO_SELECTION, style="bold red"))
            return
        raw = self.query_one("#inv-path", Input).value.strip()
        if not raw:
            self._message(Text("Type a file name.", style="red"))
            return
        path = Path(raw).expanduser()
        if path.is_dir():
            self._message(Text(f"{path} is a folder: add a file name.", style="red"))
            return
        if path.exists():
            self.app.push_screen(
                ConfirmScreen(f"{path} exists. Replace it?", yes="Replace", no="Keep"),
                lambda yes: self._write(path, overwrite=True) if yes else self._message("Not written."),
            )
            return
        self._write(path)

    def _write(self, path: Path, *, overwrite: bool = False) -> None:
        from picksel.indexed import left_out_line
        from picksel.inventory import inventory_rows, left_out_of_inventory, write_inventory
        from picksel.qualitylookup import unchecked_line

        lookup = self.quality() if self.quality is not None else None
        try:
            rows = inventory_rows(self.paths, self.selection, self.excluded, lookup)
        except PickselError as e:
            self._message(Text(str(e), style="bold red"))
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            n = write_inventory(path, rows, csv=self.csv(), overwrite=overwrite)
        except (PickselError, OSError) as e:
            self._message(Text(f"Cannot write {path}: {getattr(e, 'strerror', None) or e}", style="bold red"))
            return
        left_out = left_out_of_inventory(self.paths, self.selection, self.excluded)
        if left_out:
            self.app.notify(left_out_line(left_out), severity="warning")
        if lookup is not None and lookup.unchecked:
            self.app.notify(unchecked_line(len(lookup.unchecked), self.app.curator.album), severity="warning")
        self.app.notify(f"Inventory: {n} rows written to {path}")
        self.dismiss(str(path))

    def action_close(self) -> None:
        self.dismiss(None)
