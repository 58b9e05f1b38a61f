"""Half-cell pictures (``▀`` with an upper and a lower pixel per cell) for any terminal.

Rich downgrades every truecolor cell it writes to a 256-colour terminal on its own, one
cell at a time, to a nearby xterm colour: a photo's soft gradient becomes a few flat
blocks. Here the picture is dithered (Floyd–Steinberg) to the xterm colours *before*
the cells are made, and every cell carries a colour Rich's downgrade maps to itself, so
the terminal shows exactly the dithered picture (:func:`palette`: the fixed xterm
colours 16–255 for 256 colours, the 16 ANSI colours for a 16-colour terminal, which
Textual assumes when TERM says nothing, e.g. plain ``xterm``).

Every image cell's style carries :data:`IMAGE_META`: under NO_COLOR the app swaps
Textual's monochrome filter for :class:`ImageSafeMonochrome`, which greys the interface
but leaves marked image cells in colour (a curator who cannot see colour cannot judge
photos).

One function makes the cells for all callers (list swatches, previews, the grid):
:func:`halfcell_strips`.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

import numpy as np
from PIL import Image, ImageOps
from rich.color import Color, ColorSystem
from rich.color_triplet import ColorTriplet
from rich.segment import Segment
from rich.style import Style
from textual.filter import LineFilter, Monochrome, NoColor
from textual.strip import Strip

IMAGE_META_KEY = "picksel-image"
IMAGE_META = {IMAGE_META_KEY: True}
_META_STYLE = Style.from_meta(IMAGE_META)
_META_MARK = IMAGE_META_KEY.encode()  # found inside a style's marshalled meta bytes
UPPER_HALF = "▀"

Fit = Literal["cover", "stretch"]

#: colour systems as Rich names them (``Console.color_system``)
TRUECOLOR = "truecolor"
EIGHT_BIT = "256"
STANDARD = "standard"


def colour_system_of(app: object) -> str | None:
    """The colour system the app's console writes with: "truecolor", "256", "standard",
    "windows" or None. Textual's console detects it like Rich (COLORTERM=truecolor or
    24bit, else the TERM suffix, e.g. xterm-256color; TEXTUAL_COLOR_SYSTEM overrides)."""
    console = getattr(app, "console", None)
    return getattr(console, "color_system", None) if console is not None else None


@lru_cache(4)
def palette(colour_system: str | None) -> tuple[np.ndarray, np.ndarray] | None:
    """(numbers, rgb) of the colours a picture is dithered to for ``colour_system``, or
    None when cells can stay as they are (truecolor; a system Rich does not downgrade
    to by palette). "256": the xterm colours 16–255 whose RGB Rich downgrades to the
    same number (a few greyish cube colours are left out: Rich sends them to the grey
    ramp; 0–15 are left out because each terminal theme paints them its own way).
    "standard" (16 colours): the ANSI colours as Rich assumes them; the terminal paints
    its own versions, but dithered hues still average out right."""
    from rich.color import EIGHT_BIT_PALETTE, STANDARD_PALETTE

    if colour_system == EIGHT_BIT:
        table, first, last, system = EIGHT_BIT_PALETTE, 16, 256, ColorSystem.EIGHT_BIT
    elif colour_system == STANDARD:
        table, first, last, system = STANDARD_PALETTE, 0, 16, ColorSystem.STANDARD
    else:
        return None
    numbers, rgb = [], []
    for n in range(first, last):
        triplet = table[n]
        back = Color.from_triplet(ColorTriplet(*triplet)).downgrade(system)
        if back.number == n and tuple(triplet) not in rgb:
            numbers.append(n)
            rgb.append(tuple(triplet))
    return np.asarray(numbers, dtype=np.int16), np.asarray(rgb, dtype=np.uint8)


@lru_cache(4)
def _palette_image(colour_system: str) -> Image.Image:
    """A "P" image holding :func:`palette` (padded with its first colour) for
    ``Image.quantize``."""
    pal = palette(colour_system)
    assert pal is not None
    rgb = pal[1]
    flat = [int(v) for v in rgb.reshape(-1)] + [int(v) for v in rgb[0]] * (256 - len(rgb))
    image = Image.new("P", (1, 1))
    image.putpalette(flat)
    return image


def to_palette(pixels: Image.Image, colour_system: str, *, dither: bool = True) -> np.ndarray:
    """``pixels`` (RGB) mapped to :func:`palette` of ``colour_system`` (which must have
    one): Floyd–Steinberg dithered, or the nearest palette colour each (``dither=False``:
    flat colours such as the map's). Returns an (H, W, 3) uint8 array of palette RGB."""
    pal = palette(colour_system)
    assert pal is not None, colour_system
    rgb = pal[1]
    mode = Image.Dither.FLOYDSTEINBERG if dither else Image.Dither.NONE
    quant = pixels.convert("RGB").quantize(palette=_palette_image(colour_system), dither=mode)
    index = np.asarray(quant, dtype=np.intp)
    return rgb[np.minimum(index, len(rgb) - 1)]


def halfcell_pixels(
    image: Image.Image,
    width: int,
    height: int,
    *,
    fit: Fit = "cover",
    resample: Image.Resampling = Image.Resampling.BOX,
) -> Image.Image:
    """``image`` as ``width`` × ``2·height`` RGB pixels (one per half cell): "cover"
    crops to fill (list swatches), "stretch" resizes to exactly that size (the caller
    already chose a size with the picture's aspect)."""
    size = (max(1, width), max(1, 2 * height))
    rgb = image.convert("RGB")
    if fit == "cover":
        return ImageOps.fit(rgb, size, resample)
    return rgb.resize(size, resample)


@lru_cache(4096)
def _cell_style(top: int, bottom: int) -> Style:
    """Style of one image cell: upper pixel as foreground, lower as background (24-bit
    ints), marked as image so NO_COLOR keeps it."""
    fg = Color.from_rgb(top >> 16, (top >> 8) & 0xFF, top & 0xFF)
    bg = Color.from_rgb(bottom >> 16, (bottom >> 8) & 0xFF, bottom & 0xFF)
    return Style(color=fg, bgcolor=bg) + _META_STYLE


def strips_from_pixels(rgb: np.ndarray) -> list[Strip]:
    """One strip per pair of pixel rows of ``rgb`` (H, W, 3); an odd last row gets a
    black lower half. Runs of equal cells share one segment."""
    arr = np.asarray(rgb, dtype=np.uint8)
    if arr.shape[0] % 2:
        arr = np.concatenate([arr, np.zeros((1, *arr.shape[1:]), dtype=np.uint8)])
    packed = (arr[..., 0].astype(np.int64) << 16) | (arr[..., 1].astype(np.int64) << 8) | arr[..., 2]
    width = arr.shape[1]
    strips: list[Strip] = []
    for line in range(arr.shape[0] // 2):
        tops, bottoms = packed[2 * line].tolist(), packed[2 * line + 1].tolist()
        segments: list[Segment] = []
        run = 0
        for c in range(width):
            run += 1
            if c + 1 < width and tops[c + 1] == tops[c] and bottoms[c + 1] == bottoms[c]:
                continue
            segments.append(Segment(UPPER_HALF * run, _cell_style(tops[c], bottoms[c])))
            run = 0
        strips.append(Strip(segments, width))
    return strips


def halfcell_strips(
    image: Image.Image,
    width: int,
    height: int,
    colour_system: str | None = TRUECOLOR,
    *,
    fit: Fit = "cover",
    dither: bool = True,
    resample: Image.Resampling = Image.Resampling.BOX,
) -> list[Strip]:
    """``image`` drawn in ``width`` × ``height`` cells for a terminal writing
    ``colour_system`` (see :func:`colour_system_of`): truecolor cells as they are;
    for "256" and "standard" (16 colours) the pixels are dithered (or, ``dither=False``,
    nearest-mapped) to colours that survive Rich's downgrade unchanged (:func:`palette`).
    Returns ``height`` strips of ``width`` cells."""
    if width <= 0 or height <= 0:
        return []
    pixels = halfcell_pixels(image, width, height, fit=fit, resample=resample)
    if palette(colour_system) is not None:
        rgb = to_palette(pixels, colour_system, dither=dither)  # type: ignore[arg-type]
    else:
        rgb = np.asarray(pixels, dtype=np.uint8)
    return strips_from_pixels(rgb)


def is_image_style(style: Style | None) -> bool:
    """Whether a segment style was made by this module (carries :data:`IMAGE_META`)."""
    return style is not None and bool(style._meta) and _META_MARK in style._meta  # noqa: SLF001


class ImageSafeMonochrome(Monochrome):
    """Textual's NO_COLOR monochrome filter, except for image cells."""

    def apply(self, segments: list[Segment], background) -> list[Segment]:  # type: ignore[no-untyped-def]
        grey = super().apply
        out: list[Segment] = []
        for segment in segments:
            if is_image_style(segment.style):
                out.append(segment)
            else:
                out.extend(grey([segment], background))
        return out


class ImageSafeNoColor(NoColor):
    """Textual's NO_COLOR filter for native ANSI colour, except for image cells."""

    def apply(self, segments: list[Segment], background) -> list[Segment]:  # type: ignore[no-untyped-def]
        plain = super().apply
        out: list[Segment] = []
        for segment in segments:
            if is_image_style(segment.style):
                out.append(segment)
            else:
                out.extend(plain([segment], background))
        return out


def keep_image_colours(app: object) -> bool:
    """Under NO_COLOR, replace the filter Textual's ``App.__init__`` installed with its
    image-safe twin (the UI stays monochrome, pictures keep their pixels). Textual keeps
    its filters in the private ``App._filters``; if that moved, nothing changes (the
    pictures go grey, as before). Returns True when a filter was replaced."""
    filters: list[LineFilter] | None = getattr(app, "_filters", None)
    if not isinstance(filters, list):
        return False
    replaced = False
    for i, f in enumerate(filters):
        if type(f) is Monochrome:
            filters[i] = ImageSafeMonochrome(enabled=f.enabled)
            replaced = True
        elif type(f) is NoColor:
            filters[i] = ImageSafeNoColor(enabled=f.enabled)
            replaced = True
    return replaced


__all__ = [
    "EIGHT_BIT",
    "IMAGE_META",
    "TRUECOLOR",
    "ImageSafeMonochrome",
    "ImageSafeNoColor",
    "colour_system_of",
    "halfcell_pixels",
    "halfcell_strips",
    "is_image_style",
    "keep_image_colours",
    "STANDARD",
    "palette",
    "strips_from_pixels",
    "to_palette",
]
