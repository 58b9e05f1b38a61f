"""Copy the included images (and their caption sidecars) into a flat destination folder.

Naming follows PhotoMapAI's curator so exported sets look the same: ``name.ext``, then
``parentdir_name.ext``, then ``parentdir_stem_N.ext`` (N = 1, 2, ...). A top-level image's
"parentdir" is the album folder's own name (what the reference's ``path.parent.name``
gives). A name counts as taken when another image of this export already claimed it, or
when DEST holds a *different* file there. Names are compared case-insensitively so the
result is also safe on exFAT/SMB/macOS destinations.

Sidecars (``.txt .caption .json``) take the image's new stem: a candidate name is only
accepted when the image name and every sidecar name are free (or already hold identical
content). Within one export two images never share a stem when either carries sidecars,
otherwise ``a.png`` would silently pick up ``a.jpg``'s caption in a training folder.

Nothing is ever overwritten. Each file is copied to a hidden temp name in DEST
(``.NAME.picksel-tmp-XXXX``), its metadata copied like ``shutil.copy2``, then published with
``os.link(tmp, final)``, which fails if ``final`` exists, and the temp name is unlinked.
So an interrupted export never leaves a half file under a final name; a temp file left
by a killed export is swept by the next export into that folder (``sweep_leftovers``).
Filesystems without hard links fall back to check-then-rename, which has a tiny race
window (documented gap).

Re-exporting into the same folder does not duplicate: when a candidate name already
holds identical bytes the image is reported as "already there" and skipped.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import tempfile
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from picksel.errors import CancelFn, Cancelled, ProgressFn, never_cancel, no_progress

try:
    from picksel.scan import SIDECAR_EXTENSIONS
except ImportError:  # pragma: no cover - scan.py is the index helper's; same tuple
    SIDECAR_EXTENSIONS = (".txt", ".caption", ".json")

_CHUNK = 1 << 20
_NO_LINK_ERRNOS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK, errno.ENOSYS}
_DISK_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
FREE, SAME, DIFFERENT = "free", "same", "different"


@dataclass
class ExportItem:
    """One planned image: where it comes from and the name it gets in DEST.

    ``problem`` is set (and names are empty) when the image will be refused;
    ``already_there`` when DEST already holds identical bytes under ``dest_name``.
    """

    rel: str
    src: Path
    dest_name: str
    sidecars: list[tuple[Path, str]] = field(default_factory=list)
    problem: str | None = None
    already_there: bool = False


@dataclass
class ExportReport:
    dest: Path
    copied: list[tuple[str, str]] = field(default_factory=list)  # (album rel, DEST name)
    sidecars: list[tuple[str, str]] = field(default_factory=list)  # (album rel, DEST name)
    identical_skipped: list[str] = field(default_factory=list)  # album rels already in DEST
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason): refused
    errors: list[tuple[str, str]] = field(default_factory=list)  # (path, reason): failed
    planned: int = 0
    leftovers_removed: int = 0  # temp files of an earlier, killed export swept from DEST

    def summary(self) -> str:
        """One line, e.g. "148 images and 131 captions copied to DEST; 2 already there; 1 error"."""
        head = _plural(len(self.copied), "image")
        if self.sidecars:
            head += f" and {_plural(len(self.sidecars), 'caption')}"
        parts = [f"{head} copied to {self.dest}"]
        if self.identical_skipped:
            parts.append(f"{len(self.identical_skipped)} already there")
        if self.skipped:
            parts.append(f"{len(self.skipped)} skipped")
        if self.errors:
            parts.append(_plural(len(self.errors), "error"))
        if self.leftovers_removed:
            parts.append(
                f"removed {_plural(self.leftovers_removed, 'temporary file')} left by an interrupted export"
            )
        return "; ".join(parts)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _reason(e: OSError) -> str:
    return (e.strerror or str(e) or type(e).__name__).lower()


def _key(name: str) -> str:
    return unicodedata.normalize("NFC", name).casefold()


def _split(name: str) -> tuple[str, str]:
    p = PurePosixPath(name)
    return p.stem, p.suffix


# ---------------------------------------------------------------------------- sources


def _find_sidecars(image: Path) -> list[Path]:
    """Existing sidecars of ``image`` (same stem), in SIDECAR_EXTENSIONS order.

    Local on purpose: symlinked sidecars must be seen (and refused), not followed.
    """
    out = []
    for ext in SIDECAR_EXTENSIONS:
        cand = image.with_suffix(ext)
        if cand != image and os.path.lexists(cand):
            out.append(cand)
    return out


def _check_source(album: Path, album_real: Path, rel: str) -> tuple[Path, str | None]:
    """(source path, reason to refuse or None). Refuses symlinks anywhere under the album,
    paths escaping it, missing files and anything that is not a regular file."""
    p = PurePosixPath(rel)
    src = album.joinpath(*p.parts) if p.parts else album
    if not rel or p.is_absolute() or ".." in p.parts:
        return src, "outside the album"
    cur = album
    st = None
    for part in p.parts:
        cur = cur / part
        try:
            st = os.lstat(cur)
        except FileNotFoundError:
            return src, "missing"
        except OSError as e:
            return src, _reason(e)
        if stat.S_ISLNK(st.st_mode):
            return src, "symlink refused"
    assert st is not None
    if not stat.S_ISREG(st.st_mode):
        return src, "not a regular file"
    try:
        src.resolve().relative_to(album_real)
    except (ValueError, OSError):
        return src, "outside the album"
    return src, None


def _same_content(src: Path, target: Path, size: int) -> bool:
    try:
        if os.stat(src).st_size != size:
            return False
        with open(src, "rb") as a, open(target, "rb") as b:
            while True:
                x, y = a.read(_CHUNK), b.read(_CHUNK)
                if x != y:
                    return False
                if not x:
                    return True
    except OSError:
        return False


def _dest_state(src: Path, target: Path) -> str:
    """FREE when nothing is at ``target``, SAME when it holds ``src``'s bytes, else DIFFERENT."""
    try:
        st = os.lstat(target)
    except (FileNotFoundError, NotADirectoryError):
        return FREE
    except OSError:
        return DIFFERENT
    if not stat.S_ISREG(st.st_mode):
        return DIFFERENT
    return SAME if _same_content(src, target, st.st_size) else DIFFERENT


