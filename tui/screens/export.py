"""Export dialog: pick a folder, see what will happen, copy with progress, read the result.

Three steps in one modal so the keyboard flow stays linear: type or pick a folder
(enter) → read the plan ("148 images, 131 captions → DEST") and press Copy → progress,
then a result listing every error and every skipped or already-there file. A folder that
does not exist yet is created by the export itself. The copy runs in a thread worker; it
is cancelled (escape, or quitting the app) between files, and every file already copied
stays complete (the engine copies to a temp name and renames).

When the folder already holds images that are not in this selection (an earlier export,
anyone's files), the review says how many and Copy gives way to three choices: add to
them, move them aside into ``.picksel-replaced-TIME/`` (nothing is deleted), or type
another folder; mixing two sets silently would send the mix to training.
"""

from __future__ import annotations

import threading
from collections.abc import Collection
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, DirectoryTree, Input, ProgressBar, Static

from picksel.errors import Cancelled, PickselError
from picksel.tui.safetext import safe_text
from picksel.tui.screens.modal import PickselModal


class FolderTree(DirectoryTree):
    """Directories only: the export target is a folder.

    Folder icons are Tree's triangles, not DirectoryTree's emoji: the Linux console and
    many SSH terminal fonts have no emoji and would draw boxes there."""

    BINDINGS = [Binding("backspace,u", "up_folder", "Up a folder")]
    ICON_NODE = "▸ "
    ICON_NODE_EXPANDED = "▾ "
    ICON_FILE = "  "

    def process_label(self, label: str | Text) -> Text:
        # A folder's name is data: never markup (a "[/]" would raise), never raw ESC.
        return safe_text(label.plain if isinstance(label, Text) else label)

    def filter_paths(self, paths):
        out = []
        for p in paths:
            try:
                if p.is_dir() and not p.name.startswith("."):
                    out.append(p)
            except OSError:
                continue
        return out

    def action_up_folder(self) -> None:
        parent = Path(self.path).parent
        if parent != Path(self.path):
            self.path = parent


def nearest_existing_dir(path: Path) -> Path:
    for p in (path, *path.parents):
        try:
            if p.is_dir():
                return p
        except OSError:
            continue
    return Path.home()


HIDDEN_NOTE = "The tree hides folders whose name starts with '.'; type such a path in the field above."

HINT_REVIEW = "enter: review (copies nothing) · tab: folders · escape: close"
HINT_COPY = "enter again: copy · edit the folder to review anew · escape: close"
HINT_CHOOSE = "choose: add to them · move them aside · another folder · escape: close"


def plan_summary(items, dest: Path, survey=None, left_out: Collection[str] = ()) -> tuple[Text, int]:
    """The confirmation line plus notes; returns (text, images that will be copied).

    ``survey`` (a DestSurvey) adds what DEST holds besides this selection; ``left_out``
    the saved entries that are not indexed images of the album."""
    from picksel.indexed import left_out_line

    copy = [it for it in items if it.problem is None and not it.already_there]
    there = [it for it in items if it.already_there]
    refused = [it for it in items if it.problem is not None]
    captions = sum(len(it.sidecars) for it in copy)
    text = Text()
    text.append(f"{len(copy)} images, {captions} captions → {dest}", style="bold")
    renamed = [it for it in copy if Path(it.rel).name != it.dest_name]
    if renamed:
        text.append(f"\n{len(renamed)} renamed to avoid name collisions")
    if there:
        text.append(f"\n{len(there)} already there (identical), will be skipped")
    if refused:
        text.append(f"\n{len(refused)} refused:", style="bold red")
        for it in refused[:20]:
            text.append(f"\n  {it.rel}: {it.problem}", style="red")
        if len(refused) > 20:
            text.append(f"\n  … and {len(refused) - 20} more", style="red")
    if left_out:
        text.append(f"\n{left_out_line(list(left_out))}", style="yellow")
    if survey is not None and survey.others:
        text.append(f"\n{survey.line()}.", style="bold yellow")
        text.append(
            "\nAdd to them, move them aside into .picksel-replaced-TIME/ (nothing is deleted),"
            " or choose another folder.",
            style="yellow",
        )
    if not dest.exists():
        text.append("\nThe folder does not exist yet: it will be created.", style="dim")
    return text, len(copy)


