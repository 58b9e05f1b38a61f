"""Open album images defensively and cheaply.

Albums contain broken files (zero bytes, interrupted copies, files with the wrong
extension) and occasionally hostile ones (a tiny PNG whose header claims gigapixels).
Every failure becomes ``UnreadableImage`` with a short reason the index records and the
user sees; nothing else escapes. Decoding is the expensive part of indexing, so JPEGs
are decoded at reduced size via ``Image.draft`` when the caller only needs a small
image.

Memory is bounded by pixels, not by file size: a 347 KB 16-bit PNG of 13370×13370 used
3 GB in one worker (24 GB with 8). Pillow holds any decoded pixel in at most 4 bytes,
whatever the file's bit depth, so capping the pixels actually decoded
(``MAX_DECODE_PIXELS``, checked from the header before decoding) caps one decode near
400 MB; the image is then shrunk in its own mode before any conversion, so converting
16-bit or transparent images costs no full-size copies.
"""

from __future__ import annotations

import errno
import os
import re
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path
from struct import error as struct_error

from PIL import Image, ImageOps, UnidentifiedImageError

from picksel.errors import PickselError

MAX_DECODE_PIXELS = 100_000_000
"""Most pixels decoded for one image (100 Mpx: a 100-Mpx medium-format photo still opens,
at ≤ 400 MB). Larger images are refused with a reason, except JPEGs whose decoder can
scale them down while decoding (``Image.draft``, to 1/8) below this budget."""

# Our header check replaces Pillow's bomb warning, which would otherwise be printed on
# the terminal (breaking the CLI's one-line errors and the TUI's screen, also from
# worker processes). Pillow's other warnings (odd EXIF, palette transparency) are
# about files we already handle. A filter installed once at import, not
# warnings.catch_warnings(), which mutates process-global state per call and is not
# thread-safe (open_image runs on several threads in the TUI).
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL(\.|$)")

_STRIP_PIXELS = 4_000_000
"""Pixels per strip when reducing a large transparent image (16 MB at 4 bytes each)."""

_SHRINK_FIRST = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I", "F", "L", "LA", "La",
                           "RGBA", "RGBa", "RGBX", "RGB", "CMYK", "YCbCr", "LAB", "HSV"})
"""Modes Pillow resamples well as they are: shrunk before conversion to RGB (palette and
1-bit images are converted first, as resizing them would fall back to nearest pixel)."""


