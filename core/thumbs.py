"""On-disk thumbnail cache for the TUI list and previews (no Textual here).

Decoding a 24-megapixel JPEG for a 4-cell swatch costs ~50 ms; a 64-pixel PNG from
the cache costs well under 1 ms, which is what keeps scrolling 100k rows smooth.
Thumbnails live at ``STATE_DIR/thumbs/<size>/<sha1>.png`` where the hash covers the
relative path, the file's mtime (as the index stores it) and the size, so an edited
image gets a new entry; every index update that changed something prunes the entries no
indexed image can ask for any more (:func:`prune_thumbnails`), so the cache never grows
beyond the album's current images. Unreadable images give a placeholder and
are not cached, so a repaired file shows up without any invalidation step.
Safe to call from worker threads: entries are written atomically.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
from PIL import Image

from picksel.errors import PickselError
from picksel.fsutil import atomic_write
from picksel.imageio import thumbnail

THUMBS_DIRNAME = "thumbs"
PLACEHOLDER_KEY = "picksel_placeholder"


def _mtime_token(mtime: float) -> str:
    """The float seconds ``scan`` puts in the index, so pruning can rebuild every key
    from the index alone, without a stat per image."""
    return repr(float(mtime))


def _digest(rel: str, token: str, size: int) -> str:
    return hashlib.sha1(f"{rel}\0{token}\0{int(size)}".encode(errors="surrogateescape")).hexdigest()


def thumbnail_path(album: Path, rel: str, state_dir: Path, size: int) -> Path:
    """Where the ``size`` thumbnail of ``album/rel`` is (or would be) cached; the name
    changes whenever the image's mtime does."""
    try:
        token = _mtime_token(os.stat(Path(album) / rel).st_mtime)
    except OSError:
        token = "missing"
    return Path(state_dir) / THUMBS_DIRNAME / str(int(size)) / f"{_digest(rel, token, size)}.png"


def prune_thumbnails(state_dir: Path, paths: list[str], mtimes: np.ndarray) -> int:
    """Delete cached thumbnails that no image of the index (``paths`` with their
    ``mtimes``) would look up: removed and edited images. Returns how many went.

    Only ``<40 hex digits>.png`` files in numeric size folders are touched; anything
    else there is left alone. Errors (read-only state dir) are ignored: it is a cache.
    """
    root = Path(state_dir) / THUMBS_DIRNAME
    try:
        sizes = [d for d in os.scandir(root) if d.is_dir(follow_symlinks=False) and d.name.isdigit()]
    except OSError:
        return 0
    tokens = [_mtime_token(m) for m in np.asarray(mtimes, dtype=np.float64).tolist()]
    removed = 0
    for folder in sizes:
        size = int(folder.name)
        keep = {_digest(rel, tok, size) for rel, tok in zip(paths, tokens, strict=True)}
        try:
            names = os.listdir(folder.path)
        except OSError:
            continue
        for name in names:
            stem, dot, ext = name.partition(".")
            if ext != "png" or len(stem) != 40 or stem in keep:
                continue
            try:
                int(stem, 16)
                os.unlink(os.path.join(folder.path, name))
                removed += 1
            except (ValueError, OSError):
                continue
    return removed


def placeholder(size: int, reason: str = "") -> Image.Image:
    """A dark tile with a red cross: what the list shows for an unreadable image.
    ``image.info[PLACEHOLDER_KEY]`` holds the reason (never empty)."""
    s = max(2, int(size))
    arr = np.full((s, s, 3), 48, dtype=np.uint8)
    idx = np.arange(s)
    arr[idx, idx] = (200, 60, 60)
    arr[idx, s - 1 - idx] = (200, 60, 60)
    img = Image.fromarray(arr, "RGB")
    img.info[PLACEHOLDER_KEY] = reason or "unreadable"
    return img


def is_placeholder(image: Image.Image) -> bool:
    return PLACEHOLDER_KEY in image.info


def load_thumbnail(album: Path, rel: str, state_dir: Path, size: int) -> Image.Image:
    """RGB thumbnail fitting ``size``×``size``: from the cache, else decoded and cached.

    Never raises for a bad image: an unreadable, vanished or bomb file gives
    :func:`placeholder`. A corrupt cache entry is rebuilt; a read-only state dir just
    means nothing is cached.
    """
    cached = thumbnail_path(album, rel, state_dir, size)
    if cached.is_file():
        try:
            with Image.open(cached) as im:
                im.load()
                return im.convert("RGB")
        except (OSError, ValueError, SyntaxError, EOFError):
            pass  # corrupt entry: decode again and overwrite it
    try:
        img = thumbnail(Path(album) / rel, size)
    except PickselError as exc:
        return placeholder(size, str(exc))
    except (OSError, ValueError, MemoryError) as exc:  # pragma: no cover - imageio maps these
        return placeholder(size, type(exc).__name__)
    try:
        with atomic_write(cached, "wb") as fh:
            img.save(fh, format="PNG", compress_level=1)
    except OSError:
        pass  # read-only or full state dir: serve uncached
    return img
