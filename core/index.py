"""The album index: one embedding per image, kept in ``ALBUM/.picksel/index.npz``.

Why this shape: selection only needs an N×D matrix, and re-indexing must be cheap, so
each row carries the file's size and mtime — an unchanged album re-indexes by ``stat``
alone. The file holds plain arrays only (no pickles: an index may come from someone
else's album), is written atomically, and is validated on load so a damaged file gives a
one-line explanation instead of a traceback. Files that failed to decode are remembered
with their size/mtime and only retried when they change.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from picksel import indexstore as store
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
from picksel.indexstore import INDEX_FILENAME
from picksel.npzio import Deferred, NpzError, read_npz
from picksel.quality import ImageMeasures
from picksel.scan import ImageEntry, scan_album, unreadable_folders_message
from picksel.thumbs import prune_thumbnails

INDEX_VERSION = 1
BATCH_SIZE = 128
"""Files per encode batch: progress is reported and cancel checked between batches."""

_REQUIRED = ("embeddings", "paths", "mtimes", "sizes", "encoder", "version", "source")
_OPTIONAL = ("failed_paths", "failed_reasons", "failed_sizes", "failed_mtimes", "source_stamp", "album")
_FINGERPRINT = "fingerprint"
"""The fingerprint as saved: computing it reads every vector (2 s at 1M x 768)."""
_FP_FORMAT = re.compile(r"[0-9a-f]{16}")


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
    paths_array: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)
    """``paths`` as the sorted string array it was loaded from (None when built here)."""

    def verify(self) -> None:
        """Nothing to do: see :class:`LaterVectorsIndex`."""

    @property
    def verified(self) -> bool:
        return True

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
    """The active index file."""
    return album_state_dir(Path(album), state_dir) / INDEX_FILENAME


# --------------------------------------------------------------------------- load/save


class LaterVectorsIndex(AlbumIndex):
    """An index whose vectors are read on first use, from the file it was opened from
    (``load_index(verify=False)``: the curator opens a 1M-image album without reading
    3 GB, and reads them in the background). ``verify()`` reads and checks them (CRC,
    no NaN); ``embeddings`` waits for that. IndexCorrupt then, on every call."""

    _later: Deferred | None = None
    _checked: threading.Lock
    _check_error: IndexCorrupt | None = None
    _where: tuple[Path, Path] = (Path(), Path())

    @property  # type: ignore[override]
    def embeddings(self) -> np.ndarray:
        if self._later is not None or self._check_error is not None:
            self.verify()
        return self.__dict__["_embeddings"]

    @embeddings.setter
    def embeddings(self, value: np.ndarray) -> None:
        self.__dict__["_embeddings"] = value

    @property
    def dim(self) -> int:
        later = self._later
        return int(later.shape[1]) if later is not None else super().dim

    @property
    def verified(self) -> bool:
        return self._later is None and self._check_error is None

    def verify(self) -> None:
        with self._checked:
            if self._check_error is not None:
                raise self._check_error
            later = self._later
            if later is None:
                return
            path, album = self._where
            try:
                emb = later.read()
            except NpzError as exc:
                self._check_error = _corrupt(path, album, str(exc))
            else:
                if emb.shape[0] and not np.isfinite(np.einsum("ij,ij->i", emb, emb)).all():
                    self._check_error = _corrupt(path, album, "embeddings contain NaN or infinity")
                else:
                    self.__dict__["_embeddings"] = emb
            self._later = None
            if self._check_error is not None:
                raise self._check_error


def _corrupt(path: Path, album: Path, why: str) -> IndexCorrupt:
    return IndexCorrupt(
        f"index file {path} is corrupt ({why}); run `picksel index {album} --full`"
    )


def _unicode_1d(arr: np.ndarray) -> bool:
    return arr.ndim == 1 and (arr.dtype.kind == "U" or (arr.size == 0 and arr.dtype.kind == "f"))


def load_index(album: Path, state_dir: Path | None = None, *, verify: bool = True) -> AlbumIndex:
    """Read and validate the album's active index. IndexMissing when there is none (or
    the one in a --state-dir is another album's), IndexCorrupt (with the command that
    fixes it) when it cannot be trusted.

    ``verify=False`` leaves the vectors unread (a :class:`LaterVectorsIndex`): the
    curator opens a 1M-image album at once and reads them in the background."""
    album = Path(album)
    sdir = album_state_dir(album, state_dir)
    path = sdir / INDEX_FILENAME
    store.sweep(sdir)
    if not path.is_file():
        raise IndexMissing(f"{album} has no index yet; run `picksel index {album}`")
    index, recorded = _load_file(path, album, verify)
    if state_dir is not None and not store.belongs_here(album, recorded, index.paths):
        raise IndexMissing(
            f"the index in {sdir} is another album's ({recorded or 'unknown'}), not {album}'s; "
            f"`picksel index {album} --state-dir {sdir}` builds this album's and keeps the other aside"
        )
    return index


def _load_file(path: Path, album: Path, verify: bool = True) -> tuple[AlbumIndex, str | None]:
    """One index file, validated; with the album path it records (None in old files)."""
    later: dict[str, Deferred] = {}
    try:
        arrays = read_npz(
            path, (*_REQUIRED, *_OPTIONAL, _FINGERPRINT), later=() if verify else ("embeddings",), deferred=later
        )
    except (OSError, NpzError) as exc:
        raise _corrupt(path, album, str(exc)) from None
    try:
        return _validated(path, album, arrays, later.get("embeddings"))
    except BaseException:
        for value in later.values():
            value.close()
        raise


def _validated(
    path: Path, album: Path, arrays: dict[str, np.ndarray], later: Deferred | None
) -> tuple[AlbumIndex, str | None]:
    if later is not None:  # checked like the rest from its header; read when needed
        arrays["embeddings"] = np.empty((0,) * len(later.shape), later.dtype)
    missing = [k for k in _REQUIRED if k not in arrays]
    if missing:
        raise _corrupt(path, album, "missing " + ", ".join(missing))
    emb, paths, mtimes, sizes = (arrays[k] for k in ("embeddings", "paths", "mtimes", "sizes"))
    encoder, version, source = arrays["encoder"], arrays["version"], arrays["source"]
    failed = arrays.get("failed_paths", np.array([], "U1"))
    reasons = arrays.get("failed_reasons", np.array([], "U1"))
    n_failed = failed.shape[0] if failed.ndim == 1 else 0
    f_sizes = arrays.get("failed_sizes", np.zeros(n_failed, np.int64))
    f_mtimes = arrays.get("failed_mtimes", np.zeros(n_failed, np.float64))
    stamp = arrays.get("source_stamp", np.array(0.0))

    if version.shape != () or version.dtype.kind not in "iu":
        raise _corrupt(path, album, "bad version field")
    if int(version) != INDEX_VERSION:
        raise _corrupt(path, album, f"version {int(version)}, expected {INDEX_VERSION}")
    for name, arr in (("encoder", encoder), ("source", source)):
        if arr.shape != () or arr.dtype.kind != "U":
            raise _corrupt(path, album, f"{name} is not a string")
    shape = later.shape if later is not None else emb.shape
    if emb.dtype != np.float32 or len(shape) != 2:
        raise _corrupt(path, album, f"embeddings are {emb.dtype} with shape {shape}, expected float32 N×D")
    n = shape[0]
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
    if later is None and n and not np.isfinite(np.einsum("ij,ij->i", emb, emb)).all():  # no N×D temporary
        raise _corrupt(path, album, "embeddings contain NaN or infinity")
    # strictly increasing = sorted and unique; numpy compares code points as str does
    # (on the array: a set of 1M paths takes a second)
    if n > 1 and not bool(np.all(paths[1:] > paths[:-1])):
        raise _corrupt(path, album, "paths are not sorted and unique")
    path_list = paths.tolist() if n else []
    failed_list = failed.tolist() if nf else []
    index = (AlbumIndex if later is None else LaterVectorsIndex)(
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
    index.paths_array = paths if n else None
    if isinstance(index, LaterVectorsIndex):
        index._later, index._checked, index._where = later, threading.Lock(), (path, album)
    saved_fp = arrays.get(_FINGERPRINT)
    if (
        saved_fp is not None
        and saved_fp.shape == ()
        and saved_fp.dtype.kind == "U"
        and _FP_FORMAT.fullmatch(str(saved_fp))
    ):
        index._fp = str(saved_fp)
    return index, store.recorded_album(arrays)


def _str_array(items: list[str]) -> np.ndarray:
    # An explicit unicode dtype even when empty: never an object array.
    return np.array(items, dtype=f"U{max((len(s) for s in items), default=1)}")


def save_index(index: AlbumIndex, state_dir: Path | None = None) -> Path:
    """Write the index atomically (temp file + rename): a crash keeps the old one.

    An active index of another encoder is kept as ``index-<encoder>.npz`` first, so
    switching back reuses its vectors; this encoder's kept copy, now superseded by the
    active file, is dropped."""
    sdir = album_state_dir(index.root, state_dir)
    path = sdir / INDEX_FILENAME
    store.sweep(sdir)
    current = store.peek(path)
    kept = None
    builtin_upgrade = (
        current is not None
        and current[0].startswith("builtin")
        and index.encoder.startswith("builtin")
        and index.source == current[1] == "picksel"
    )  # an older builtin version's vectors are never used again
    if current is not None and current != (index.encoder, index.source) and not builtin_upgrade:
        kept = store.stash_path(sdir, *current)
        store.keep_copy(path, kept)
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
        "album": _str_array([store.album_identity(index.root)]).reshape(()),
        _FINGERPRINT: np.array(index.fingerprint(), dtype="U16"),
    }
    with atomic_write(path, "wb") as fh:
        np.savez(fh, **arrays)
    superseded = store.stash_path(sdir, index.encoder, index.source)
    if superseded != kept:
        with contextlib.suppress(FileNotFoundError):
            superseded.unlink()
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


@dataclass
class _Plan:
    """What a re-index must do: which old rows are reused, which files to encode."""

    entries: list[ImageEntry]
    enc_id: str
    reuse: list[tuple[int, int]] = field(default_factory=list)  # (new position, old row)
    kept_failures: list[tuple[str, str]] = field(default_factory=list)
    todo: list[int] = field(default_factory=list)  # positions in entries to encode
    existed: set[int] = field(default_factory=set)  # todo positions the old index knew
    prev_rows: dict[str, int] = field(default_factory=dict)
    unchanged: bool = False


def _photomap_source(
    album: Path,
    old: AlbumIndex | None,
    encoder: str | None,
    from_photomap: Path | None,
    full: bool,
    report: IndexReport,
) -> Path | None:
    """The PhotoMapAI index to import instead of encoding, if any: the one given, else
    one found in the album when no encoder was asked for and the album has no index of
    its own (or was imported from PhotoMapAI)."""
    from picksel import photomap

    if from_photomap is not None:
        return photomap.resolve_photomap(Path(from_photomap))
    if full or encoder is not None:
        return None
    if old is None or old.source == "photomap":
        return photomap.find_photomap_dir(album)
    found = photomap.find_photomap_dir(album)
    if found is not None:
        report.messages.append(
            f"PhotoMapAI index at {found} not used (this album is indexed with "
            f"{old.encoder}); pass --from-photomap to switch to it"
        )
    return None


def _encoder_spec(encoder: str | None, current: tuple[str, str] | None) -> str:
    """The encoder to use: the one asked for, else the album's current one (an older
    builtin version becomes the current builtin), else builtin."""
    if encoder is not None:
        return encoder
    if current is None or current[1] != "picksel" or current[0].startswith("builtin"):
        return "builtin"
    return current[0]


def _switch(
    album: Path,
    sdir: Path,
    state_dir: Path | None,
    current: tuple[str, str],
    enc_id: str,
    full: bool,
    report: IndexReport,
) -> AlbumIndex | None:
    """Switching encoder: say where the current vectors are kept, and return the index
    this encoder had before (kept from an earlier switch) to start from, if any."""
    cur_enc, cur_src = current
    if not (cur_src == "picksel" and cur_enc.startswith("builtin") and enc_id.startswith("builtin")):
        kept = store.stash_path(sdir, cur_enc, cur_src)
        if state_dir is not None:
            store.claim(kept, album, report.messages)
        back = "--from-photomap FILE" if cur_src == "photomap" else f"--encoder {cur_enc}"
        report.messages.append(
            f"switching encoder ({cur_enc} → {enc_id}): the {cur_enc} vectors are kept in "
            f"{kept.name}; `picksel index {album} {back}` switches back"
        )
    earlier = store.stash_path(sdir, enc_id)
    if full or not earlier.is_file():
        return None
    if state_dir is not None:
        store.claim(earlier, album, report.messages)
    try:
        index, _ = _load_file(earlier, album)
    except IndexCorrupt as exc:
        report.messages.append(f"{exc}: not reused")
        return None
    except IndexMissing:
        return None
    if index.encoder != enc_id or index.source != "picksel":
        return None
    report.messages.append(f"reusing the {len(index)} {enc_id} vectors kept in {earlier.name}")
    return index


def _plan(
    entries: list[ImageEntry],
    prev: AlbumIndex | None,
    reuse: AlbumIndex | None,
    enc_id: str,
    report: IndexReport,
) -> _Plan:
    """Match the scan against the old indexes: ``prev`` (the active one) tells what is
    new, changed or removed; unchanged rows and remembered failures are taken from
    ``reuse`` when it holds this encoder's vectors. Everything else is encoded."""
    plan = _Plan(entries=entries, enc_id=enc_id)
    stale_width = (
        reuse is not None
        and enc_id.startswith("builtin")
        and len(reuse) > 0
        and reuse.dim != _builtin_dim()
    )  # a development build wrote another width under the same id: never mix widths
    if reuse is not None and (reuse.encoder != enc_id or reuse.source != "picksel" or stale_width):
        report.messages.append(
            f"encoder changed ({reuse.encoder} → {enc_id}): re-encoding all {len(entries)} images"
        )
        reuse = None
    old_rows = reuse.row_of() if reuse is not None else {}
    old_failed = reuse.failure_stats if reuse is not None else {}
    old_reasons = dict(reuse.failures) if reuse is not None else {}
    old = reuse

    # What existed before (for the report), even when its vector cannot be reused.
    plan.prev_rows = prev.row_of() if prev is not None else {}
    prev_failed = prev.failure_stats if prev is not None else {}
    for pos, e in enumerate(entries):
        row = old_rows.get(e.rel)
        if row is not None:
            assert old is not None
            if int(old.sizes[row]) == e.size and float(old.mtimes[row]) == e.mtime:
                plan.reuse.append((pos, row))
                continue
        elif e.rel in old_failed and old_failed[e.rel] == (e.size, e.mtime):
            plan.kept_failures.append((e.rel, old_reasons.get(e.rel, "unreadable")))
            continue
        if e.rel in plan.prev_rows or e.rel in prev_failed:
            plan.existed.add(pos)
        plan.todo.append(pos)
    current = {e.rel for e in entries}
    if prev is not None:
        report.removed = sum(1 for p in prev.paths if p not in current)
    report.unchanged = len(plan.reuse)
    plan.unchanged = (
        old is not None
        and old is prev
        and not plan.todo
        and report.removed == 0
        and len(plan.reuse) == len(old)
        and len(plan.kept_failures) == len(old.failures)
    )
    return plan


