"""textual-image's half-cell image widget, drawn through :mod:`picksel.tui.halfcell`.

Same sizing and layout as ``textual_image.widget.HalfcellImage`` (the size in cells
comes from textual-image's own geometry, so a preview keeps its place), but the cells
are made by :func:`~picksel.tui.halfcell.halfcell_strips` for the console's colour
system: dithered to exact xterm colours in a 256-colour terminal, and marked as image
so NO_COLOR leaves their colours alone.
"""

from __future__ import annotations

from typing import IO

from PIL import Image as PILImage
from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.segment import Segment
from textual_image._geometry import ImageSize
from textual_image._pixeldata import PixelData
from textual_image._terminal import get_cell_size
from textual_image.widget._base import Image as BaseImage

from picksel.tui.halfcell import halfcell_strips

ImageSource = str | bytes | IO[bytes] | PILImage.Image


class PaletteHalfcell:
    """Rich renderable: an image in half cells for the console's colour system."""

    def __init__(
        self,
        image: ImageSource,
        width: int | str | None = None,
        height: int | str | None = None,
    ) -> None:
        self._image = PixelData(image, mode="rgb").pil_image  # type: ignore[arg-type]
        self._render_size = ImageSize(self._image.width, self._image.height, width, height)

    def cleanup(self) -> None:
        """Nothing to free (textual-image's renderable protocol asks for it)."""

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width, height = self._render_size.get_cell_size(
            options.max_width, options.max_height, get_cell_size()
        )
        strips = halfcell_strips(
            self._image, width, height, console.color_system,
            fit="stretch", resample=PILImage.Resampling.BICUBIC,
        )
        newline = Segment.line()
        for strip in strips:
            yield from strip
            yield newline

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        width, _ = self._render_size.get_cell_size(
            options.max_width, options.max_height, get_cell_size()
        )
        return Measurement(width, width)


class HalfcellImage(BaseImage, Renderable=PaletteHalfcell):  # type: ignore[misc]
    """Drop-in for ``textual_image.widget.HalfcellImage`` (the ``image`` property,
    styled width/height) whose pixels survive a 256-colour terminal and NO_COLOR."""
