"""The album index: one embedding per image, kept in ``ALBUM/.picksel/index.npz``.

Why this shape: selection only needs an N×D matrix, and re-indexing must be cheap, so
each row carries the file's size and mtime — an unchanged album re-indexes by ``stat``
alone. The file holds plain arrays only (no pickles: an index may come from someone
else's album), is written atomically, and is validated on load so a damaged file gives a
one-line explanation instead of a traceback. Files that failed to decode are remembered
with their size/mtime and only retried when they change.
"""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from picksel.album import state_dir as album_state_dir
from picksel.encoders import canonical_spec, close_encoder, encode_paths, get_encoder
from picksel.errors import (
    CancelFn,
    Cancelled,
    IndexCorrupt,
    IndexMissing,
    PickselError,
    ProgressFn,
)
from picksel.fsutil import atomic_write
from picksel.npzio import read_npz_array
from picksel.scan import scan_album, unreadable_folders_message
from picksel.thumbs import prune_thumbnails

INDEX_FILENAME = "index.npz"
INDEX_VERSION = 1
BATCH_SIZE = 128
"""Files per encode batch: progress is reported and cancel checked between batches."""

_REQUIRED = ("embeddings", "paths", "mtimes", "sizes", "encoder", "version", "source")


@dataclass
class AlbumIndex:
    """Rows of ``embeddings`` correspond to ``paths`` (sorted relative POSIX paths)."""

    root: Path
    paths: list[str]
    embeddings: np.ndarray
    mtimes: np.ndarray
    sizes: np.ndarray
    encoder: str
    source: str = "picksel"
    failures: list[tuple[str, str]] = field(default_factory=list)
    failure_stats: dict[str, tuple[int, float]] = field(default_factory=dict)
    """size and mtime of each failed file, so an unchanged broken file is not retried."""
    source_stamp: float = 0.0
    """mtime of the PhotoMapAI embeddings.npz this index was imported from (else 0)."""
    _fp: str | None = field(default=None, init=False, repr=False, compare=False)
    _rows: dict[str, int] | None = field(default=None, init=False, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def dim(self) -> int:
        return int(self.embeddings.shape[1]) if self.embeddings.ndim == 2 else 0

    def fingerprint(self) -> str:
        """Identifies this exact set of rows: cached maps and saved selections compare it.

        Hashes paths, sizes, mtimes, encoder, shape and per-row sums of the matrix (one
        cheap pass instead of hashing 300 MB), so any changed row changes it. Treat an
        index as immutable: the value is computed once."""
        if self._fp is None:
            h = hashlib.sha1()
            h.update(f"{INDEX_VERSION}|{self.encoder}|{self.source}|{self.embeddings.shape}".encode())
            h.update("\0".join(self.paths).encode("utf-8", "surrogatepass"))
            h.update(np.ascontiguousarray(self.sizes, dtype=np.int64).tobytes())
            h.update(np.ascontiguousarray(self.mtimes, dtype=np.float64).tobytes())
            if self.embeddings.size:
                h.update(self.embeddings.sum(axis=1, dtype=np.float64).tobytes())
                h.update(np.ascontiguousarray(self.embeddings[:, :4]).tobytes())
            self._fp = h.hexdigest()[:16]
        return self._fp

    def row_of(self) -> dict[str, int]:
        """rel path → row number."""
        if self._rows is None:
            self._rows = {p: i for i, p in enumerate(self.paths)}
        return self._rows


@dataclass
class IndexReport:
    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    source: str = "picksel"
    messages: list[str] = field(default_factory=list)


def index_path(album: Path, state_dir: Path | None = None) -> Path:
    return album_state_dir(Path(album), state_dir) / INDEX_FILENAME


# --------------------------------------------------------------------------- load/save


def _corrupt(path: Path, album: Path, why: str) -> IndexCorrupt:
    return IndexCorrupt(
        f"index file {path} is corrupt ({why}); run `picksel index {album} --full`"
    )


def _unicode_1d(arr: np.ndarray) -> bool:
    return arr.ndim == 1 and (arr.dtype.kind == "U" or (arr.size == 0 and arr.dtype.kind == "f"))


def load_index(album: Path, state_dir: Path | None = None) -> AlbumIndex:
    """Read and validate the index. IndexMissing when there is none, IndexCorrupt (with
    the command that fixes it) when it cannot be trusted."""
    album = Path(album)
    path = index_path(album, state_dir)
    if not path.is_file():
        raise IndexMissing(f"{album} has no index yet; run `picksel index {album}`")
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in _REQUIRED if k not in npz.files]
            if missing:
                raise _corrupt(path, album, "missing " + ", ".join(missing))
            paths = npz["paths"]
            mtimes = npz["mtimes"]
            sizes = npz["sizes"]
            encoder = npz["encoder"]
            version = npz["version"]
            source = npz["source"]
            failed = npz["failed_paths"] if "failed_paths" in npz.files else np.array([], "U1")
            reasons = npz["failed_reasons"] if "failed_reasons" in npz.files else np.array([], "U1")
            f_sizes = npz["failed_sizes"] if "failed_sizes" in npz.files else np.zeros(len(failed), np.int64)
            f_mtimes = (
                npz["failed_mtimes"] if "failed_mtimes" in npz.files else np.zeros(len(failed), np.float64)
            )
            stamp = npz["source_stamp"] if "source_stamp" in npz.files else np.array(0.0)
        emb = read_npz_array(path, "embeddings")
    except IndexCorrupt:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        # ValueError also covers pickled object arrays refused by allow_pickle=False.
        raise _corrupt(path, album, f"unreadable: {exc}") from exc

    if version.shape != () or version.dtype.kind not in "iu":
        raise _corrupt(path, album, "bad version field")
    if int(version) != INDEX_VERSION:
        raise _corrupt(path, album, f"version {int(version)}, expected {INDEX_VERSION}")
    for name, arr in (("encoder", encoder), ("source", source)):
        if arr.shape != () or arr.dtype.kind != "U":
            raise _corrupt(path, album, f"{name} is not a string")
    if emb.dtype != np.float32 or emb.ndim != 2:
        raise _corrupt(path, album, f"embeddings are {emb.dtype} with shape {emb.shape}, expected float32 N×D")
    n = emb.shape[0]
    if not _unicode_1d(paths) or paths.shape[0] != n:
        raise _corrupt(path, album, f"paths are {paths.dtype}{paths.shape}, expected {n} strings")
    if mtimes.dtype != np.float64 or mtimes.shape != (n,):
        raise _corrupt(path, album, f"mtimes are {mtimes.dtype}{mtimes.shape}, expected float64 ({n},)")
    if sizes.dtype != np.int64 or sizes.shape != (n,):
        raise _corrupt(path, album, f"sizes are {sizes.dtype}{sizes.shape}, expected int64 ({n},)")
    nf = failed.shape[0] if failed.ndim == 1 else -1
    if (
        nf < 0
        or not _unicode_1d(failed)
        or not _unicode_1d(reasons)
        or reasons.shape != (nf,)
        or f_sizes.shape != (nf,)
        or f_mtimes.shape != (nf,)
    ):
        raise _corrupt(path, album, "failure lists do not line up")
    if n and not np.isfinite(np.einsum("ij,ij->i", emb, emb)).all():  # no N×D temporary
        raise _corrupt(path, album, "embeddings contain NaN or infinity")
    path_list = paths.tolist() if n else []
    if path_list != sorted(path_list) or len(set(path_list)) != n:
        raise _corrupt(path, album, "paths are not sorted and unique")
    failed_list = failed.tolist() if nf else []
    return AlbumIndex(
        root=album,
        paths=path_list,
        embeddings=emb,
        mtimes=mtimes,
        sizes=sizes,
        encoder=str(encoder),
        source=str(source),
        failures=list(zip(failed_list, reasons.tolist() if nf else [], strict=True)),
        failure_stats={
            p: (int(s), float(m)) for p, s, m in zip(failed_list, f_sizes.tolist(), f_mtimes.tolist(), strict=True)
        },
        source_stamp=float(stamp) if stamp.shape == () and stamp.dtype.kind == "f" else 0.0,
    )


