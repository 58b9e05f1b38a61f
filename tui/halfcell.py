"""Half-cell pictures (``▀`` with an upper and a lower pixel per cell) for any terminal.

Rich downgrades every truecolor cell it writes to a 256-colour terminal on its own, one
cell at a time, to a nearby xterm colour: a photo's soft gradient becomes a few flat
blocks. Here the picture is dithered (ordered, in lightness) to the xterm colours *before*
the cells are made, and every cell carries a truecolor that Rich's downgrade turns into
exactly the xterm colour chosen for it, so the terminal shows the dithered picture (:func:`palette`: the fixed xterm
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

from dataclasses import dataclass
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


@dataclass(frozen=True)
class Palette:
    """The colours a terminal can show, as Rich reaches them: ``shown[i]`` is what the
    terminal paints for xterm number ``numbers[i]``, ``emit[i]`` a truecolor Rich's
    downgrade turns into exactly that number (for most colours the same RGB; Rich's
    grey test sends some of them elsewhere, and the light greys of the ramp are only
    reached from a slightly different grey)."""

    numbers: np.ndarray  # (K,) int16
    shown: np.ndarray  # (K, 3) uint8
    emit: np.ndarray  # (K, 3) uint8


def _downgrade(rgb: tuple[int, int, int], system: ColorSystem) -> int | None:
    return Color.from_triplet(ColorTriplet(*rgb)).downgrade(system).number


_NUDGES = ((-1, 0, 1), (1, 0, -1), (0, -1, 1), (-1, 1, 0), (1, -1, 0), (0, 1, -1),
           (0, 0, 1), (0, 0, -1), (1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0))


def _representative(n: int, shown: tuple[int, int, int]) -> tuple[int, int, int] | None:
    """A truecolor Rich downgrades to xterm number ``n``, near ``shown`` (found by
    stepping away from it: a few dozen tries)."""
    system = ColorSystem.EIGHT_BIT
    if n >= 232:  # grey ramp: greys only (Rich's saturation test), nearest first
        for v in sorted(range(256), key=lambda v: abs(v - shown[0])):
            if _downgrade((v, v, v), system) == n:
                return (v, v, v)
        return None
    for d in range(1, 64):  # a cube colour Rich takes for grey: tint it until it is not
        for nudge in _NUDGES:
            c = tuple(min(255, max(0, x + d * k)) for x, k in zip(shown, nudge, strict=True))
            if _downgrade(c, system) == n:  # type: ignore[arg-type]
                return c  # type: ignore[return-value]
    return None


@lru_cache(4)
def palette(colour_system: str | None) -> Palette | None:
    """The :class:`Palette` a picture is dithered to for ``colour_system``, or None
    when cells can stay as they are (truecolor, or a system Rich does not downgrade to
    by palette). "256": the xterm colours 16–255 (0–15 are left out: each terminal
    theme paints them its own way). "standard" (16 colours): the ANSI colours as Rich
    assumes them; the terminal paints its own versions, but hues still average out."""
    from rich.color import EIGHT_BIT_PALETTE, STANDARD_PALETTE

    numbers: list[int] = []
    shown: list[tuple[int, int, int]] = []
    emit: list[tuple[int, int, int]] = []
    if colour_system == EIGHT_BIT:
        for n in range(16, 256):
            rgb = tuple(EIGHT_BIT_PALETTE[n])
            rep = rgb if _downgrade(rgb, ColorSystem.EIGHT_BIT) == n else _representative(n, rgb)
            if rep is not None and rgb not in shown:
                numbers.append(n)
                shown.append(rgb)
                emit.append(rep)
    elif colour_system == STANDARD:
        for n in range(16):
            rgb = tuple(STANDARD_PALETTE[n])
            if _downgrade(rgb, ColorSystem.STANDARD) == n and rgb not in shown:
                numbers.append(n)
                shown.append(rgb)
                emit.append(rgb)
    else:
        return None
    return Palette(
        np.asarray(numbers, dtype=np.int16),
        np.asarray(shown, dtype=np.uint8),
        np.asarray(emit, dtype=np.uint8),
    )


GREY_CHROMA = 12
"""Pixels whose channels differ by at most this much are mapped to greys only: a grey
digit or a white wall must not come out sprinkled with pink and green."""

DITHER_AMPLITUDE = {EIGHT_BIT: 24.0, STANDARD: 80.0}
"""Peak-to-peak lightness offset of the ordered dither per colour system: in 256 colours
about half a step of the xterm colour cube (enough to blend two neighbouring levels
into a gradient, too little to speckle a flat area); the 16 ANSI colours are ~85 apart."""

GREY_AMPLITUDE = {EIGHT_BIT: 7.0, STANDARD: 80.0}
"""The same for near-grey pixels: below the 8–10 steps of the xterm grey ramp (85 for
the four ANSI greys), so black and white stay flat."""

_BAYER4 = np.array([[0, 8, 2, 10], [12, 4, 14, 6], [3, 11, 1, 9], [15, 7, 13, 5]])
_WEIGHTS = np.array([2, 4, 3], dtype=np.int64)  # the eye is most sensitive to green
_LUT_BITS = 5  # nearest-colour tables over a 32×32×32 grid of RGB


@lru_cache(8)
def _nearest_table(colour_system: str, greys: bool) -> np.ndarray:
    """For every cell of a coarse RGB grid, the position in :func:`palette` of the
    shown colour nearest to it (weighted RGB distance; only neutral colours when
    ``greys``). Built once (~32k × 240 distances), then mapping is a lookup."""
    pal = palette(colour_system)
    assert pal is not None
    where = np.arange(len(pal.numbers))
    if greys:
        where = where[np.ptp(pal.shown.astype(np.int16), axis=1) == 0]
    colours = pal.shown[where].astype(np.float32)
    step = 1 << (8 - _LUT_BITS)
    axis = np.arange(0, 256, step, dtype=np.float32) + step // 2
    grid = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)
    weights = _WEIGHTS.astype(np.float32)
    # weighted |g - c|² = g·w·g - 2 g·w·c + c·w·c: one matrix product, not a 3-D array
    dist = (colours * colours * weights).sum(1)[None, :] - 2 * (grid * weights) @ colours.T
    table = where[np.argmin(dist, axis=1)].astype(np.int16)
    size = 1 << _LUT_BITS
    return table.reshape(size, size, size)


def to_palette(pixels: Image.Image, colour_system: str, *, dither: bool = True) -> np.ndarray:
    """Positions in :func:`palette` of ``colour_system`` (which must have one) for every
    pixel of ``pixels``: ordered (Bayer 4×4) dithering in lightness, then the nearest
    colour the terminal shows; ``dither=False`` for flat colours such as the map's.
    Near-grey pixels (:data:`GREY_CHROMA`) go to greys. Returns (H, W) ints.

    Ordered rather than error diffusion: at half-cell size every pixel is a large block,
    and Floyd–Steinberg over the sparse xterm palette sprinkles a face with red and
    olive dots; a fixed pattern of small lightness steps reads as a gradient."""
    source = np.asarray(pixels.convert("RGB"), dtype=np.float32)
    h, w = source.shape[:2]
    unit = np.zeros((h, w), dtype=np.float32)  # the dither pattern, in (-0.5, 0.5)
    if dither:
        threshold = _BAYER4[np.arange(h)[:, None] % 4, np.arange(w)[None, :] % 4]
        unit = ((threshold + 0.5) / 16 - 0.5).astype(np.float32)
    rgb = np.clip(source + (unit * DITHER_AMPLITUDE.get(colour_system, 0.0))[..., None], 0, 255)
    cell = rgb.astype(np.int64) >> (8 - _LUT_BITS)
    out = _nearest_table(colour_system, False)[cell[..., 0], cell[..., 1], cell[..., 2]]
    neutral = np.ptp(source, axis=2) <= GREY_CHROMA
    if neutral.any():
        # greys lie closer together (about 10 apart): a smaller pattern, so an exact grey
        # (black, white) stays exact instead of turning into a grid of dots
        grey = np.clip(source.mean(axis=2) + unit * GREY_AMPLITUDE.get(colour_system, 0.0), 0, 255)
        out = np.where(neutral, _grey_table(colour_system)[np.rint(grey).astype(np.intp)], out)
    return out.astype(np.intp)


@lru_cache(4)
def _grey_table(colour_system: str) -> np.ndarray:
    """Position in :func:`palette` of the neutral colour nearest each grey level 0–255."""
    pal = palette(colour_system)
    assert pal is not None
    where = np.flatnonzero(np.ptp(pal.shown.astype(np.int16), axis=1) == 0)
    levels = pal.shown[where, 0].astype(np.int16)
    return where[np.argmin(np.abs(np.arange(256)[:, None] - levels[None, :]), axis=1)]


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
    pal = palette(colour_system)
    if pal is not None:
        rgb = pal.emit[to_palette(pixels, colour_system, dither=dither)]  # type: ignore[arg-type]
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
    "Palette",
    "palette",
    "strips_from_pixels",
    "to_palette",
]
