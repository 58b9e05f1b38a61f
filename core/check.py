"""``picksel check``: quality flags and duplicate groups of an album's indexed images.

Measures come from ``.picksel/quality.npz`` when a file is unchanged (size and mtime, like
the index); the others are decoded once and measured here, with progress and cancel, and
the cache is saved atomically. Flags and groups are then pure functions of the table
(``picksel.quality`` and ``picksel.duplicates``), so they follow threshold changes
without decoding again.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from picksel.duplicates import DuplicateGroup, exact_pairs, group, near_pairs
from picksel.encoders.pool import make_pool, terminate_pool, wait_result
from picksel.errors import CancelFn, Cancelled, ProgressFn
from picksel.imageio import UnreadableImage
from picksel.measuring import effective_hashes, fill_hashes, hash_candidates, measure_path
from picksel.quality import COL, FLAGS, ImageMeasures, Thresholds, flags_of
from picksel.qualitystore import QualityTable, load_quality, quality_path, save_quality


@dataclass
class CheckResult:
    paths: list[str]  # the measured images (unreadable ones are left out)
    table: QualityTable
    flags: dict[str, list[str]]  # only flagged images
    groups: list[DuplicateGroup]
    thresholds: Thresholds
    measured: int = 0  # images decoded by this run (0 when everything came from the cache)
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    cache_problem: str | None = None  # why the measures could not be cached, if they could not

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
    """Decode a file as indexing does (``picksel.measuring``) and measure it."""
    return measure_path(path)


def _measure_one(path: str) -> ImageMeasures | str:
    """For worker processes: the measures, or the reason the file cannot be read."""
    try:
        return measure_file(Path(path))
    except UnreadableImage as exc:
        return str(exc)
    except Exception as exc:  # noqa: BLE001 - one odd file must never stop a check
        return f"unreadable ({type(exc).__name__}: {exc})"


def _measure_chunk(paths: list[str]) -> list[ImageMeasures | str]:
    return [_measure_one(p) for p in paths]


PARALLEL_MIN = 64
"""Below this many files a worker pool costs more than it saves."""
_CHUNK = 16
"""Files per worker task: small enough to spread a small album over the workers."""
_BATCH = 256
"""Files between progress reports."""


def _measure_all(paths: list[str], progress: ProgressFn | None, cancel: CancelFn | None,
                 ) -> list[ImageMeasures | str]:
    """Measure files in order, in indexing's worker processes when there are many (the
    measures are numpy code holding the GIL: threads would not help). The pool is the
    one indexing uses (``picksel.encoders.pool``): workers ignore Ctrl-C and die with
    picksel, and an interrupt or cancel kills them instead of waiting for their task."""
    from picksel.encoders.builtin import _default_workers

    workers = _default_workers()
    pool = make_pool(workers, ["picksel.check"]) if workers > 1 and len(paths) >= PARALLEL_MIN else None
    out: list[ImageMeasures | str] = []
    try:
        for start in range(0, len(paths), _BATCH):
            if cancel is not None and cancel():
                raise Cancelled()
            batch = paths[start : start + _BATCH]
            if pool is not None:
                futures = [pool.submit(_measure_chunk, batch[i : i + _CHUNK])
                           for i in range(0, len(batch), _CHUNK)]
                for fut in futures:
                    out.extend(wait_result(fut, cancel))
            else:
                for p in batch:
                    if cancel is not None and cancel():
                        raise Cancelled()
                    out.append(_measure_one(p))
            if progress is not None:
                progress(len(out), len(paths), f"measured {len(out)}/{len(paths)}")
    except BaseException:  # cancel, Ctrl-C, SIGTERM, a broken pool: stop the workers now
        if pool is not None:
            terminate_pool(pool)
        raise
    if pool is not None:
        pool.shutdown(wait=True)
    return out


def _stat(path: str) -> tuple[int, float] | None:
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
    changed; with the number measured and the files that could not be read. A failure
    to save raises OSError (``check_album`` turns it into a warning)."""
    table, measured, unreadable, changed = _updated_table(album, rels, state_dir, progress, cancel)
    if changed:
        save_quality(state_dir, table)
    return table, measured, unreadable


def _updated_table(
    album: Path,
    rels: list[str],
    state_dir: Path,
    progress: ProgressFn | None,
    cancel: CancelFn | None,
) -> tuple[QualityTable, int, list[tuple[str, str]], bool]:
    """``update_table`` without the save: also whether the table differs from the cache."""
    old = load_quality(state_dir)
    old_rows = {p: i for i, p in enumerate(old.paths)}
    rows: list[tuple[str, int, float, ImageMeasures]] = []
    todo: list[tuple[str, int, float]] = []
    root = str(album)
    for rel in rels:
        st = _stat(os.path.join(root, rel))  # not Path: a re-check is mostly these stats
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
    changed = bool(todo) or len(table) != len(old) or table.paths != old.paths
    return table, len(todo) - len(unreadable), unreadable, changed