def _carry_unlisted(
    entries: list[ImageEntry],
    unlisted: list[tuple[str, str]],
    old: AlbumIndex | None,
    report: IndexReport,
) -> list[ImageEntry]:
    """Keep the old rows (and remembered failures) of folders that could not be listed.

    A folder unreadable for a moment (permissions being fixed, a share that hiccuped)
    says nothing about its images: dropping their rows would make the next re-index
    encode them all again, hours with CLIP on a large album. They are carried with the
    size and mtime they were indexed with, so the plan reuses them untouched."""
    if old is None or not unlisted:
        return entries
    prefixes = tuple("" if rel in ("", ".") else rel.rstrip("/") + "/" for rel, _ in unlisted)
    seen = {e.rel for e in entries}
    carried = [
        ImageEntry(rel, int(old.sizes[i]), float(old.mtimes[i]))
        for i, rel in enumerate(old.paths)
        if rel.startswith(prefixes) and rel not in seen
    ]
    failed = [
        ImageEntry(rel, size, mtime)
        for rel, (size, mtime) in old.failure_stats.items()
        if rel.startswith(prefixes) and rel not in seen
    ]
    if not carried and not failed:
        return entries
    if carried:
        n = len(carried)
        report.messages.append(
            f"kept the vectors of {n} image{'s' if n != 1 else ''} in folders that could not be read"
        )
    return sorted(entries + carried + failed, key=lambda e: e.rel)


