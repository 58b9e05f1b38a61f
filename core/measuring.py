"""The one decode quality measures are defined on, shared by indexing and ``picksel check``.

Why a canonical decode: the measures must come from the decode indexing already does
(no second pass over the files), and ``picksel check`` on an album indexed elsewhere
(PhotoMapAI) must find the same values, or flags would depend on which command measured
an image. So both decode exactly as the builtin encoder does: JPEGs drafted to no less
than ``DRAFT_SIDE`` (DCT scaling, much cheaper than a full decode), everything fitted in
``DECODE_SIDE``. Every measure is taken at or below that scale (sharpness at 128 px,
the rest at ≤ 256 px), so the reduced decode is fair to them.

The exact-duplicate hash is the one thing a reduced decode cannot give: it is over every
pixel, so a PNG re-save of a JPEG's pixels matches it. An image the canonical decode did
not reduce (≤ 256 px) is hashed from it directly; a larger one is marked ``UNHASHED`` and
fully decoded only when it could be an exact duplicate at all — a near-duplicate pair of
the same pixel size (:func:`hash_candidates`), a handful of files in practice — and the
hash is then cached with the other measures.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from picksel.imageio import _flatten as flatten
from picksel.imageio import open_image, shrunk_copy
from picksel.quality import COL, WORK_SIDE, ImageMeasures, measure
from picksel.quality import UNHASHED as _UNHASHED

DECODE_SIDE = 256
"""The builtin encoder's input fits in 256×256 …"""
DRAFT_SIDE = 128
"""… and JPEGs may be drafted down to 128 px for it (its ``DRAFT_SIDE``)."""
UNHASHED = np.uint64(_UNHASHED)
"""Pixel hash not computed yet (real hashes have the top bit clear)."""
_STRIP = 4_000_000
"""Bytes of pixels hashed at a time (no full-size copy of a large image)."""
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_90,
}


def raw_pixel_hash(im: Image.Image) -> int:
    """64-bit BLAKE2b of the decoded pixels as the file holds them (mode, size, bytes;
    before orientation or conversion): a PNG re-save of a JPEG's pixels hashes the same."""
    w, h = im.size
    digest = hashlib.blake2b(digest_size=8)
    digest.update(f"{im.mode}:{w}x{h}".encode())
    rows = max(1, _STRIP // max(1, w * len(im.getbands())))
    for y in range(0, h, rows):
        digest.update((im if rows >= h else im.crop((0, y, w, min(h, y + rows)))).tobytes())
    return int.from_bytes(digest.digest(), "little") & 0x7FFF_FFFF_FFFF_FFFF


def measure_loaded(im: Image.Image, original_size: tuple[int, int]) -> ImageMeasures:
    """The measures of a decoded (possibly drafted) image, for ``open_image(inspect=)``:
    reduced to ``WORK_SIDE`` by pixel averaging in its own mode, then oriented and made
    RGB like ``open_image`` does; hashed when the decode holds every pixel."""
    exact = raw_pixel_hash(im) if im.size == original_size else int(UNHASHED)
    small = shrunk_copy(im, WORK_SIDE)
    method = _TRANSPOSE.get(im.getexif().get(0x0112, 1))
    if method is not None:
        small = small.transpose(method)
    return measure(flatten(small), original_size, exact_hash=exact)


def decode(path: Path) -> Image.Image:
    """The builtin encoder's decode, with the quality measures in ``info["inspected"]``
    (raises ``UnreadableImage``)."""
    return open_image(Path(path), max_side=DECODE_SIDE, draft_side=DRAFT_SIDE, inspect=measure_loaded)


def measure_path(path: Path) -> ImageMeasures:
    """Measures of one file, exactly as indexing computes them."""
    return decode(path).info["inspected"]


def full_pixel_hash(path: Path) -> int:
    """The exact-duplicate hash from a full decode (raises ``UnreadableImage``)."""
    return open_image(Path(path), inspect=lambda im, _size: raw_pixel_hash(im)).info["inspected"]


def effective_hashes(hashes: np.ndarray) -> np.ndarray:
    """Pixel hashes with each ``UNHASHED`` made unique (top bit + row number), so such a
    row is never an exact duplicate of anything."""
    h = np.asarray(hashes, np.uint64)
    unknown = h == UNHASHED
    if not unknown.any():
        return h
    return np.where(unknown, UNHASHED | np.arange(len(h), dtype=np.uint64), h)


def hash_candidates(values: np.ndarray, hashes: np.ndarray, near: np.ndarray) -> np.ndarray:
    """Rows whose full-decode hash is needed: unhashed members of a near-duplicate pair
    whose two images have the same pixel size (identical pixels imply both)."""
    if not len(near):
        return np.zeros(0, np.int64)
    w = values[:, COL["width"]]
    h = values[:, COL["height"]]
    a, b = near[:, 0], near[:, 1]
    same = ((w[a] == w[b]) & (h[a] == h[b])) | ((w[a] == h[b]) & (h[a] == w[b]))
    rows = np.unique(near[same].ravel())
    return rows[np.asarray(hashes, np.uint64)[rows] == UNHASHED]


def fill_hashes(
    rows: np.ndarray, album: Path, rels: list[str], hashes: np.ndarray,
    cancel: Callable[[], bool] | None = None,
) -> int:
    """Full-decode ``rows`` and store their hash in ``hashes`` (in place); a file that
    cannot be read now keeps ``UNHASHED``. Returns how many were decoded."""
    from picksel.errors import Cancelled
    from picksel.imageio import UnreadableImage

    done = 0
    for i in rows.tolist():
        if cancel is not None and cancel():
            raise Cancelled()
        try:
            hashes[i] = np.uint64(full_pixel_hash(Path(album) / rels[i]))
        except UnreadableImage:
            continue
        done += 1
    return done