def _str_array(items: list[str]) -> np.ndarray:
    # An explicit unicode dtype even when empty: never an object array.
    return np.array(items, dtype=f"U{max((len(s) for s in items), default=1)}")


def save_index(index: AlbumIndex, state_dir: Path | None = None) -> Path:
    """Write the index atomically (temp file + rename): a crash keeps the old one."""
    path = index_path(index.root, state_dir)
    failed = [p for p, _ in index.failures]
    arrays = {
        "embeddings": np.ascontiguousarray(index.embeddings, dtype=np.float32),
        "paths": _str_array(index.paths),
        "mtimes": np.asarray(index.mtimes, dtype=np.float64),
        "sizes": np.asarray(index.sizes, dtype=np.int64),
        "encoder": np.array(index.encoder, dtype=f"U{max(len(index.encoder), 1)}"),
        "version": np.array(INDEX_VERSION, dtype=np.int64),
        "source": np.array(index.source, dtype=f"U{max(len(index.source), 1)}"),
        "failed_paths": _str_array(failed),
        "failed_reasons": _str_array([r for _, r in index.failures]),
        "failed_sizes": np.array([index.failure_stats.get(p, (0, 0.0))[0] for p in failed], np.int64),
        "failed_mtimes": np.array([index.failure_stats.get(p, (0, 0.0))[1] for p in failed], np.float64),
        "source_stamp": np.array(index.source_stamp, dtype=np.float64),
    }
    with atomic_write(path, "wb") as fh:
        np.savez(fh, **arrays)
    return path


