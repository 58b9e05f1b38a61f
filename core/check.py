"""``picksel check``: quality flags and duplicate groups of an album's indexed images.

Measures come from ``.picksel/quality.npz`` when a file is unchanged (size and mtime, like
the index); the others are decoded once and measured here, with progress and cancel, and
the cache is saved atomically. Flags and groups are then pure functions of the table
(``picksel.quality`` and ``picksel.duplicates``), so they follow threshold changes
without decoding again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from picksel.duplicates import DuplicateGroup, exact_pairs, group, near_pairs
from picksel.errors import CancelFn, Cancelled, ProgressFn
from picksel.imageio import UnreadableImage, open_image
from picksel.quality import COL, FLAGS, ImageMeasures, Thresholds, flags_of, measure
from picksel.qualitystore import QualityTable, load_quality, save_quality


@dataclass
class CheckResult:
    paths: list[str]  # the measured images (unreadable ones are left out)
    table: QualityTable
    flags: dict[str, list[str]]  # only flagged images
    groups: list[DuplicateGroup]
    thresholds: Thresholds
    measured: int = 0  # images decoded by this run (0 when everything came from the cache)
    unreadable: list[tuple[str, str]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(FLAGS, 0)
        for names in self.flags.values():
            for f in names:
                out[f] += 1
        return out

    def flagged(self, wanted: set[str] | None = None) -> list[str]:
        """Paths with any flag (or any of ``wanted``)."""
        return sorted(p for p, fl in self.flags.items() if wanted is None or wanted & set(fl))

    def copies(self) -> list[str]:
        return sorted(self.paths[i] for g in self.groups for i in g.copies)

    def group_of(self) -> dict[str, tuple[int, str]]:
        """path → (group number from 1, "keep"/"copy")."""
        out: dict[str, tuple[int, str]] = {}
        for n, g in enumerate(self.groups, 1):
            out[self.paths[g.keep]] = (n, "keep")
            for i in g.copies:
                out[self.paths[i]] = (n, "copy")
        return out


def measure_file(path: Path) -> ImageMeasures:
    """Decode a file once at full size (the exact hash needs every pixel) and measure it."""
    img = open_image(path)
    return measure(img, img.info.get("original_size"))


def _measure_one(path: str) -> ImageMeasures | str:
    """For worker processes: the measures, or the reason the file cannot be read."""
    try:
        return measure_file(Path(path))
    except UnreadableImage as exc:
        return str(exc)
    except Exception as exc:  # noqa: BLE001 - one odd file must never stop a check
        return f"unreadable ({type(exc).__name__}: {exc})"


PARALLEL_MIN = 256
"""Below this many files a worker pool costs more than it saves."""
_CHUNK = 64


def _measure_all(paths: list[str], progress: ProgressFn | None, cancel: CancelFn | None,
                 ) -> list[ImageMeasures | str]:
    """Measure files in order, on every usable core when there are many (the measures
    are numpy code holding the GIL: threads would not help). Progress and cancel are
    handled between chunks; the pool is shut down whatever happens."""
    workers = min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1, 8)
    pool = None
    if workers > 1 and len(paths) >= PARALLEL_MIN:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        try:
            ctx = multiprocessing.get_context("forkserver")
            pool = ProcessPoolExecutor(workers, mp_context=ctx)
        except (OSError, ValueError, NotImplementedError):  # pragma: no cover - sandboxed hosts
            pool = None
    out: list[ImageMeasures | str] = []
    try:
        for start in range(0, len(paths), _CHUNK):
            if cancel is not None and cancel():
                raise Cancelled()
            chunk = paths[start : start + _CHUNK]
            if pool is not None:
                out.extend(pool.map(_measure_one, chunk, chunksize=8))
            else:
                out.extend(_measure_one(p) for p in chunk)
            if progress is not None:
                progress(len(out), len(paths), f"measured {len(out)}/{len(paths)}")
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    return out


def _stat(path: Path) -> tuple[int, float] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime


def update_table(
    album: Path,
    rels: list[str],
    state_dir: Path,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
) -> tuple[QualityTable, int, list[tuple[str, str]]]:
    """The table for ``rels`` (cached rows reused, the rest measured), saved when it
    changed; with the number measured and the files that could not be read."""
    old = load_quality(state_dir)
    old_rows = {p: i for i, p in enumerate(old.paths)}
    rows: list[tuple[str, int, float, ImageMeasures]] = []
    todo: list[tuple[str, int, float]] = []
    for rel in rels:
        st = _stat(album / rel)
        if st is None:
            continue
        i = old_rows.get(rel)
        if i is not None and int(old.sizes[i]) == st[0] and float(old.mtimes[i]) == st[1]:
            rows.append((rel, st[0], st[1], old.row(i)))
        else:
            todo.append((rel, *st))
    unreadable: list[tuple[str, str]] = []
    if progress is not None and todo:
        progress(0, len(todo), f"measuring {len(todo)} images")
    measured = _measure_all([str(album / rel) for rel, _, _ in todo], progress, cancel)
    for (rel, size, mtime), m in zip(todo, measured, strict=True):
        if isinstance(m, str):
            unreadable.append((rel, m))
        else:
            rows.append((rel, size, mtime, m))
    rows.sort(key=lambda r: r[0])
    table = QualityTable.from_rows(rows)
    if todo or len(table) != len(old) or table.paths != old.paths:
        save_quality(state_dir, table)
    return table, len(todo) - len(unreadable), unreadable


def judge(table: QualityTable, thresholds: Thresholds, pinned: set[str],
          vectors: tuple[list[str], np.ndarray] | None = None) -> tuple[
    dict[str, list[str]], list[DuplicateGroup]
]:
    """Flags (flagged images only) and duplicate groups of a measured table; ``vectors``
    (an index's paths and CLIP vectors, see ``picksel.embeddingdups``) add the pairs
    whose cosine reaches ``thresholds.near_cosine``."""
    per_row = flags_of(table.values, thresholds)
    flags = {p: f for p, f in zip(table.paths, per_row, strict=True) if f}
    n = len(table)
    pairs = np.concatenate([exact_pairs(table.pixel_hash), near_pairs(table.phash, table.thumbs),
                            _embedding_pairs(table, vectors, thresholds.near_cosine)])
    pixels = table.values[:, COL["width"]].astype(np.float64) * table.values[:, COL["height"]]
    groups = group(n, pairs, table.pixel_hash, table.paths, pixels,
                   table.values[:, COL["sharpness"]], pinned)
    return flags, groups


def _embedding_pairs(table: QualityTable, vectors: tuple[list[str], np.ndarray] | None,
                     threshold: float) -> np.ndarray:
    if vectors is None:
        return np.zeros((0, 2), np.int64)
    from picksel.embeddingdups import embedding_pairs

    return embedding_pairs(table.paths, vectors[0], vectors[1], threshold)


def check_album(
    album: Path,
    rels: list[str],
    state_dir: Path,
    thresholds: Thresholds,
    pinned: set[str] | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
    vectors: tuple[list[str], np.ndarray] | None = None,
) -> CheckResult:
    """``vectors``: ``picksel.embeddingdups.semantic_vectors(index)``, None without CLIP."""
    table, measured, unreadable = update_table(album, rels, state_dir, progress, cancel)
    flags, groups = judge(table, thresholds, pinned or set(), vectors)
    return CheckResult(table.paths, table, flags, groups, thresholds, measured, unreadable)