def _reduce_in_strips(im: Image.Image, factor: int) -> Image.Image:
    """``im.reduce(factor)`` a strip of rows at a time: Pillow reduces (and resizes)
    RGBA/LA images through a full-size premultiplied copy, which would double the
    memory of a large transparent image. Strips a multiple of ``factor`` high give
    exactly the whole-image result."""
    w, h = im.size
    out = Image.new(im.mode, (-(-w // factor), -(-h // factor)))
    step = factor * max(1, _STRIP_PIXELS // (w * factor))
    for y in range(0, h, step):
        out.paste(im.crop((0, y, w, min(h, y + step))).reduce(factor), (0, y // factor))
    return out


def shrunk_copy(im: Image.Image, side: int) -> Image.Image:
    """A copy of ``im`` fitted in side×side by pixel averaging (BOX), in its own mode,
    with no full-size temporary; ``im`` is left as it is."""
    w, h = im.size
    scale = min(1.0, side / max(w, h))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    if size == im.size:
        return im.copy()
    if im.mode in ("P", "1"):
        return im.convert("RGBA" if "transparency" in im.info else "RGB").resize(size, Image.Resampling.BOX)
    if im.mode in ("RGBA", "LA"):
        factor = max(w, h) // (side * 2)
        if factor >= 2:
            im = _reduce_in_strips(im, factor)
    resample = Image.Resampling.BILINEAR if im.mode.startswith("I;16") else Image.Resampling.BOX
    return im.resize(size, resample)


def _shrink(im: Image.Image, side: int) -> Image.Image:
    """``im`` fitted in side×side in its own mode, with no full-size temporary."""
    if im.mode.startswith("I;16"):
        # reduce() cannot take 16-bit images; their bilinear resize covers every pixel.
        im.thumbnail((side, side), Image.Resampling.BILINEAR, reducing_gap=None)
        return im
    if im.mode in ("RGBA", "LA"):
        factor = max(im.size) // (side * 2)
        if factor >= 2:
            im = _reduce_in_strips(im, factor)
    im.thumbnail((side, side), Image.Resampling.BILINEAR)
    return im


def _mpx(pixels: int) -> str:
    text = f"{pixels / 1e6:.0f}"
    return f"{pixels / 1e6:.1f}" if text == f"{MAX_DECODE_PIXELS / 1e6:.0f}" else text


def too_large(pixels: int, size: tuple[int, int] | None = None) -> str:
    """'too large to decode safely: 13370×13370 (179 Mpx) > 100 Mpx'"""
    dims = f"{size[0]}×{size[1]} ({_mpx(pixels)} Mpx)" if size else f"{_mpx(pixels)} Mpx"
    return f"too large to decode safely: {dims} > {MAX_DECODE_PIXELS / 1e6:.0f} Mpx"


class UnreadableImage(PickselError):
    """The file could not be decoded; the message is the reason ("truncated file", ...)."""


def _reason(exc: BaseException) -> str:
    text = str(exc).lower()
    if isinstance(exc, Image.DecompressionBombError):
        m = re.search(r"\((\d+) pixels\)", str(exc))
        return too_large(int(m.group(1)) if m else MAX_DECODE_PIXELS + 1)
    if isinstance(exc, UnidentifiedImageError):
        return "not an image"
    if isinstance(exc, FileNotFoundError):
        return "file vanished"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if "truncated" in text or "unexpected end" in text or isinstance(exc, EOFError):
        return "truncated file"
    if isinstance(exc, zlib.error) or "broken" in text or "corrupt" in text or "crc" in text:
        return "corrupt data"
    if isinstance(exc, OSError) and exc.errno == errno.EIO:
        return "i/o error"
    if isinstance(exc, MemoryError):
        return "out of memory"
    return "unreadable" + (f" ({exc})" if str(exc) else f" ({type(exc).__name__})")


def _flatten(im: Image.Image) -> Image.Image:
    """RGB, with transparency composited on white (a transparent PNG otherwise turns
    black in RGB and looks like a garbage image to the encoder)."""
    if im.mode == "RGB":
        return im
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = im.convert("RGBA")
        bg = Image.new("RGB", rgba.size, (255, 255, 255))
        bg.paste(rgba, mask=rgba.getchannel("A"))
        return bg
    if im.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        # High bit-depth greyscale: scale to 8 bits instead of clipping to white.
        import numpy as np

        arr = np.asarray(im, dtype=np.float32)
        lo, hi = float(arr.min()), float(arr.max())
        scaled = (arr - lo) * (255.0 / (hi - lo)) if hi > lo else arr * 0
        return Image.fromarray(scaled.astype("uint8")).convert("RGB")
    return im.convert("RGB")


def open_image(path: Path, *, max_side: int | None = None, draft_side: int | None = None,
               inspect: Callable[[Image.Image, tuple[int, int]], object] | None = None) -> Image.Image:
    """Decode ``path`` to an RGB image with EXIF orientation applied.

    With ``max_side`` the result fits in ``max_side``×``max_side`` (JPEGs are decoded at
    a reduced 1/2–1/8 scale, which is much cheaper). ``draft_side`` (default
    ``max_side``) is the smallest size the JPEG scale may go down to: the encoder accepts
    a coarser decode than a preview would. ``inspect`` is called with the decoded image
    before it is shrunk or converted, and the file's pixel size (it must not modify the
    image; its result is in
    ``info["inspected"]``): quality measures share the decode. Raises ``UnreadableImage``.
    """
    path = Path(path)
    try:
        if os.stat(path).st_size == 0:
            raise UnreadableImage("zero-byte file")
    except OSError as exc:
        raise UnreadableImage(_reason(exc)) from exc
    try:
        with Image.open(path) as im:
            w, h = im.size
            if w <= 0 or h <= 0:
                raise UnreadableImage("not an image")
            draft = draft_side or max_side
            if draft is not None and im.format == "JPEG":
                # draft() picks the smallest 1/2^k scale still >= the request.
                im.draft("RGB", (draft, draft))
            dw, dh = im.size  # what will be decoded: reduced by draft() for JPEGs
            if dw * dh > MAX_DECODE_PIXELS:
                raise UnreadableImage(too_large(w * h, (w, h)))
            im.load()
            inspected = inspect(im, (w, h)) if inspect is not None else None
            out = im
            if max_side is not None and max(out.size) > max_side and out.mode in _SHRINK_FIRST:
                out = _shrink(out, max_side)
            out = ImageOps.exif_transpose(out)
            out = _flatten(out)
            if max_side is not None and max(out.size) > max_side:
                out.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
            if out is im:
                out = out.copy()  # detach from the file handle before closing it
            # Encoders judge resolution from the file, not from the reduced decode.
            out.info["original_size"] = (w, h)
            if inspect is not None:
                out.info["inspected"] = inspected
            return out
    except UnreadableImage:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow's own limit (it refuses above ~179 Mpx at open, before our check; the
        # warning is only raised under `python -W error`).
        raise UnreadableImage(_reason(exc) if isinstance(exc, Image.DecompressionBombError)
                              else too_large(MAX_DECODE_PIXELS + 1)) from exc
    except (OSError, ValueError, SyntaxError, EOFError, zlib.error, MemoryError,
            IndexError, TypeError, struct_error) as exc:
        raise UnreadableImage(_reason(exc)) from exc


def thumbnail(path: Path, size: int) -> Image.Image:
    """An RGB image fitting in ``size``×``size`` (for previews and the TUI list)."""
    return open_image(path, max_side=size)

