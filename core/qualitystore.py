"""``ALBUM/.picksel/quality.npz``: the quality measures and hashes of each image, kept
like the index (one row per path with the file's size and mtime), so re-checking an
unchanged album decodes nothing.

Plain arrays only (the file is never unpickled), written atomically, validated on load;
a damaged or foreign file is simply recomputed (it is a cache: nothing is lost).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from picksel.fsutil import atomic_write
from picksel.npzio import NpzError, read_npz
from picksel.quality import MEASURES, THUMB_SIDE, ImageMeasures

QUALITY_FILENAME = "quality.npz"
QUALITY_VERSION = 3
"""3: measured on the canonical decode (picksel.measuring); pixel hash may be UNHASHED."""
_KEYS = ("version", "measures_names", "paths", "mtimes", "sizes", "values", "pixel_hash",
         "phash", "thumbs")


@dataclass
class QualityTable:
    """Rows in ``paths`` order (album-relative POSIX paths)."""

    paths: list[str]
    mtimes: np.ndarray  # float64
    sizes: np.ndarray  # int64
    values: np.ndarray  # float32 N × len(MEASURES)
    pixel_hash: np.ndarray  # uint64
    phash: np.ndarray  # uint64 N × 2 (whole image, centre)
    thumbs: np.ndarray  # uint8 N × 2 × THUMB_SIDE × THUMB_SIDE

    def __len__(self) -> int:
        return len(self.paths)

    @classmethod
    def empty(cls) -> QualityTable:
        return cls([], np.zeros(0), np.zeros(0, np.int64), np.zeros((0, len(MEASURES)), np.float32),
                   np.zeros(0, np.uint64), np.zeros((0, 2), np.uint64),
                   np.zeros((0, 2, THUMB_SIDE, THUMB_SIDE), np.uint8))

    @classmethod
    def from_rows(cls, rows: list[tuple[str, int, float, ImageMeasures]]) -> QualityTable:
        if not rows:
            return cls.empty()
        return cls(
            paths=[r[0] for r in rows],
            sizes=np.array([r[1] for r in rows], np.int64),
            mtimes=np.array([r[2] for r in rows], np.float64),
            values=np.stack([r[3].values for r in rows]).astype(np.float32),
            pixel_hash=np.array([r[3].pixel_hash for r in rows], np.uint64),
            phash=np.stack([r[3].phash for r in rows]).astype(np.uint64),
            thumbs=np.stack([r[3].thumb for r in rows]).astype(np.uint8),
        )

    def row(self, i: int) -> ImageMeasures:
        return ImageMeasures(self.values[i], int(self.pixel_hash[i]), self.phash[i], self.thumbs[i])


def quality_path(state_dir: Path) -> Path:
    return Path(state_dir) / QUALITY_FILENAME


def load_quality(state_dir: Path) -> QualityTable:
    """The cached table, or an empty one when there is none or it cannot be trusted."""
    path = quality_path(state_dir)
    try:
        a = read_npz(path, _KEYS)
    except (OSError, NpzError):
        return QualityTable.empty()
    try:
        if any(k not in a for k in _KEYS) or a["version"].shape != () or int(a["version"]) != QUALITY_VERSION:
            return QualityTable.empty()
        if a["measures_names"].tolist() != list(MEASURES):
            return QualityTable.empty()
        paths, n = a["paths"], a["paths"].shape[0] if a["paths"].ndim == 1 else -1
        ok = (
            n >= 0
            and (paths.dtype.kind == "U" or n == 0)
            and a["mtimes"].dtype == np.float64 and a["mtimes"].shape == (n,)
            and a["sizes"].dtype == np.int64 and a["sizes"].shape == (n,)
            and a["values"].dtype == np.float32 and a["values"].shape == (n, len(MEASURES))
            and a["pixel_hash"].dtype == np.uint64 and a["pixel_hash"].shape == (n,)
            and a["phash"].dtype == np.uint64 and a["phash"].shape == (n, 2)
            and a["thumbs"].dtype == np.uint8 and a["thumbs"].shape == (n, 2, THUMB_SIDE, THUMB_SIDE)
        )
    except (ValueError, TypeError):
        return QualityTable.empty()
    if not ok:
        return QualityTable.empty()
    return QualityTable([str(p) for p in paths.tolist()] if n else [], a["mtimes"], a["sizes"],
                        a["values"], a["pixel_hash"], a["phash"], a["thumbs"])


def save_quality(state_dir: Path, table: QualityTable) -> Path:
    path = quality_path(state_dir)
    width = max((len(p) for p in table.paths), default=1)
    arrays = {
        "version": np.array(QUALITY_VERSION, np.int64),
        "measures_names": np.array(list(MEASURES), dtype=f"U{max(len(m) for m in MEASURES)}"),
        "paths": np.array(table.paths, dtype=f"U{width}"),
        "mtimes": np.asarray(table.mtimes, np.float64),
        "sizes": np.asarray(table.sizes, np.int64),
        "values": np.asarray(table.values, np.float32),
        "pixel_hash": np.asarray(table.pixel_hash, np.uint64),
        "phash": np.asarray(table.phash, np.uint64),
        "thumbs": np.asarray(table.thumbs, np.uint8),
    }
    with atomic_write(path, "wb") as fh:
        np.savez(fh, **arrays)
    return path