# ---------------------------------------------------------------------------- naming


class _Namer:
    """Hands out DEST names in the reference order, remembering what this export claimed."""

    def __init__(self, album: Path, dest: Path) -> None:
        self.album_name = album.resolve().name or "album"
        self.dest = dest
        self.taken: set[str] = set()
        self.stems: dict[str, bool] = {}  # stem key -> does its owner carry sidecars

    def candidates(self, rel: str):
        p = PurePosixPath(rel)
        stem, ext = _split(p.name)
        parent = p.parent.name or self.album_name
        yield p.name
        yield f"{parent}_{p.name}"
        n = 1
        while True:
            yield f"{parent}_{stem}_{n}{ext}"
            n += 1

    def choose(
        self, rel: str, src: Path, sidecars: list[Path]
    ) -> tuple[str, str, list[tuple[Path, str, str]]]:
        """(image name, image state, [(sidecar src, name, state)]) and claim them."""
        has_side = bool(sidecars)
        for name in self.candidates(rel):
            stem, _ = _split(name)
            side_names = [f"{stem}{s.suffix}" for s in sidecars]
            if _key(name) in self.taken or any(_key(n) in self.taken for n in side_names):
                continue
            skey = _key(stem)
            if skey in self.stems and (has_side or self.stems[skey]):
                continue
            img_state = _dest_state(src, self.dest / name)
            if img_state == DIFFERENT:
                continue
            side_states = [_dest_state(s, self.dest / n) for s, n in zip(sidecars, side_names, strict=True)]
            # A new image must not land beside someone else's caption; an image that is
            # already there keeps whatever caption the user left beside it.
            if img_state == FREE and DIFFERENT in side_states:
                continue
            self.taken.add(_key(name))
            self.taken.update(_key(n) for n in side_names)
            self.stems[skey] = self.stems.get(skey, False) or has_side
            return name, img_state, list(zip(sidecars, side_names, side_states, strict=True))
        raise AssertionError("unreachable: candidate names are endless")


