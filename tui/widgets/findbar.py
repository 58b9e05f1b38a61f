"""The `/` find bar under the thumbnail list: narrows the list to file names containing
what is typed, live.

Why a bar and not a dialog: the list stays visible while typing, so the user sees the
matches shrink and can go straight back to it with enter; escape drops the search.
"""

from __future__ import annotations

from textual.binding import Binding
from textual.message import Message
from textual.widgets import Input

from picksel.textsafe import printable


class FindBar(Input):
    """Hidden until opened; the text is a case-insensitive substring of the album path
    as the list shows it (escapes included: ``\\x1b`` finds a name holding ESC)."""

    def insert_text_at_cursor(self, text: str) -> None:
        # A paste can carry control characters; shown raw they would drive the terminal.
        super().insert_text_at_cursor(printable(text))

    BINDINGS = [
        Binding("escape", "close", "Clear find", show=True),
        Binding("enter", "done", "Back to list", show=True),
    ]

    class Closed(Message):
        """The user left the bar; ``cleared`` when the search was dropped (escape)."""

        def __init__(self, cleared: bool) -> None:
            super().__init__()
            self.cleared = cleared

    def open(self) -> None:
        self.display = True
        self.focus()

    def action_close(self) -> None:
        self.value = ""
        self.display = False
        self.post_message(self.Closed(cleared=True))

    def action_done(self) -> None:
        if not self.value:
            self.display = False
        self.post_message(self.Closed(cleared=False))