def _encode(
    album: Path,
    plan: _Plan,
    encoder: str,
    old: AlbumIndex | None,
    progress: ProgressFn | None,
    cancel: CancelFn | None,
    measures: dict[str, ImageMeasures] | None = None,
) -> tuple[dict[int, np.ndarray], dict[int, str], int]:
    """Encode the planned files in batches: (vectors, failure reasons, width); each
    file's quality measures, from the same decode, go into ``measures`` (by path)."""
    vectors: dict[int, np.ndarray] = {}
    new_failures: dict[int, str] = {}
    todo, entries = plan.todo, plan.entries
    if not todo:
        if old is not None and old.encoder == plan.enc_id:
            return vectors, new_failures, old.dim
        # Nothing to encode (empty album): keep the encoder's width without loading a
        # model just for that when it is the builtin one.
        return vectors, new_failures, _builtin_dim() if plan.enc_id.startswith("builtin") else 0
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
            results = encode_paths(enc, [album / entries[p].rel for p in batch], cancel,
                                   measures=measures)
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
    return vectors, new_failures, enc.dim


def _merge(
    album: Path,
    plan: _Plan,
    old: AlbumIndex | None,
    vectors: dict[int, np.ndarray],
    new_failures: dict[int, str],
    dim: int,
    report: IndexReport,
) -> AlbumIndex:
    """Reused and new rows in scan (sorted) order; counts the report's added/updated."""
    entries = plan.entries
    for pos in plan.todo:
        if pos in vectors:
            if pos in plan.existed:
                report.updated += 1
            else:
                report.added += 1
        elif entries[pos].rel in plan.prev_rows:
            report.removed += 1  # had a row, now unreadable: the row is gone

    keep_pos = sorted([p for p, _ in plan.reuse] + list(vectors))
    slot = {pos: i for i, pos in enumerate(keep_pos)}
    emb = np.empty((len(keep_pos), dim), dtype=np.float32)
    if plan.reuse:
        assert old is not None
        emb[[slot[p] for p, _ in plan.reuse]] = old.embeddings[[r for _, r in plan.reuse]]
    if vectors:
        emb[[slot[p] for p in vectors]] = np.stack(list(vectors.values()))
    by_rel = {e.rel: e for e in entries}
    failures = sorted(plan.kept_failures + [(entries[p].rel, r) for p, r in new_failures.items()])
    return AlbumIndex(
        root=album,
        paths=[entries[p].rel for p in keep_pos],
        embeddings=emb,
        mtimes=np.array([entries[p].mtime for p in keep_pos], dtype=np.float64),
        sizes=np.array([entries[p].size for p in keep_pos], dtype=np.int64),
        encoder=plan.enc_id,
        source="picksel",
        failures=failures,
        failure_stats={rel: (by_rel[rel].size, by_rel[rel].mtime) for rel, _ in failures},
    )