def _dedupe(rels: list[str]) -> list[str]:
    return list(dict.fromkeys(rels))


def _valid_sidecars(album: Path, src: Path, skipped: list[tuple[str, str]] | None) -> list[Path]:
    out = []
    for side in _find_sidecars(src):
        try:
            st = os.lstat(side)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode):
            out.append(side)
        elif skipped is not None:
            why = "symlink refused" if stat.S_ISLNK(st.st_mode) else "not a regular file"
            skipped.append((_rel(album, side), why))
    return out


def _rel(album: Path, path: Path) -> str:
    try:
        return path.relative_to(album).as_posix()
    except ValueError:
        return str(path)


def plan_export(album: Path, rels: list[str], dest: Path) -> list[ExportItem]:
    """What ``export_images`` would do right now, for the UI's confirmation line
    ("148 images, 131 captions → DEST"); nothing is written."""
    album, dest = Path(album), Path(dest)
    album_real = album.resolve()
    namer = _Namer(album, dest)
    items = []
    for rel in _dedupe(rels):
        src, problem = _check_source(album, album_real, rel)
        if problem:
            items.append(ExportItem(rel, src, "", [], problem))
            continue
        name, state, sides = namer.choose(rel, src, _valid_sidecars(album, src, None))
        items.append(
            ExportItem(rel, src, name, [(s, n) for s, n, st in sides if st == FREE], None, state == SAME)
        )
    return items


# ---------------------------------------------------------------------------- writing


def place_no_replace(tmp: Path, final: Path) -> None:
    """Publish ``tmp`` as ``final`` without ever replacing an existing ``final``.

    Raises FileExistsError when ``final`` exists. ``tmp`` is gone afterwards on success.
    """
    try:
        os.link(tmp, final)
    except FileExistsError:
        raise
    except OSError as e:
        if e.errno not in _NO_LINK_ERRNOS:
            raise
        # No hard links here (FAT, some network shares): check, then rename. Another
        # process creating ``final`` between the two calls would be overwritten.
        if os.path.lexists(final):
            raise FileExistsError(errno.EEXIST, "file exists", str(final)) from None
        os.rename(tmp, final)
        return
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)


def _copy_one(src: Path, dest: Path, name: str, cancel: CancelFn) -> None:
    """Copy ``src`` to ``dest/name`` via a hidden temp file; never overwrites.

    Raises OSError (FileExistsError when the name was taken meanwhile) or Cancelled;
    the temp file is removed in every failure case.
    """
    fd, tmp_str = tempfile.mkstemp(prefix=f".{name[:40]}.picksel-tmp-", dir=dest)
    tmp = Path(tmp_str)
    try:
        with open(src, "rb") as fin, os.fdopen(fd, "wb") as fout:
            while True:
                if cancel():
                    raise Cancelled()
                chunk = fin.read(_CHUNK)
                if not chunk:
                    break
                fout.write(chunk)
            fout.flush()
            os.fsync(fout.fileno())
        shutil.copystat(src, tmp)
        place_no_replace(tmp, dest / name)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


LEFTOVER_AGE = 3600.0
"""Seconds since a temp file was last touched before it counts as abandoned."""


def sweep_leftovers(dest: Path, now: float | None = None) -> int:
    """Remove temp files an earlier export left in DEST when it was killed mid-copy.

    Only our own names (``.NAME.picksel-tmp-*``, ``.picksel-probe-*``), only regular
    files, and only when untouched for ``LEFTOVER_AGE``: ctime is used because copystat
    back-dates mtime and nothing can back-date ctime, so a file another export is still
    writing is never taken. Returns how many were removed."""
    now = time.time() if now is None else now
    removed = 0
    try:
        names = os.listdir(dest)
    except OSError:
        return 0
    for name in names:
        if not name.startswith(".") or not (".picksel-tmp-" in name or name.startswith(".picksel-probe-")):
            continue
        path = dest / name
        try:
            st = os.lstat(path)
            if stat.S_ISREG(st.st_mode) and now - st.st_ctime > LEFTOVER_AGE:
                os.unlink(path)
                removed += 1
        except OSError:
            continue
    return removed