# --------------------------------------------------------------------------- build


def failure_message(failures: list[tuple[str, str]], limit: int = 5) -> str:
    """'3 files could not be read: a.jpg (truncated file), …'"""
    n = len(failures)
    shown = ", ".join(f"{p} ({r})" for p, r in failures[:limit])
    more = f", and {n - limit} more" if n > limit else ""
    return f"{n} file{'s' if n != 1 else ''} could not be read: {shown}{more}"


def _builtin_dim() -> int:
    from picksel.encoders.builtin import DIM

    return DIM


def _try_load(album: Path, state_dir: Path | None, report: IndexReport) -> AlbumIndex | None:
    try:
        return load_index(album, state_dir)
    except IndexMissing:
        return None
    except IndexCorrupt as exc:
        report.messages.append(f"{exc}: rebuilding it from scratch")
        return None


def build_index(
    album: Path,
    *,
    encoder: str = "builtin",
    full: bool = False,
    state_dir: Path | None = None,
    from_photomap: Path | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
) -> tuple[AlbumIndex, IndexReport]:
    """Create or update the album's index and save it.

    Incremental: new and changed files (size or mtime) are encoded, removed ones dropped,
    unchanged ones reused without decoding; a different encoder (or ``full``) re-encodes
    everything. A PhotoMapAI index (given, or found in the album when ours is missing or
    was imported from it) is imported instead of encoding. ``Cancelled`` leaves the old
    index untouched. Unreadable files are reported, never fatal.
    """
    album = Path(album)
    if not album.is_dir():
        raise PickselError(f"album folder not found: {album}")
    report = IndexReport()
    old = None if full else _try_load(album, state_dir, report)

    from picksel import photomap

    pm_dir = None
    if from_photomap is not None:
        pm_dir = photomap.resolve_photomap(Path(from_photomap))
    elif not full and (old is None or old.source == "photomap"):
        pm_dir = photomap.find_photomap_dir(album)
    elif old is not None and old.source != "photomap":
        found = photomap.find_photomap_dir(album)
        if found is not None and not full:
            report.messages.append(
                f"PhotoMapAI index at {found} not used (this album is indexed with "
                f"{old.encoder}); pass --from-photomap to switch to it"
            )
    if pm_dir is not None:
        return photomap.build_from_photomap(
            album, pm_dir, state_dir=state_dir, old=old, report=report,
            progress=progress, cancel=cancel,
        )

    unlisted: list[tuple[str, str]] = []
    entries = scan_album(album, progress=progress, cancel=cancel, unreadable=unlisted)
    if unlisted:
        report.messages.append(unreadable_folders_message(unlisted))
    enc_id = canonical_spec(encoder)
    stale_width = (
        old is not None
        and enc_id.startswith("builtin")
        and len(old) > 0
        and old.dim != _builtin_dim()
    )  # a development build wrote another width under the same id: never mix widths
    if old is not None and (old.encoder != enc_id or old.source != "picksel" or stale_width):
        report.messages.append(
            f"encoder changed ({old.encoder} → {enc_id}): re-encoding all {len(entries)} images"
        )
        old_rows: dict[str, int] = {}
        old_failed: dict[str, tuple[int, float]] = {}
        old_reasons: dict[str, str] = {}
    else:
        old_rows = old.row_of() if old is not None else {}
        old_failed = old.failure_stats if old is not None else {}
        old_reasons = dict(old.failures) if old is not None else {}

    # What existed before (for the report), even when its vector cannot be reused.
    prev_rows = old.row_of() if old is not None else {}
    prev_failed = old.failure_stats if old is not None else {}
    reuse: list[tuple[int, int]] = []  # (new position, old row)
    kept_failures: list[tuple[str, str]] = []
    todo: list[int] = []  # positions in entries to encode
    existed: set[int] = set()  # positions in todo that were in the old index (rows/failures)
    for pos, e in enumerate(entries):
        row = old_rows.get(e.rel)
        if row is not None:
            assert old is not None
            if int(old.sizes[row]) == e.size and float(old.mtimes[row]) == e.mtime:
                reuse.append((pos, row))
                continue
        elif e.rel in old_failed and old_failed[e.rel] == (e.size, e.mtime):
            kept_failures.append((e.rel, old_reasons.get(e.rel, "unreadable")))
            continue
        if e.rel in prev_rows or e.rel in prev_failed:
            existed.add(pos)
        todo.append(pos)
    current = {e.rel for e in entries}
    if old is not None:
        report.removed = sum(1 for p in old.paths if p not in current)
    report.unchanged = len(reuse)

    unchanged_album = (
        old is not None
        and not todo
        and report.removed == 0
        and len(reuse) == len(old)
        and len(kept_failures) == len(old.failures)
    )
    if unchanged_album:
        assert old is not None
        report.failures = list(old.failures)
        if report.failures:
            report.messages.append(failure_message(report.failures))
        return old, report

    vectors: dict[int, np.ndarray] = {}
    new_failures: dict[int, str] = {}
    if todo:
        enc = get_encoder(encoder)
        try:
            total = len(todo)
            done = 0
            if progress is not None:
                progress(0, total, f"encoding {total} images with {enc.id}")
            for start in range(0, total, BATCH_SIZE):
                if cancel is not None and cancel():
                    raise Cancelled()
                batch = todo[start : start + BATCH_SIZE]
                results = encode_paths(enc, [album / entries[p].rel for p in batch])
                for pos, (vec, reason) in zip(batch, results, strict=True):
                    if vec is None:
                        new_failures[pos] = reason
                    else:
                        vectors[pos] = vec
                done += len(batch)
                if progress is not None:
                    progress(done, total, f"encoded {done}/{total} images")
        finally:
            close_encoder(enc)
        dim = enc.dim
    elif old is not None and old.encoder == enc_id:
        dim = old.dim
    else:
        # Nothing to encode (empty album): keep the encoder's width without loading a
        # model just for that when it is the builtin one.
        dim = _builtin_dim() if enc_id.startswith("builtin") else 0

    for pos in todo:
        if pos in vectors:
            if pos in existed:
                report.updated += 1
            else:
                report.added += 1
        elif entries[pos].rel in prev_rows:
            report.removed += 1  # had a row, now unreadable: the row is gone

    # Assemble rows in scan (sorted) order.
    keep_pos = sorted([p for p, _ in reuse] + list(vectors))
    slot = {pos: i for i, pos in enumerate(keep_pos)}
    emb = np.empty((len(keep_pos), dim), dtype=np.float32)
    if reuse:
        assert old is not None
        emb[[slot[p] for p, _ in reuse]] = old.embeddings[[r for _, r in reuse]]
    if vectors:
        emb[[slot[p] for p in vectors]] = np.stack(list(vectors.values()))
    by_rel = {e.rel: e for e in entries}
    failures = sorted(kept_failures + [(entries[p].rel, r) for p, r in new_failures.items()])
    index = AlbumIndex(
        root=album,
        paths=[entries[p].rel for p in keep_pos],
        embeddings=emb,
        mtimes=np.array([entries[p].mtime for p in keep_pos], dtype=np.float64),
        sizes=np.array([entries[p].size for p in keep_pos], dtype=np.int64),
        encoder=enc_id,
        source="picksel",
        failures=failures,
        failure_stats={rel: (by_rel[rel].size, by_rel[rel].mtime) for rel, _ in failures},
    )
    if cancel is not None and cancel():
        raise Cancelled()
    save_index(index, state_dir)
    prune_thumbnails(album_state_dir(album, state_dir), index.paths, index.mtimes)
    report.failures = failures
    report.source = "picksel"
    if failures:
        report.messages.append(failure_message(failures))
    return index, report
