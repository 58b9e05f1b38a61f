"""The base of picksel's dialogs: the screen behind them keeps its pictures' colours.

Textual draws the screen behind a dialog tinted, and drops every style's meta on the
way (``BackgroundScreen``). Under NO_COLOR that meta is how the monochrome filter knows
a cell belongs to a picture (:func:`picksel.tui.halfcell.is_image_style`), so previews
and thumbnails behind a dialog went grey while the interface stayed as it was. The
tint is kept; only the picture mark is put back.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Generic, TypeVar

from rich.segment import Segment
from rich.style import Style
from textual.color import Color
from textual.renderables.background_screen import BackgroundScreen
from textual.screen import ModalScreen

from picksel.tui.halfcell import IMAGE_META, is_image_style

ResultT = TypeVar("ResultT")
_MARK = Style.from_meta(IMAGE_META)


class PictureSafeBackground(BackgroundScreen):
    """Textual's tinted background screen, with picture cells still marked as pictures."""

    @classmethod
    def process_segments(cls, segments: Iterable[Segment], color: Color) -> Iterable[Segment]:
        segments = list(segments)
        tinted = super().process_segments(segments, color)
        for before, after in zip(segments, tinted, strict=True):
            if is_image_style(before.style) and after.style is not None:
                yield Segment(after.text, after.style + _MARK, after.control)
            else:
                yield after


class PickselModal(ModalScreen[ResultT], Generic[ResultT]):
    """A modal dialog whose background keeps its pictures' colours under NO_COLOR."""

    def render(self):  # noqa: ANN201 - a Rich renderable, as Screen.render returns
        rendered = super().render()
        if type(rendered) is BackgroundScreen:
            return PictureSafeBackground(rendered.screen, rendered.color)
        return rendered