def report_text(report) -> Text:
    text = Text()
    ok = not report.errors
    text.append(report.summary(), style="bold green" if ok else "bold red")
    for title, rows, style in (
        ("errors", report.errors, "red"),
        ("skipped (refused)", report.skipped, "yellow"),
    ):
        if rows:
            text.append(f"\n\n{title}:", style=f"bold {style}")
            for path, reason in rows:
                text.append(f"\n  {path}: {reason}", style=style)
    if report.identical_skipped:
        text.append("\n\nalready there (identical, not copied):", style="bold")
        for rel in report.identical_skipped:
            text.append(f"\n  {rel}")
    if report.replaced_to is not None:
        text.append(f"\n\nmoved aside into {report.replaced_to} (nothing deleted):", style="bold")
        for name in report.replaced:
            text.append(f"\n  {name}")
    renamed = [(rel, name) for rel, name in report.copied if Path(rel).name != name]
    if renamed:
        text.append("\n\nrenamed:", style="bold")
        for rel, name in renamed:
            text.append(f"\n  {rel} → {name}")
    return text


class ExportScreen(PickselModal[object]):
    """Dismisses with the ExportReport (or None when closed without exporting)."""

    BINDINGS = [Binding("escape", "close", "Cancel / close")]

    def __init__(
        self, album: Path, rels: list[str], dest: str, indexed: Collection[str] | None = None
    ) -> None:
        super().__init__()
        self.album = Path(album)
        self.rels = list(rels)
        self.indexed = set(indexed) if indexed is not None else None
        self.initial = dest
        self._needs_choice = False
        self.cancel_event = threading.Event()
        self.report = None
        self._planned_for: str | None = None
        self._copying = False

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog export-dialog") as box:
            box.border_title = f"Export {len(self.rels)} images"
            box.border_subtitle = HINT_REVIEW
            yield Static("Destination folder (typed, or picked below; created if missing):")
            yield Input(self.initial, id="dest", placeholder="/path/to/folder")
            yield FolderTree(nearest_existing_dir(Path(self.initial).expanduser()), id="tree")
            yield Static(Text(HIDDEN_NOTE, style="dim"), id="hidden-note")
            with VerticalScroll(id="export-summary-box"):
                yield Static("", id="export-summary")
            yield ProgressBar(id="export-progress", total=None, show_eta=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Review  enter", id="plan", compact=True)
                yield Button("Copy", id="copy", variant="primary", compact=True, disabled=True)
                yield Button("Add to them", id="merge", variant="primary", compact=True)
                yield Button("Move them aside", id="replace", variant="warning", compact=True)
                yield Button("Other folder", id="other", compact=True)
                yield Button("Close  esc", id="close", compact=True)

    def on_mount(self) -> None:
        self._show_choices(False)
        self.query_one("#export-progress").display = False
        self.query_one("#tree", FolderTree).root.expand()
        self.query_one("#dest", Input).focus()

    # ------------------------------------------------------------------ steps

    def dest_path(self) -> Path:
        return Path(self.query_one("#dest", Input).value.strip()).expanduser()

    def _summary(self, text: Text | str) -> None:
        self.query_one("#export-summary", Static).update(safe_text(text))

    @on(DirectoryTree.DirectorySelected, "#tree")
    def _picked(self, event: DirectoryTree.DirectorySelected) -> None:
        event.stop()
        self.query_one("#dest", Input).value = str(event.path)
        self.review()

    @on(Input.Submitted, "#dest")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self._planned_for == event.value.strip() and self._needs_choice:
            self.query_one("#merge", Button).focus()  # never mix two sets on a bare enter
        elif self._planned_for == event.value.strip() and not self.query_one("#copy", Button).disabled:
            self.start_copy()
        else:
            self.review()

    @on(Input.Changed, "#dest")
    def _changed(self, event: Input.Changed) -> None:
        if self._planned_for is not None and event.value.strip() != self._planned_for:
            self._planned_for = None
            self.query_one("#copy", Button).disabled = True
            self._show_choices(False)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "plan":
            self.review()
        elif event.button.id == "copy":
            self.start_copy()
        elif event.button.id in ("merge", "replace"):
            self.start_copy(event.button.id)
        elif event.button.id == "other":
            self._show_choices(False)
            self._planned_for = None
            field = self.query_one("#dest", Input)
            field.focus()
            field.action_select_all()
            self._summary(Text("Type or pick another folder, then enter.", style="yellow"))
        else:
            self.action_close()

    def _hint(self, text: str) -> None:
        """The border hint says what the next enter does: review first, then copy."""
        self.query_one(".export-dialog").border_subtitle = text

    def _show_choices(self, show: bool) -> None:
        """Copy, or the three choices for a folder holding images outside this selection."""
        self._needs_choice = show
        self._hint(HINT_CHOOSE if show else HINT_REVIEW)
        self.query_one("#copy", Button).display = not show
        self.query_one("#plan", Button).display = not show  # "Other folder" reviews anew
        for bid in ("merge", "replace", "other"):
            button = self.query_one(f"#{bid}", Button)
            button.display = show
            button.disabled = not show

    def review(self) -> None:
        """Show what the export would do; never writes anything."""
        from picksel.export import review_export

        if self._copying:
            return
        raw = self.query_one("#dest", Input).value.strip()
        copy_button = self.query_one("#copy", Button)
        copy_button.disabled = True
        self._show_choices(False)
        if not raw:
            self._summary(Text("Type a destination folder.", style="red"))
            return
        dest = self.dest_path()
        tree = self.query_one("#tree", FolderTree)
        near = nearest_existing_dir(dest.parent)
        if Path(tree.path) != near and not self.query_one("#tree").has_focus:
            tree.path = near  # the tree follows what was typed
        if dest.exists() and not dest.is_dir():
            self._summary(Text(f"{dest} is a file, not a folder: choose another path.", style="bold red"))
            return
        try:
            review = review_export(self.album, self.rels, dest, indexed=self.indexed)
        except (PickselError, OSError) as e:
            self._summary(Text(f"Cannot export there: {e}", style="bold red"))
            return
        text, n_copy = plan_summary(review.items, dest, review.survey, review.left_out)
        self._summary(text)
        self._planned_for = raw
        if review.survey.others:
            self.query_one("#merge", Button).label = f"Add {n_copy} to them" if n_copy else "Add to them"
            self._show_choices(True)
            self.query_one("#merge", Button).focus()
            return
        copy_button.label = f"Copy {n_copy} images"
        copy_button.disabled = n_copy == 0
        if n_copy:
            copy_button.focus()
            self._hint(HINT_COPY)

    def start_copy(self, others: str | None = None) -> None:
        if self._copying or self._planned_for is None:
            return
        if self._needs_choice and others is None:
            return
        self._copying = True
        self.query_one("#copy", Button).disabled = True
        for bid in ("merge", "replace", "other"):
            self.query_one(f"#{bid}", Button).disabled = True
        self.query_one("#plan", Button).disabled = True
        self.query_one("#dest", Input).disabled = True
        bar = self.query_one("#export-progress", ProgressBar)
        bar.display = True
        bar.update(total=max(len(self.rels), 1), progress=0)
        self.copy(self.dest_path(), others)

    @work(thread=True, exclusive=True, group="export")
    def copy(self, dest: Path, others: str | None = None) -> None:
        from picksel.export import DestHasOtherImages, export_images

        def progress(done: int, total: int, message: str = "") -> None:
            self.app.call_from_thread(self._progress, done, total)

        try:
            report = export_images(
                self.album, self.rels, dest, progress=progress, cancel=self.cancel_event.is_set,
                indexed=self.indexed, others=others,
            )
        except DestHasOtherImages as e:  # DEST changed since the review
            self.app.call_from_thread(
                self._failed, f"{e.survey.line()} (new since the review): review again and choose."
            )
            return
        except Cancelled:
            self.app.call_from_thread(self._failed, "Export cancelled; files already copied are complete.")
            return
        except (PickselError, OSError) as e:
            self.app.call_from_thread(self._failed, f"Export failed: {e}")
            return
        except Exception as e:  # noqa: BLE001 - shown to the user, the app keeps running
            self.app.call_from_thread(self._failed, f"Export failed: {type(e).__name__}: {e}")
            return
        self.app.call_from_thread(self._done, report)

    def _progress(self, done: int, total: int) -> None:
        self.query_one("#export-progress", ProgressBar).update(total=max(total, 1), progress=done)

    def _done(self, report) -> None:
        self._copying = False
        self._show_choices(False)
        self.query_one("#copy", Button).disabled = True
        self.report = report
        self.query_one("#export-progress").display = False
        self._summary(report_text(report))
        self.query_one("#close", Button).focus()
        self.app.notify(report.summary(), severity="error" if report.errors else "information")

    def _failed(self, message: str) -> None:
        self._copying = False
        self._planned_for = None
        self._show_choices(False)
        self.query_one("#export-progress").display = False
        self.query_one("#plan", Button).disabled = False
        self.query_one("#dest", Input).disabled = False
        self._summary(Text(message, style="bold red"))
        self.app.notify(message, severity="error")

    def action_close(self) -> None:
        if self._copying:
            self.cancel_event.set()
            self._summary(Text("Cancelling after the current file…", style="yellow"))
            return
        self.dismiss(self.report)