def record_measures(album: Path, state_dir: Path, paths: list[str], sizes: np.ndarray,
                    mtimes: np.ndarray, fresh: dict[str, ImageMeasures],
                    cancel: CancelFn | None = None) -> int:
    """Indexing's measures (``fresh``, by path) merged into the cached table for the
    index rows ``paths``: rows measured now replace cached ones, unchanged cached rows
    stay, rows of files no longer indexed go. Exact-duplicate candidates are hashed
    here too, so the next check decodes nothing. Returns the number of rows kept."""
    old = load_quality(state_dir)
    old_rows = {p: i for i, p in enumerate(old.paths)}
    rows: list[tuple[str, int, float, ImageMeasures]] = []
    for rel, size, mtime in zip(paths, sizes.tolist(), mtimes.tolist(), strict=True):
        m = fresh.get(rel)
        if m is None:
            i = old_rows.get(rel)
            if i is None or int(old.sizes[i]) != size or float(old.mtimes[i]) != mtime:
                continue
            m = old.row(i)
        rows.append((rel, size, mtime, m))
    table = QualityTable.from_rows(rows)
    if not fresh and table.paths == old.paths:
        return len(table)
    # The index is saved already: on cancel keep what was measured; check hashes the rest.
    with contextlib.suppress(Cancelled):
        complete_hashes(album, table, near_pairs(table.phash, table.thumbs), cancel)
    save_quality(state_dir, table)
    return len(table)


def complete_hashes(album: Path, table: QualityTable, near: np.ndarray,
                    cancel: CancelFn | None = None) -> int:
    """Fully decode the few images that could be exact duplicates but were measured on a
    reduced decode (``picksel.measuring``), storing their pixel hash in ``table``."""
    rows = hash_candidates(table.values, table.pixel_hash, near)
    if not len(rows):
        return 0
    return fill_hashes(rows, album, table.paths, table.pixel_hash, cancel)


def judge(table: QualityTable, thresholds: Thresholds, pinned: set[str],
          vectors: tuple[list[str], np.ndarray] | None = None,
          near: np.ndarray | None = None) -> tuple[dict[str, list[str]], list[DuplicateGroup]]:
    """Flags (flagged images only) and duplicate groups of a measured table; ``vectors``
    (an index's paths and CLIP vectors, see ``picksel.embeddingdups``) add the pairs
    whose cosine reaches ``thresholds.near_cosine``; ``near`` is the perceptual-hash
    pairs when the caller has them already."""
    per_row = flags_of(table.values, thresholds)
    flags = {p: f for p, f in zip(table.paths, per_row, strict=True) if f}
    n = len(table)
    if near is None:
        near = near_pairs(table.phash, table.thumbs)
    hashes = effective_hashes(table.pixel_hash)
    pairs = np.concatenate([exact_pairs(hashes), near,
                            _embedding_pairs(table, vectors, thresholds.near_cosine)])
    pixels = table.values[:, COL["width"]].astype(np.float64) * table.values[:, COL["height"]]
    groups = group(n, pairs, hashes, table.paths, pixels,
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
    """``vectors``: ``picksel.embeddingdups.semantic_vectors(index)``, None without CLIP.

    The measures are a cache: when they cannot be saved (a read-only ``.picksel``, a full
    disk) the result is still right, so it is returned with ``cache_problem`` saying why
    instead of raising."""
    table, measured, unreadable, changed = _updated_table(album, rels, state_dir, progress, cancel)
    near = near_pairs(table.phash, table.thumbs)
    if complete_hashes(album, table, near, cancel):
        changed = True
    problem = _save_or_say(state_dir, table) if changed else None
    flags, groups = judge(table, thresholds, pinned or set(), vectors, near=near)
    return CheckResult(table.paths, table, flags, groups, thresholds, measured, unreadable,
                       problem)


def _save_or_say(state_dir: Path, table: QualityTable) -> str | None:
    """Save the table; None, or one line saying why it could not be saved (the atomic
    write leaves no temp file behind and the old cache, if any, as it was)."""
    try:
        save_quality(state_dir, table)
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        return (f"quality measures not cached: cannot write {quality_path(state_dir)} "
                f"({reason}); the next check will measure again")
    return None
