"""Sixel and kitty image widgets that stay visible behind a dialog.

A dialog (Textual's ModalScreen) draws the screen behind it as ordinary text cells:
the background screen's lines are rendered, tinted and cut around the dialog. Pixel
images cannot take part in that. textual-image's sixel widget draws nothing when its
screen is not on top (a sixel is painted after the text of its rows and would cover
the dialog; it cannot be tinted or clipped to the cells the dialog leaves free), and a
kitty image is a run of placeholder cells whose foreground colour *is* the image id,
which the dialog's tint changes. So the map and the previews vanished behind every
dialog in a sixel or kitty terminal.

Here, while their screen is behind another one, these widgets draw their picture in
half cells instead (:mod:`picksel.tui.halfcell`): text cells the dialog can dim and
cover like the rest of the screen. When the dialog closes, the screen on top is theirs
again and the next render is pixels. An owner can supply its own lines
(``behind_lines``): the map draws itself in braille there, as in text mode, since a
downscaled pixel map would average its dots away.
"""

from __future__ import annotations

from collections.abc import Callable

from PIL import Image as PILImage
from rich.segment import Segment
from rich.style import Style
from textual.dom import NoScreen
from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget
from textual_image._geometry import ImageSize
from textual_image._pixeldata import PixelData
from textual_image._terminal import get_cell_size
from textual_image.widget import SixelImage as _SixelImage
from textual_image.widget import TGPImage as _TGPImage
from textual_image.widget.sixel import _ImageSixelImpl

from picksel.tui.halfcell import colour_system_of, halfcell_strips

#: (columns, rows) in cells -> that many lines of that many cells
BehindLines = Callable[[int, int], list[Strip]]


def on_top(widget: Widget) -> bool:
    """Whether ``widget``'s screen is the one on top (not behind a dialog)."""
    try:
        return widget.screen.is_active
    except NoScreen:
        return False


class BehindPicture:
    """What an image widget shows while its screen is behind a dialog: its image in
    half cells, or the lines ``behind_lines`` makes when its owner set it."""

    behind_lines: BehindLines | None = None


def behind_strips(
    owner: Widget, image: object, crop: Region, width: int, height: int, background: Style
) -> list[Strip]:
    """Half-cell lines of ``owner``'s picture for ``crop`` of a ``width`` × ``height``
    content area, laid out like textual-image lays out the pixels (top left, the
    picture's aspect kept unless the owner's styles fix both sides)."""
    hook: BehindLines | None = getattr(owner, "behind_lines", None)
    strips: list[Strip] = []
    if width <= 0 or height <= 0:
        return []
    if hook is not None:
        strips = hook(width, height)
    elif image is not None:
        picture = PixelData(image, mode="rgb").pil_image  # type: ignore[arg-type]
        styled = owner._get_styled_size()  # type: ignore[attr-defined]  # noqa: SLF001
        cols, rows = ImageSize(picture.width, picture.height, *styled).get_cell_size(
            width, height, get_cell_size()
        )
        strips = halfcell_strips(
            picture, min(cols, width), min(rows, height), colour_system_of(owner.app),
            fit="stretch", resample=PILImage.Resampling.BOX,
        )
    blank = Strip([Segment(" " * width, background)], width)
    lines = [s.crop_pad(width, 0, 0, background) for s in strips[:height]]
    lines += [blank] * (height - len(lines))
    return [lines[y].crop(crop.x, crop.right) for y in crop.line_range if 0 <= y < height]


class _SixelImpl(_ImageSixelImpl, inherit_css=False):
    """textual-image's sixel injector, with half cells while behind a dialog."""

    def render_lines(self, crop: Region) -> list[Strip]:
        if self.image and not on_top(self) and self.is_attached:
            _, colour = self.background_colors
            size = self.content_size
            return behind_strips(
                self.parent, self.image, crop, size.width, size.height,  # type: ignore[arg-type]
                Style(bgcolor=colour.rich_color),
            )
        return super().render_lines(crop)


class SixelImage(BehindPicture, _SixelImage, Renderable=_SixelImage._Renderable):
    """textual-image's sixel widget that keeps a picture behind dialogs."""

    def compose(self):  # type: ignore[no-untyped-def]
        yield _SixelImpl(self.image, self._sixel_options)


class TGPImage(BehindPicture, _TGPImage, Renderable=_TGPImage._Renderable):
    """textual-image's kitty widget that keeps a picture behind dialogs."""

    def render_lines(self, crop: Region) -> list[Strip]:
        if self.image and not on_top(self):
            _, colour = self.background_colors
            size = self.content_size
            # picksel's image widgets have no border or padding: crop is the content
            return behind_strips(
                self, self.image, crop, size.width, size.height, Style(bgcolor=colour.rich_color)
            )
        return super().render_lines(crop)
