"""Open album images defensively and cheaply.

Albums contain broken files (zero bytes, interrupted copies, files with the wrong
extension) and occasionally hostile ones (a tiny PNG whose header claims gigapixels).
Every failure becomes ``UnreadableImage`` with a short reason the index records and the
user sees; nothing else escapes. Decoding is the expensive part of indexing, so JPEGs
are decoded at reduced size via ``Image.draft`` when the caller only needs a small
image.
"""

from __future__ import annotations

import errno
import os
import re
import zlib
from pathlib import Path
from struct import error as struct_error

from PIL import Image, ImageOps, UnidentifiedImageError

from picksel.errors import PickselError

MAX_PIXELS = 178_956_970
"""Largest image we decode (Pillow's own error threshold, about 178 Mpx): anything
bigger is treated as a decompression bomb and checked from the header, before decoding."""


class UnreadableImage(PickselError):
    """The file could not be decoded; the message is the reason ("truncated file", ...)."""


def _reason(exc: BaseException) -> str:
    text = str(exc).lower()
    if isinstance(exc, Image.DecompressionBombError):
        return "decompression bomb"
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


def open_image(path: Path, *, max_side: int | None = None, draft_side: int | None = None) -> Image.Image:
    """Decode ``path`` to an RGB image with EXIF orientation applied.

    With ``max_side`` the result fits in ``max_side``×``max_side`` (JPEGs are decoded at
    a reduced 1/2–1/8 scale, which is much cheaper). ``draft_side`` (default
    ``max_side``) is the smallest size the JPEG scale may go down to: the encoder accepts
    a coarser decode than a preview would. Raises ``UnreadableImage``.
    """
    path = Path(path)
    try:
        if os.stat(path).st_size == 0:
            raise UnreadableImage("zero-byte file")
    except OSError as exc:
        raise UnreadableImage(_reason(exc)) from exc
    try:
        # Our own header check is the bomb guard (Pillow's DecompressionBombError is a
        # second line). No warnings.catch_warnings() here: it mutates process-global
        # state and open_image runs on several threads in the TUI.
        with Image.open(path) as im:
            w, h = im.size
            if w * h > MAX_PIXELS:
                raise UnreadableImage(f"decompression bomb ({w * h:,} pixels)")
            if w <= 0 or h <= 0:
                raise UnreadableImage("not an image")
            draft = draft_side or max_side
            if draft is not None and im.format == "JPEG":
                # draft() picks the smallest 1/2^k scale still >= the request.
                im.draft("RGB", (draft, draft))
            im.load()
            out = ImageOps.exif_transpose(im)
            out = _flatten(out)
            if max_side is not None and max(out.size) > max_side:
                out.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
            if out is im:
                out = out.copy()  # detach from the file handle before closing it
            # Encoders judge resolution from the file, not from the reduced decode.
            out.info["original_size"] = (w, h)
            return out
    except UnreadableImage:
        raise
    except Image.DecompressionBombError as exc:
        m = re.search(r"\((\d+) pixels\)", str(exc))
        detail = f" ({int(m.group(1)):,} pixels)" if m else ""
        raise UnreadableImage(f"decompression bomb{detail}") from exc
    except (OSError, ValueError, SyntaxError, EOFError, zlib.error, MemoryError,
            IndexError, TypeError, struct_error) as exc:
        raise UnreadableImage(_reason(exc)) from exc


def thumbnail(path: Path, size: int) -> Image.Image:
    """An RGB image fitting in ``size``×``size`` (for previews and the TUI list)."""
    return open_image(path, max_side=size)