def build_index(
    album: Path,
    *,
    encoder: str | None = None,
    full: bool = False,
    state_dir: Path | None = None,
    from_photomap: Path | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
) -> tuple[AlbumIndex, IndexReport]:
    """Create or update the album's index and save it.

    Incremental: new and changed files (size or mtime) are encoded, removed ones dropped,
    unchanged ones reused without decoding; ``full`` re-encodes everything. ``encoder``
    None keeps the album's current encoder (builtin for a new album); another encoder
    switches to it, keeping the current vectors beside the index so switching back is
    instant. A PhotoMapAI index (given, or found in the album when ours is missing or
    was imported from it) is imported instead of encoding. ``Cancelled`` leaves the old
    index untouched. Unreadable files are reported, never fatal.

    Stages: claim the files → load the old index → PhotoMapAI? → scan → plan → encode →
    merge → save.
    """
    album = Path(album)
    if not album.is_dir():
        raise PickselError(f"album folder not found: {album}")
    report = IndexReport()
    sdir = album_state_dir(album, state_dir)
    if state_dir is not None:  # a shared folder may hold someone else's index
        store.claim(sdir / INDEX_FILENAME, album, report.messages)
    current = store.peek(sdir / INDEX_FILENAME)
    old = None if full else _try_load(album, state_dir, report)

    pm_dir = _photomap_source(album, old, encoder, from_photomap, full, report)
    if pm_dir is not None:
        from picksel import photomap

        if state_dir is not None and current is not None and current[1] != "photomap":
            store.claim(store.stash_path(sdir, *current), album, report.messages)
        return photomap.build_from_photomap(
            album, pm_dir, state_dir=state_dir, old=old, report=report,
            progress=progress, cancel=cancel,
        )
    if old is not None and old.source == "photomap" and encoder is None and not full:
        report.messages.append(
            f"kept the index imported from PhotoMapAI (no PhotoMapAI index found in {album} now): "
            "pass --from-photomap FILE to refresh it, or --encoder builtin to encode the album"
        )
        report.source, report.unchanged, report.failures = "photomap", len(old), list(old.failures)
        return old, report

    spec = _encoder_spec(encoder, current)
    enc_id = canonical_spec(spec)
    reuse = old
    if current is not None and current != (enc_id, "picksel"):
        earlier = _switch(album, sdir, state_dir, current, enc_id, full, report)
        reuse = earlier if earlier is not None else old
    unlisted: list[tuple[str, str]] = []
    entries = scan_album(album, progress=progress, cancel=cancel, unreadable=unlisted)
    if unlisted:
        report.messages.append(unreadable_folders_message(unlisted))
        entries = _carry_unlisted(entries, unlisted, reuse, report)
    plan = _plan(entries, old, reuse, enc_id, report)
    if plan.unchanged:
        assert old is not None
        report.failures = list(old.failures)
        if report.failures:
            report.messages.append(failure_message(report.failures))
        return old, report
    measures: dict[str, ImageMeasures] = {}
    vectors, new_failures, dim = _encode(album, plan, spec, reuse, progress, cancel, measures)
    index = _merge(album, plan, reuse, vectors, new_failures, dim, report)
    if cancel is not None and cancel():
        raise Cancelled()
    _save(index, state_dir, report)
    _save_measures(index, sdir, measures, report, cancel)
    return index, report


def _save_measures(index: AlbumIndex, sdir: Path, measures: dict[str, ImageMeasures],
                   report: IndexReport, cancel: CancelFn | None) -> None:
    """Keep the quality measures the decode stage took (``.picksel/quality.npz``), so
    ``picksel check`` decodes nothing after an index run. Only a cache: a failure to
    write it is a note, not an error (check measures again)."""
    from picksel.check import record_measures

    root = str(index.root)
    fresh = {str(Path(k).relative_to(root)).replace("\\", "/"): m for k, m in measures.items()}
    try:
        record_measures(index.root, sdir, index.paths, index.sizes, index.mtimes, fresh, cancel)
    except OSError as exc:
        report.messages.append(f"quality measures not saved ({exc.strerror or exc}); "
                               "`picksel check` will measure again")


def _save(index: AlbumIndex, state_dir: Path | None, report: IndexReport) -> None:
    save_index(index, state_dir)
    prune_thumbnails(album_state_dir(index.root, state_dir), index.paths, index.mtimes)
    report.failures = index.failures
    report.source = index.source
    if index.failures:
        report.messages.append(failure_message(index.failures))
