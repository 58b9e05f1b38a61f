"""Read a PhotoMapAI index so its (CLIP) embeddings and UMAP can be reused.

People coming from PhotoMapAI already paid for CLIP embeddings of their album; importing
them is instant and gives picksel the same semantic distances. The file is someone
else's: it contains a pickled ``metadata`` object array, and unpickling a file is
running code, so we open it with ``allow_pickle=False`` and read only the plain arrays
we need (an ``.npz`` is a zip; each key is read on its own, ``metadata`` is never read).

Format (see DESIGN.md): ``photomap_index/embeddings.npz`` with ``embeddings`` float32
(N, D), ``filenames`` absolute paths (float64 when empty), ``modification_times``,
``model_id`` (missing in old files), ``embedding_dim``; ``photomap_index/umap.npz`` with
``umap`` float32 (N, 2) in the same row order, stale when older than the embeddings.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from picksel.errors import CancelFn, Cancelled, PickselError, ProgressFn
from picksel.npzio import NpzError, npz_keys, read_npz

DIRNAME = "photomap_index"
EMBEDDINGS = "embeddings.npz"
UMAP = "umap.npz"
LEGACY_MODEL_ID = "openai-clip:ViT-B/32"
SEARCH_DEPTH = 3
"""How deep below the album we look for ``photomap_index/`` (PhotoMapAI keeps it in the
album's first image folder, normally the album root or one level down)."""


@dataclass
class PhotoMapIndex:
    """The plain-array part of a PhotoMapAI index."""

    dir: Path
    file: Path  # the embeddings file read (normally dir / embeddings.npz)
    embeddings: np.ndarray  # float32 (N, D), rows re-normalised
    filenames: list[str]  # absolute paths as PhotoMapAI stored them
    mtimes: np.ndarray  # float64 (N,)
    model_id: str
    umap: np.ndarray | None  # float32 (N, 2) when present and fresh
    umap_note: str  # why umap is None ("" when fresh or absent)


def resolve_photomap(path: Path) -> Path:
    """``--from-photomap`` accepts an embeddings file (whatever its name: that file is the
    one read), the photomap_index folder or the folder containing it; returns the
    embeddings file."""
    path = Path(path).expanduser()
    if path.is_file():
        return path
    for cand in (path, path / DIRNAME):
        if (cand / EMBEDDINGS).is_file():
            return cand / EMBEDDINGS
    raise PickselError(f"no PhotoMapAI index found at {path} (expected {DIRNAME}/{EMBEDDINGS})")


def find_photomap_dir(album: Path) -> Path | None:
    """``ALBUM/photomap_index`` or the first one (breadth-first, name order) within
    ``SEARCH_DEPTH`` folders below the album; None when there is none."""
    level = [Path(album)]
    for _ in range(SEARCH_DEPTH + 1):
        nxt: list[Path] = []
        for folder in level:
            if os.path.isfile(folder / DIRNAME / EMBEDDINGS):  # False, not EACCES, in lost+found
                return folder / DIRNAME
            try:
                with os.scandir(folder) as it:
                    subs = sorted(
                        e.name for e in it
                        if not e.name.startswith(".") and e.name != DIRNAME
                        and e.is_dir(follow_symlinks=False)
                    )
            except OSError:
                continue
            nxt.extend(folder / s for s in subs)
        level = nxt
        if not level:
            break
    return None


def _renormalise(emb: np.ndarray) -> bool:
    """Unit rows in place, without a full-size temporary (einsum, not linalg.norm or
    isfinite, which would allocate another N×D buffer). False when a row holds NaN or
    infinity (they propagate into its norm)."""
    if not emb.size:
        return True
    norms = np.sqrt(np.einsum("ij,ij->i", emb, emb))
    if not np.isfinite(norms).all():
        return False
    if np.abs(norms - 1.0).max() <= 1e-5:
        return True  # already unit rows (the normal case): skip a pass over the matrix
    norms[norms == 0] = 1.0
    emb /= norms[:, None]
    return True


MAX_DIM = 65_536
"""Widest embedding accepted (CLIP models use 512 to 1,280)."""


def _embedding_dim(dim: np.ndarray | None, bad) -> int | None:  # noqa: ANN001
    """``embedding_dim`` as a whole number in range, None when absent."""
    if dim is None:
        return None
    value = dim.item() if dim.shape == () and dim.dtype.kind in "iuf" else None
    if value is None or not math.isfinite(value) or value != int(value) or not 0 <= value <= MAX_DIM:
        shown = dim.item() if dim.shape == () and dim.size == 1 else f"{dim.dtype}{dim.shape}"
        raise bad(f"embedding_dim {shown!r} is not a whole number from 0 to {MAX_DIM}")
    return int(value)


def read_photomap(pm_dir: Path) -> PhotoMapIndex:
    """Load embeddings.npz (or the embeddings file given) and its umap.npz without
    unpickling anything. PickselError with the reason when the file is not a usable
    PhotoMapAI index."""
    path = Path(pm_dir)
    if path.is_dir():
        path = path / EMBEDDINGS
    pm_dir = path.parent

    def bad(why: str) -> PickselError:
        return PickselError(f"PhotoMapAI index {path} is not usable ({why})")

    try:
        keys = set(npz_keys(path))
        if "embeddings" not in keys or "filenames" not in keys:
            raise bad("no embeddings/filenames arrays")
        arrays = read_npz(path, ("filenames", "modification_times", "model_id", "embedding_dim", "embeddings"))
    except (OSError, NpzError) as exc:
        raise bad(str(exc)) from None
    names, emb = arrays["filenames"], arrays["embeddings"]
    mtimes = arrays.get("modification_times")
    model = arrays.get("model_id")
    dim = _embedding_dim(arrays.get("embedding_dim"), bad)

    if names.ndim != 1 or not (names.dtype.kind == "U" or (names.size == 0 and names.dtype.kind == "f")):
        raise bad(f"filenames are {names.dtype}{names.shape}")
    n = names.shape[0]
    if n == 0:
        emb = np.zeros((0, dim or 0), np.float32)
    if emb.ndim != 2 or emb.shape[0] != n or emb.dtype.kind != "f":
        raise bad(f"embeddings are {emb.dtype}{emb.shape} for {n} filenames")
    if emb.dtype != np.float32:
        emb = emb.astype(np.float32)
    elif not emb.flags.writeable:
        emb = emb.copy()
    if dim is not None and n and dim != emb.shape[1]:
        raise bad(f"embedding_dim {dim} but embeddings have {emb.shape[1]} columns")
    if mtimes is None or mtimes.shape != (n,) or mtimes.dtype.kind not in "fiu":
        mtimes = np.zeros(n, np.float64)
    model_id = str(model) if model is not None and model.shape == () and model.dtype.kind == "U" else LEGACY_MODEL_ID
    if not _renormalise(emb):
        raise bad("embeddings contain NaN or infinity")

    umap, note = _read_umap(path, n)
    return PhotoMapIndex(
        dir=pm_dir,
        file=path,
        embeddings=emb,
        filenames=names.tolist() if n else [],
        mtimes=np.asarray(mtimes, dtype=np.float64),
        model_id=model_id,
        umap=umap,
        umap_note=note,
    )


def _read_umap(path: Path, n: int) -> tuple[np.ndarray | None, str]:
    """PhotoMapAI's umap.npz beside ``path`` when it is that file's pair (``path`` is
    embeddings.npz, or a renamed copy with no embeddings.npz beside it), fresh, and
    matching row for row; else None and why (empty when there is none)."""
    upath = path.parent / UMAP
    if not upath.is_file():
        return None, ""
    if path.name != EMBEDDINGS and (path.parent / EMBEDDINGS).exists():
        return None, f"{upath} belongs to {path.parent / EMBEDDINGS}, not {path.name}; the map will be recomputed"
    try:
        if upath.stat().st_mtime < path.stat().st_mtime:
            return None, "PhotoMapAI's umap.npz is older than its embeddings (stale); the map will be recomputed"
        coords = read_npz(upath, ["umap"]).get("umap")
    except (OSError, NpzError) as exc:
        return None, f"PhotoMapAI's umap.npz is unreadable ({exc}); the map will be recomputed"
    if coords is None or coords.shape != (n, 2) or coords.dtype.kind != "f":
        return None, "PhotoMapAI's umap.npz does not match its embeddings; the map will be recomputed"
    if not np.isfinite(coords).all():
        return None, "PhotoMapAI's umap.npz has invalid values; the map will be recomputed"
    return coords.astype(np.float32, copy=False), ""


def _rel_in_album(filename: str, roots: tuple[str, ...]) -> str | None:
    norm = os.path.normpath(filename)
    for root in roots:
        prefix = root.rstrip(os.sep) + os.sep
        if norm.startswith(prefix):
            rel = norm[len(prefix):]
            return rel.replace(os.sep, "/") if os.sep != "/" else rel
    return None


_RELOCATE_SAMPLE = 400


def _parts(filename: str) -> list[str]:
    """Path components of a filename written on any system (PhotoMapAI runs on Windows
    too, so backslashes and drive letters are separators here)."""
    return [p for p in re.split(r"[\\/]+", filename) if p]


def _relocation_prefix(names: list[str], known: set[str]) -> tuple[str, ...] | None:
    """The folder the index was built in, when the album has moved since.

    An index copied from another machine or mount lists absolute paths under a root that
    does not exist here. For a sample of those names, the longest path tail that is an
    album file points at the old root; the root most of the sample agrees on is used,
    and only when most of the sample agrees, so a few stray entries never
    re-map the index."""
    if not names:
        return None
    step = max(1, len(names) // _RELOCATE_SAMPLE)
    sample = names[::step]
    votes: dict[tuple[str, ...], int] = {}
    for name in sample:
        parts = _parts(name)
        for cut in range(len(parts)):  # longest tail first; a flat album matches by name
            if "/".join(parts[cut:]) in known:
                prefix = tuple(parts[:cut])
                votes[prefix] = votes.get(prefix, 0) + 1
                break
    if not votes:
        return None
    prefix, hits = max(votes.items(), key=lambda kv: (kv[1], len(kv[0])))
    return prefix if 2 * hits > len(sample) else None


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


@dataclass
class _Match:
    """PhotoMapAI rows matched to album files (rows sorted by relative path)."""

    rows: np.ndarray
    rels: list[str]
    seen: set[str]
    gone: list[str]
    outside: list[str]
    changed: int
    relocated: int
    moved: tuple[str, ...] | None


def _match(pm: PhotoMapIndex, album: Path, by_rel: dict) -> _Match:  # noqa: ANN001
    """Map PhotoMapAI's absolute filenames onto album files, relocating a moved album."""
    roots = tuple(dict.fromkeys([os.path.abspath(album), os.path.realpath(album)]))
    keep_rows: list[int] = []
    keep_rels: list[str] = []
    gone: list[str] = []
    outside: list[str] = []
    seen: set[str] = set()
    changed = 0
    rel_of = [_rel_in_album(name, roots) for name in pm.filenames]
    away = [n for n, r in zip(pm.filenames, rel_of, strict=True) if r is None]
    # A moved album has (nearly) all its entries elsewhere; a few outside ones are strays.
    moved = _relocation_prefix(away, set(by_rel)) if 2 * len(away) > len(pm.filenames) else None
    relocated = 0
    if moved is not None:
        for row, name in enumerate(pm.filenames):
            parts = _parts(name)
            if rel_of[row] is None and tuple(parts[: len(moved)]) == moved and len(parts) > len(moved):
                rel_of[row] = "/".join(parts[len(moved):])
                relocated += 1
    for row, name in enumerate(pm.filenames):
        rel = rel_of[row]
        if rel is None:
            outside.append(name)
            continue
        if rel in seen:
            continue  # duplicate row: first one wins
        entry = by_rel.get(rel)
        if entry is None:
            gone.append(rel)
            continue
        seen.add(rel)
        keep_rows.append(row)
        keep_rels.append(rel)
        if pm.mtimes[row] and entry.mtime > float(pm.mtimes[row]) + 1.0:
            changed += 1
    order = np.argsort(np.array(keep_rels, dtype=object), kind="stable") if keep_rels else np.zeros(0, np.int64)
    return _Match(
        rows=np.asarray(keep_rows, dtype=np.int64)[order],
        rels=[keep_rels[i] for i in order],
        seen=seen,
        gone=gone,
        outside=outside,
        changed=changed,
        relocated=relocated,
        moved=moved,
    )


def _report_match(pm: PhotoMapIndex, m: _Match, entries: list, index, old, report) -> None:  # noqa: ANN001
    """Counts and one message per kind of mismatch."""
    report.source = "photomap"
    report.messages.append(
        f"using PhotoMapAI index {pm.file} ({_count(len(m.rels), 'image')}, model {pm.model_id})"
    )
    if m.relocated:
        old_root = ("/" if pm.filenames[0].startswith(("/", "\\")) else "") + "/".join(m.moved or ())
        report.messages.append(
            f"the PhotoMapAI index was built for {old_root or '/'}: "
            f"{m.relocated} {'entry' if m.relocated == 1 else 'entries'} matched to this album "
            "by their paths under it"
        )
    old_rows = old.row_of() if old is not None and old.source == "photomap" else {}
    for i, rel in enumerate(m.rels):
        j = old_rows.get(rel)
        if j is None:
            report.added += 1
        elif old.sizes[j] == index.sizes[i] and old.mtimes[j] == index.mtimes[i]:
            report.unchanged += 1
        else:
            report.updated += 1
    if old is not None:
        report.removed = sum(1 for p in old.paths if p not in m.seen)
    if m.gone:
        report.messages.append(
            f"{_count(len(m.gone), 'file')} listed in the PhotoMapAI index no longer "
            f"{'exist and were' if len(m.gone) != 1 else 'exists and was'} left out: " + ", ".join(m.gone[:5])
            + (", …" if len(m.gone) > 5 else "")
        )
    if m.outside:
        report.messages.append(
            f"{_count(len(m.outside), 'file')} in the PhotoMapAI index "
            f"{'lie outside the album and were' if len(m.outside) != 1 else 'lies outside the album and was'} left out: "
            + ", ".join(m.outside[:3])
            + (", …" if len(m.outside) > 3 else "")
        )
    missing = [e.rel for e in entries if e.rel not in m.seen]
    if missing:
        report.messages.append(
            f"{_count(len(missing), 'image')} {'are' if len(missing) != 1 else 'is'} not in the "
            "PhotoMapAI index; run PhotoMapAI again or `picksel index --full` to use the "
            "builtin encoder"
        )
    if m.changed:
        report.messages.append(
            f"{_count(m.changed, 'image')} changed after PhotoMapAI indexed "
            f"{'them' if m.changed != 1 else 'it'}; their embeddings may be out of date"
        )
    if old is not None and old.failures:
        report.failures = []


def build_from_photomap(
    album: Path,
    pm_dir: Path,
    *,
    state_dir: Path | None,
    old,  # noqa: ANN001 - AlbumIndex | None (import cycle)
    report,  # noqa: ANN001 - IndexReport
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
):  # noqa: ANN201 - tuple[AlbumIndex, IndexReport]
    """Import a PhotoMapAI index as the album's index (``source="photomap"``).

    Entries whose files are gone or outside the album are dropped and reported; album
    images PhotoMapAI did not index are reported, not encoded (another encoder's vectors
    would not be comparable). Fresh UMAP coordinates become our cached map.

    Stages: read → scan → match → assemble → report → save → map."""
    from picksel.album import state_dir as album_state_dir
    from picksel.index import AlbumIndex, failure_message, save_index
    from picksel.scan import scan_album
    from picksel.thumbs import prune_thumbnails

    album = Path(album)
    if progress is not None:
        progress(0, 3, "reading PhotoMapAI index")
    pm = read_photomap(pm_dir)
    if cancel is not None and cancel():
        raise Cancelled()
    if progress is not None:
        progress(1, 3, "checking the album against the PhotoMapAI index")
    entries = scan_album(album, cancel=cancel)
    by_rel = {e.rel: e for e in entries}
    m = _match(pm, album, by_rel)
    n_pm = len(pm.filenames)
    if n_pm and not m.rels:
        raise PickselError(
            f"none of the {_count(n_pm, 'path')} in PhotoMapAI index {pm.file} match files in "
            f"{album} (the first is {pm.filenames[0]}); nothing was imported"
        )
    if len(m.rows) == n_pm and np.array_equal(m.rows, np.arange(n_pm)):
        emb = pm.embeddings  # already in our order: no copy of a possibly huge matrix
    else:
        emb = pm.embeddings[m.rows]
    if cancel is not None and cancel():
        raise Cancelled()

    index = AlbumIndex(
        root=album,
        paths=m.rels,
        embeddings=emb,
        mtimes=np.array([by_rel[r].mtime for r in m.rels], dtype=np.float64),
        sizes=np.array([by_rel[r].size for r in m.rels], dtype=np.int64),
        encoder=pm.model_id,
        source="photomap",
        failures=[],
        source_stamp=pm.file.stat().st_mtime,
    )
    _report_match(pm, m, entries, index, old, report)
    if progress is not None:
        progress(2, 3, "saving index")
    if old is None or old.fingerprint() != index.fingerprint() or old.source_stamp != index.source_stamp:
        save_index(index, state_dir)
        prune_thumbnails(album_state_dir(album, state_dir), index.paths, index.mtimes)
    else:
        index = old

    if pm.umap is not None:
        coords = pm.umap[m.rows]
        try:
            from picksel.mapping import MapData, save_map

            save_map(album_state_dir(album, state_dir), MapData(coords, "photomap-umap", index.fingerprint()))
            report.messages.append("using PhotoMapAI's UMAP coordinates for the map")
        except ImportError:  # pragma: no cover - mapping is part of the package
            report.messages.append("PhotoMapAI's UMAP could not be stored (picksel.mapping missing)")
    elif pm.umap_note:
        report.messages.append(pm.umap_note)
    if progress is not None:
        progress(3, 3, "done")
    if report.failures:
        report.messages.append(failure_message(report.failures))
    return index, report
