"""The one message shape the data panes post: "the user did X to index row ``row``"."""

from __future__ import annotations

from textual.message import Message
from textual.widget import Widget


class RowMessage(Message):
    """Base of MapView.CursorMoved, ThumbList.Highlighted and ThumbList.Activated.

    Only keys and clicks post these (calls from code never do), so the two panes can
    follow each other without bouncing messages back and forth.
    """

    def __init__(self, widget: Widget, row: int) -> None:
        super().__init__()
        self.widget = widget
        self.row = row

    @property
    def control(self) -> Widget:
        return self.widget