class _DiskFull(Exception):
    pass


def _prepare_dest(album_real: Path, dest: Path) -> str | None:
    """Create DEST (parents too) and check it is a writable folder; reason on failure.

    DEST inside the album is refused: the next index run would take the copies for new
    images, and every later selection would see each exported image twice.
    """
    if dest.resolve().is_relative_to(album_real):
        return "is inside the album (copies would be indexed as new images); choose a folder outside it"
    if dest.exists() and not dest.is_dir():
        return "exists and is not a folder"
    try:
        dest.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".picksel-probe-", dir=dest)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        return f"cannot write there: {_reason(e)}"
    return None


def export_images(
    album: Path,
    rels: list[str],
    dest: Path,
    *,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
) -> ExportReport:
    """Copy ``rels`` (album-relative, already minus exclusions) and their sidecars to DEST.

    Every failure is recorded with its path and reason and the rest continue; a full
    disk stops the export. ``cancel()`` is honoured between and inside file copies:
    the temp file is removed, files already placed stay, and Cancelled is raised.
    """
    progress = progress or no_progress
    cancel = cancel or never_cancel
    album, dest = Path(album), Path(dest)
    rels = _dedupe(rels)
    report = ExportReport(dest=dest, planned=len(rels))
    album_real = album.resolve()
    problem = _prepare_dest(album_real, dest)
    if problem:
        report.errors.append((str(dest), problem))
        return report
    report.leftovers_removed = sweep_leftovers(dest)
    namer = _Namer(album, dest)
    total = len(rels)
    for i, rel in enumerate(rels):
        if cancel():
            raise Cancelled()
        progress(i, total, rel)
        src, refused = _check_source(album, album_real, rel)
        if refused:
            report.skipped.append((rel, refused))
            continue
        sidecars = _valid_sidecars(album, src, report.skipped)
        name, state, sides = namer.choose(rel, src, sidecars)
        try:
            _export_group(album, rel, src, dest, name, state, sides, report, cancel)
        except _DiskFull:
            left = total - i - 1
            report.errors.append((str(dest), f"no space left on device; export stopped ({left} images not tried)"))
            break
    progress(total, total, "done")
    return report


def _export_group(
    album: Path,
    rel: str,
    src: Path,
    dest: Path,
    name: str,
    state: str,
    sides: list[tuple[Path, str, str]],
    report: ExportReport,
    cancel: CancelFn,
) -> None:
    if state == SAME:
        report.identical_skipped.append(rel)
    else:
        outcome = _try_copy(rel, src, dest, name, report, cancel)
        if outcome is None:
            return  # no caption without its image
        if outcome == SAME:
            report.identical_skipped.append(rel)
        else:
            report.copied.append((rel, name))
    for side, side_name, side_state in sides:
        side_rel = _rel(album, side)
        if side_state == SAME:
            continue
        if side_state == DIFFERENT:
            report.skipped.append((side_rel, f"a different {side_name} is already in {dest}; kept it"))
            continue
        # captions are small; not cancellable so an image never loses its caption midway
        if _try_copy(side_rel, side, dest, side_name, report, never_cancel) == "copied":
            report.sidecars.append((side_rel, side_name))


def _try_copy(
    rel: str, src: Path, dest: Path, name: str, report: ExportReport, cancel: CancelFn
) -> str | None:
    """Returns "copied", SAME (identical bytes appeared meanwhile) or None after recording an error."""
    try:
        _copy_one(src, dest, name, cancel)
    except FileExistsError:
        if _dest_state(src, dest / name) == SAME:
            return SAME
        report.errors.append((rel, f"{name} appeared in {dest} during the export; not overwritten"))
        return None
    except OSError as e:
        report.errors.append((rel, _reason(e)))
        if e.errno in _DISK_FULL_ERRNOS:
            raise _DiskFull() from e
        return None
    return "copied"
