"""The duplicates review (``d``) and the flag-kind chooser of ``F``.

The review shows one duplicate group side by side: each image large enough to judge
(through the preview's graphics machinery: sixel, kitty or half-cell), with its name,
pixel size, sharpness, flags and marks, and which one will be kept. ←/→ choose the
keeper, ↑/↓ step through the groups, x (or enter) keeps the chosen image and excludes
the others as one change that u takes back. Like the large preview, the screen asks the
app for everything (``curator``, ``keep_in_group``, ``action_undo``): the app owns the
album state, the screen only shows one group.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer, OptionList, Static
from textual.widgets.option_list import Option

from picksel.textsafe import printable
from picksel.tui.marks import FLAG_ABBREV
from picksel.tui.screens.modal import PickselModal
from picksel.tui.widgets.preview import ImagePreview

MAX_CARDS = 4
"""Images shown at once; a bigger group scrolls with the choice (the title says so)."""


def card_facts(curator, row: int, chosen: bool, suggested: bool) -> Text:
    """The lines under one image of the review."""
    q = curator.quality
    rel = PurePosixPath(curator.rel(row))
    text = Text()
    if chosen:
        text.append("▶ KEEP", style="bold reverse")
    else:
        text.append("✗ exclude", style="bold")
    if suggested:
        text.append("  (suggested)", style="dim")
    text.append("\n")  # the name is the picture's caption, just above
    folder = printable(rel.parent.as_posix())
    text.append(("." if folder in ("", ".") else folder) + "\n", style="dim")
    text.append(f"{int(q.width[row])} × {int(q.height[row])} px\n")
    text.append(f"sharpness {float(q.sharpness[row]):.3g}\n")
    flags = q.flags(row)
    text.append("flags: " + (", ".join(FLAG_ABBREV[f] for f in flags) if flags else "none"))
    marks = [m for m, on in (("excluded", rel.as_posix() in curator.state.excluded),
                             ("pinned", rel.as_posix() in curator.state.pins)) if on]
    if marks:
        text.append("\n" + ", ".join(marks), style="bold")
    return text


class DupCard(Vertical):
    """One image of the group: picture, then its facts."""

    DEFAULT_CSS = """
    DupCard {
        width: 1fr;
        height: 1fr;
        border: round $panel-lighten-2;
        padding: 0 0;
    }
    DupCard.-chosen {
        border: double $accent;
    }
    DupCard > ImagePreview {
        height: 1fr;
        min-height: 3;
        align: center bottom;  /* picture, name and facts together, room above */
    }
    /* both auto: textual-image fits the picture inside the card keeping its aspect
       (100% × 1fr would stretch a landscape photo to the card's portrait shape) */
    DupCard > ImagePreview > .preview-image {
        width: auto;
        height: auto;
    }
    DupCard > .dup-facts {
        height: auto;
        max-height: 7;
    }
    """

    def __init__(self, graphics: str, **kw) -> None:
        super().__init__(**kw)
        self.graphics = graphics
        self.row: int | None = None

    def compose(self) -> ComposeResult:
        yield ImagePreview(graphics=self.graphics, classes="dup-image")
        yield Static("", classes="dup-facts", markup=False)


class DuplicatesScreen(PickselModal[None]):
    """One duplicate group at a time; keep one, exclude the others."""

    DEFAULT_CSS = """
    .dup-dialog {
        width: 100%;
        max-width: 100%;
        height: 100%;
        max-height: 100%;
    }
    .dup-dialog #dup-cards {
        height: 1fr;
    }
    .dup-dialog #dup-note {
        height: 1;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    """

    BINDINGS = [
        Binding("escape,q,d", "close", "Close"),
        # one footer entry per pair: the footer must fit in 80 columns
        Binding("left,h", "choose(-1)", "Keeper", show=False, priority=True),
        Binding("right,l", "choose(1)", "Keeper", key_display="←→", priority=True),
        Binding("down,j,pagedown", "group(1)", "Group", key_display="↑↓", priority=True),
        Binding("up,k,pageup", "group(-1)", "Group", show=False, priority=True),
        Binding("x,enter", "keep", "Keep it, exclude the others"),
        Binding("u", "undo", "Undo"),
    ]

    def __init__(self, start: int = 0, graphics: str = "auto") -> None:
        super().__init__()
        self.index = start
        self.graphics = graphics
        self.chosen = 0  # position in the group's members of the image to keep
        self.kept: list[tuple[int, int]] = []  # (group, chosen) of each x here, for u
        self._shown: list[int] = []  # the members shown, keeper first
        self._picked: int | None = None  # the row ←/→ chose (None: the suggested keeper)

    @property
    def curator(self):
        return self.app.curator  # type: ignore[attr-defined]

    def members(self) -> list[int]:
        keep, copies = self.curator.quality.groups[self.index]
        return [keep, *copies]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog dup-dialog") as box:
            box.border_subtitle = "←/→ keeper · ↑/↓ group · x keep, exclude others · u undo"
            with Horizontal(id="dup-cards"):
                for i in range(MAX_CARDS):
                    yield DupCard(self.graphics, id=f"dup-card-{i}")
            yield Static("", id="dup-note", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.show_group()

    def on_screen_resume(self) -> None:
        self.show_group()  # marks may have changed under a dialog on top

    def quality_ready(self) -> None:
        """The app re-checked the album (a new result): start over from the first group."""
        q = self.curator.quality if self.curator is not None else None
        if q is None or not q.groups:
            self.dismiss(None)
            return
        self._go(min(self.index, len(q.groups) - 1), 0)
        self.show_group()

    def marks_changed(self) -> None:
        """The app redrew after a change (a pin, an undo, another picksel): the keeper
        may have moved, and with it the group's place in the list."""
        self.show_group()

    def _follow_group(self) -> None:
        """Stay on the group shown when re-choosing its keeper re-sorted the groups (they
        are ordered by keeper path); the image chosen with ←/→ stays chosen, otherwise
        the choice follows the suggested keeper."""
        q = self.curator.quality
        anchor = self._shown[0] if self._shown else None
        if anchor is not None and anchor < len(q) and q.group[anchor]:
            number = int(q.group[anchor]) - 1
            if set(self.members()) != set(self._shown) and set(
                    [q.groups[number][0], *q.groups[number][1]]) == set(self._shown):
                self.index = number
        members = self.members()
        if members != self._shown:
            self.chosen = members.index(self._picked) if self._picked in members else 0

    def show_group(self) -> None:
        c = self.curator
        if c is None or c.quality is None or not self.query(DupCard):
            return  # the app is closing (or re-indexing) under the review
        q = c.quality
        self.index = max(0, min(self.index, len(q.groups) - 1))
        if self._shown:
            self._follow_group()
        members = self.members()
        self.chosen = max(0, min(self.chosen, len(members) - 1))
        self._shown = members
        start = max(0, min(self.chosen - MAX_CARDS + 1, len(members) - MAX_CARDS)) if len(members) > MAX_CARDS else 0
        shown = members[start : start + MAX_CARDS]
        kind = q.kinds[self.index]
        more = f" · images {start + 1}–{start + len(shown)} of {len(members)}" if len(members) > MAX_CARDS else ""
        self.query_one(".dup-dialog").border_title = (
            f"Duplicates · group {self.index + 1} of {len(q.groups)} · {kind}{more}"
        )
        for i in range(MAX_CARDS):
            card = self.query_one(f"#dup-card-{i}", DupCard)
            if i >= len(shown):
                card.display = False
                card.row = None
                continue
            row = shown[i]
            card.display = True
            chosen = start + i == self.chosen
            card.set_class(chosen, "-chosen")
            card.query_one(".dup-facts", Static).update(
                card_facts(c, row, chosen=chosen, suggested=row == members[0]))
            preview = card.query_one(ImagePreview)
            if card.row != row or preview.path is None:
                preview.show(c.album / c.rel(row))
            card.row = row
        others = len(members) - 1
        keep_name = printable(PurePosixPath(c.rel(members[self.chosen])).name)
        self.query_one("#dup-note", Static).update(
            f"x keeps {keep_name} and excludes the other {others} · u undoes"
        )

    def action_choose(self, delta: int) -> None:
        members = self.members()
        self.chosen = (self.chosen + delta) % len(members)
        self._picked = members[self.chosen]
        self.show_group()

    def _go(self, index: int, chosen: int) -> None:
        """Another group (or the same one afresh): nothing picked there yet."""
        self.index, self.chosen = index, chosen
        self._shown, self._picked = [], None

    def action_group(self, delta: int) -> None:
        n = len(self.curator.quality.groups)
        target = self.index + delta
        if not 0 <= target < n:
            self.app.notify("Last group." if delta > 0 else "First group.", timeout=1.5)
            return
        self._go(target, 0)
        self.show_group()

    def action_keep(self) -> None:
        members = self.members()
        keep = members[self.chosen]
        others = [r for r in members if r != keep]
        if self.app.keep_in_group(keep, others) is None:  # type: ignore[attr-defined]
            return
        self.kept.append((self.index, self.chosen))
        if self.index + 1 < len(self.curator.quality.groups):
            self._go(self.index + 1, 0)
        self.show_group()

    def action_undo(self) -> None:
        """Undo the last change; when it was an x made here, back to that group."""
        undone = self.app.action_undo()  # type: ignore[attr-defined]
        if undone is not None and self.kept and undone.action.startswith("d keep"):
            self._go(*self.kept.pop())
        self.show_group()

    def action_close(self) -> None:
        self.dismiss(None)


class FlagChoiceScreen(PickselModal[str | None]):
    """F: which kind of flagged image to exclude, with how many the check found."""

    DEFAULT_CSS = """
    .flag-dialog {
        width: 60;
        max-width: 100%;
    }
    .flag-dialog OptionList {
        height: auto;
        max-height: 14;
    }
    """

    BINDINGS = [Binding("escape,q,F", "close", "Cancel")]

    def __init__(self, options: list[tuple[str, str, int]]) -> None:
        super().__init__()
        self.options = options

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog flag-dialog") as box:
            box.border_title = "Exclude flagged images"
            box.border_subtitle = "enter excludes (u undoes) · escape cancels"
            yield OptionList(
                *[Option(f"{label[:44]:<44}{count:>7,}", id=key, disabled=count == 0)
                  for key, label, count in self.options],
                id="flag-options",
            )
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def action_close(self) -> None:
        self.dismiss(None)
