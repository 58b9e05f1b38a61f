"""Small preview of the current image (sidebar or under the map).

The image is decoded in a worker thread (``open_image`` with a size cap, so a 50 MP
photo does not stall the UI) and shown through a textual-image widget: sixel or
kitty graphics when the terminal has them, half-cell blocks otherwise (also in
"text" mode: a photo has no braille form). Rapid cursor moves only show the latest
request: older decodes are dropped when they finish.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image as PILImage
from textual import work
from textual.app import ComposeResult
from textual.widget import Widget
from textual.widgets import Static

from picksel.errors import PickselError
from picksel.imageio import open_image
from picksel.textsafe import printable
from picksel.thumbs import PLACEHOLDER_KEY, placeholder
from picksel.tui.widgets.graphics import GraphicsMode, image_class, resolve

PREVIEW_MAX_SIDE = 768


def preview_class(mode: GraphicsMode | str) -> type[Widget]:
    """textual-image widget class for a preview in ``mode`` (TEXT → half-cell). Half
    cells are drawn by picksel's own widget: dithered for 256 colours, kept in colour
    under NO_COLOR."""
    concrete = resolve(mode)
    if concrete in (GraphicsMode.TEXT, GraphicsMode.HALFCELL):
        try:  # built on textual-image internals; if they moved, textual-image's own widget
            from picksel.tui.widgets.halfcell_image import HalfcellImage
        except (ImportError, AttributeError, TypeError):  # pragma: no cover
            return image_class(GraphicsMode.HALFCELL)
        return HalfcellImage
    return image_class(concrete)


class ImagePreview(Widget):
    """An image and a one-line caption; ``show(path, caption)`` changes both."""

    DEFAULT_CSS = """
    ImagePreview {
        height: 12;
        width: 1fr;
        layout: vertical;
    }
    ImagePreview > .preview-image {
        width: 100%;
        height: 1fr;
    }
    ImagePreview > .preview-caption {
        width: 100%;
        height: 1;
        text-style: bold;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    """

    def __init__(
        self,
        *,
        graphics: GraphicsMode | str = "auto",
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._mode = GraphicsMode.parse(graphics)
        self._path: Path | None = None
        self._caption = ""
        self._token = 0
        self._image: PILImage.Image | None = None

    @property
    def path(self) -> Path | None:
        return self._path

    @property
    def caption(self) -> str:
        return self._caption

    @property
    def image(self) -> PILImage.Image | None:
        """The decoded image on display (None while loading or when cleared)."""
        return self._image

    def compose(self) -> ComposeResult:
        yield preview_class(self._mode)(classes="preview-image")
        yield Static("", classes="preview-caption", markup=False)

    def show(self, path: Path | None, caption: str = "") -> None:
        """Preview ``path`` (None clears) with ``caption`` (default: the file name)."""
        self._token += 1
        self._path = Path(path) if path is not None else None
        self._caption = printable(caption or (self._path.name if self._path is not None else ""))
        if self.is_mounted:
            self.query_one(".preview-caption", Static).update(self._caption)
        if self._path is None:
            self._set_image(None)
            return
        self._decode(self._path, self._token)

    def set_graphics(self, mode: GraphicsMode | str) -> None:
        """Switch the image widget to ``mode`` (auto, sixel, kitty, half-cell, text)."""
        self._mode = GraphicsMode.parse(mode)
        if not self.is_mounted:
            return
        old = self.query_one(".preview-image")
        new = preview_class(self._mode)(self._image, classes="preview-image")
        self.mount(new, before=old)
        old.remove()

    def on_mount(self) -> None:
        self.query_one(".preview-caption", Static).update(self._caption)
        if self._image is not None:
            self._set_image(self._image)

    @work(thread=True, exclusive=True, group="preview")
    def _decode(self, path: Path, token: int) -> None:
        try:
            image = open_image(path, max_side=PREVIEW_MAX_SIDE)
        except PickselError as exc:
            image = placeholder(64, str(exc))
        if token == self._token:
            self.app.call_from_thread(self._finish, image, token)

    def _finish(self, image: PILImage.Image, token: int) -> None:
        if token != self._token:
            return
        reason = image.info.get(PLACEHOLDER_KEY)
        if reason and self._path is not None:
            self._caption = printable(f"{self._path.name} — {reason}")
            self.query_one(".preview-caption", Static).update(self._caption)
        self._set_image(image)

    def _set_image(self, image: PILImage.Image | None) -> None:
        self._image = image
        if self.is_mounted:
            self.query_one(".preview-image").image = image  # type: ignore[attr-defined]
