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

A folder is one training set, so two selections are never mixed silently: when DEST's
top level holds images that are not part of this selection (an earlier export, or files
picksel never wrote), ``export_images`` refuses before copying anything unless told to
merge with them or to replace them; replacing moves them and their captions into
``DEST/.picksel-replaced-TIME/`` (nothing is ever deleted). What was written, from which
album and when, is kept in ``DEST/.picksel-export.json`` (``picksel.export_manifest``).

Only images are exported: with ``indexed`` (the album index's paths) anything else the
saved selection names is left out up front; without it, hidden entries, non-image names,
``.`` and paths leaving the album are refused per entry. Symlinks are followed as the
scanner follows them: a link resolving inside the album exports its content, a link
leaving the album is refused. Names are fitted to DEST's byte limit (``PC_NAME_MAX``):
the stem is cut on a character boundary, the ``_N`` suffix and extension are kept, and
room is left for the longest sidecar extension.
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
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from picksel.errors import CancelFn, Cancelled, PickselError, ProgressFn, never_cancel, no_progress
from picksel.export_manifest import MANIFEST_NAME, Manifest, now_iso, read_manifest, write_manifest
from picksel.indexed import split_indexed
from picksel.scan import SIDECAR_EXTENSIONS, is_image_name

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
    notes: list[tuple[str, str]] = field(default_factory=list)  # (sidecar rel, why not copied)
    sidecar_rels: list[str] = field(default_factory=list)  # album rels of ``sidecars``


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
    left_out: list[str] = field(default_factory=list)  # saved entries that are not indexed images
    merged_with: int = 0  # images not in this selection that DEST held and kept (--merge)
    replaced: list[str] = field(default_factory=list)  # DEST names moved into ``replaced_to``
    replaced_to: Path | None = None

    def summary(self) -> str:
        """One line, e.g. "148 images and 131 captions copied to DEST; 2 already there; 1 error"."""
        head = _plural(len(self.copied), "image")
        if self.sidecars:
            head += f" and {_plural(len(self.sidecars), 'caption')}"
        parts = [f"{head} copied to {self.dest}"]
        if self.replaced_to is not None:
            parts.append(f"moved {_plural(len(self.replaced), 'earlier file')} into {self.replaced_to}")
        if self.merged_with:
            parts.append(f"added to {_plural(self.merged_with, 'image')} not in this selection")
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


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _find_sidecars(image: Path) -> list[Path]:
    """Existing sidecars of ``image`` (same stem, links too), in SIDECAR_EXTENSIONS order."""
    out = []
    for ext in SIDECAR_EXTENSIONS:
        cand = image.with_suffix(ext)
        if cand != image and os.path.lexists(cand):
            out.append(cand)
    return out


def _resolve_in_album(album: Path, album_real: Path, rel: str) -> tuple[Path, str | None]:
    """(real path to read, reason to refuse or None) for an album-relative path.

    Symlinks are followed as the scanner follows them (it indexes links that resolve
    inside the album, so those must export): the content of a link resolving inside the
    album is copied, a link leaving the album is refused."""
    p = PurePosixPath(rel)
    if not p.parts or p.is_absolute() or ".." in p.parts:
        return album, "outside the album"
    path = album.joinpath(*p.parts)
    try:
        real = os.path.realpath(path, strict=True)
    except FileNotFoundError:
        return path, "missing"
    except OSError as e:
        return path, _reason(e)
    if not _inside(real, str(album_real)):
        linked = any(os.path.islink(album.joinpath(*p.parts[: i + 1])) for i in range(len(p.parts)))
        return path, "symlink leaves the album" if linked else "outside the album"
    try:
        st = os.stat(real)
    except OSError as e:
        return path, _reason(e)
    if not stat.S_ISREG(st.st_mode):
        return path, "not a regular file"
    return Path(real), None


def _check_source(album: Path, album_real: Path, rel: str) -> tuple[Path, str | None]:
    """(real source path, reason to refuse or None) for an image of the selection.

    Besides what ``_resolve_in_album`` refuses: hidden entries and files that are not
    images (a caption, ``.picksel/index.npz``) are never exported, whatever state.json says."""
    p = PurePosixPath(rel)
    if not p.parts:
        return album, "not an image file"
    if not p.is_absolute() and ".." not in p.parts:
        if any(part.startswith(".") for part in p.parts):
            return album, "hidden, not an album image"
        if not is_image_name(p.name):
            return album, "not an image file"
    return _resolve_in_album(album, album_real, rel)


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
    """FREE when nothing is at ``target``, SAME when it holds ``src``'s bytes, else DIFFERENT.

    Raises OSError when DEST cannot be looked at (no search permission...): no name
    could ever be found free then, and guessing "taken" would try names forever."""
    try:
        st = os.lstat(target)
    except (FileNotFoundError, NotADirectoryError):
        return FREE
    if not stat.S_ISREG(st.st_mode):
        return DIFFERENT
    return SAME if _same_content(src, target, st.st_size) else DIFFERENT


# ---------------------------------------------------------------------------- naming

NAME_MAX_FALLBACK = 255


def name_max(dest: Path) -> int:
    """Longest file name in bytes DEST's filesystem takes (its nearest existing folder's)."""
    for p in (dest, *dest.parents):
        try:
            value = os.pathconf(p, "PC_NAME_MAX")
        except FileNotFoundError:
            continue
        except (OSError, ValueError):
            break
        return value if value and value > 0 else NAME_MAX_FALLBACK
    return NAME_MAX_FALLBACK


def _nbytes(text: str) -> int:
    return len(text.encode("utf-8", "surrogateescape"))


def fit_bytes(text: str, room: int) -> str:
    """``text`` cut to at most ``room`` UTF-8 bytes, on a character boundary."""
    if _nbytes(text) <= room:
        return text
    used = 0
    for i, ch in enumerate(text):
        used += _nbytes(ch)
        if used > room:
            return text[:i]
    return text


class _Namer:
    """Hands out DEST names in the reference order, remembering what this export claimed.

    Linear in the number of clashes: the next number to try is kept per
    ``parent_stem.ext``, so the 1,500th image named ``a.png`` does not walk past the
    1,499 names its predecessors took. Names are fitted to the filesystem's byte limit
    (the stem is cut, the ``_N`` suffix and the extension are kept, and the stem leaves
    room for the longest sidecar extension)."""

    def __init__(self, album: Path, dest: Path) -> None:
        self.album_name = album.resolve().name or "album"
        self.dest = dest
        self.limit = name_max(dest)
        self.taken: set[str] = set()
        self.stems: dict[str, bool] = {}  # stem key -> does its owner carry sidecars
        self.next_n: dict[str, int] = {}  # "parent_stem.ext" key -> next number to try
        self.checks = 0  # names looked at, for tests that count work

    def candidates(self, rel: str, sidecars: list[Path]):
        """(name, numbered key or None, n) in the reference order, endless."""
        p = PurePosixPath(rel)
        stem, ext = _split(p.name)
        parent = p.parent.name or self.album_name
        widest = max([_nbytes(ext)] + [_nbytes(s.suffix) for s in sidecars])
        room = self.limit - widest
        yield fit_bytes(stem, room) + ext, None, 0
        base = f"{parent}_{stem}"
        yield fit_bytes(base, room) + ext, None, 0
        key = _key(base + ext)
        n = self.next_n.get(key, 1)
        while True:
            suffix = f"_{n}"
            yield fit_bytes(base, room - len(suffix)) + suffix + ext, key, n
            n += 1

    def choose(
        self, rel: str, src: Path, sidecars: list[Path]
    ) -> tuple[str, str, list[tuple[Path, str, str]]]:
        """(image name, image state, [(sidecar src, name, state)]) and claim them.

        Raises OSError when DEST cannot be examined."""
        has_side = bool(sidecars)
        for name, key, n in self.candidates(rel, sidecars):
            self.checks += 1
            if key is not None:
                self.next_n[key] = n + 1
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


def _sidecars_of(
    album: Path, album_real: Path, image: Path
) -> tuple[list[Path], list[Path], list[tuple[str, str]]]:
    """(real sidecar paths to copy, their album paths, [(album rel, reason)] refused).

    ``image`` is the album path (a link's own name): sidecars travel with the name the
    album shows, and follow symlinks under the same rule as images."""
    real_paths, album_paths, refused = [], [], []
    for side in _find_sidecars(image):
        rel = _rel(album, side)
        real, why = _resolve_in_album(album, album_real, rel)
        if why is None:
            real_paths.append(real)
            album_paths.append(side)
        elif why != "missing":
            refused.append((rel, why))
    return real_paths, album_paths, refused


def _rel(album: Path, path: Path) -> str:
    try:
        return path.relative_to(album).as_posix()
    except ValueError:
        return str(path)


def plan_export(album: Path, rels: list[str], dest: Path, *, namer: _Namer | None = None) -> list[ExportItem]:
    """What ``export_images`` would do right now, for the UI's confirmation line
    ("148 images, 131 captions → DEST"); nothing is written."""
    album, dest = Path(album), Path(dest)
    album_real = album.resolve()
    namer = namer or _Namer(album, dest)
    items = []
    for rel in _dedupe(rels):
        src, problem = _check_source(album, album_real, rel)
        if problem:
            items.append(ExportItem(rel, src, "", [], problem))
            continue
        p = PurePosixPath(rel)
        real_sides, album_sides, notes = _sidecars_of(album, album_real, album.joinpath(*p.parts))
        try:
            name, state, sides = namer.choose(rel, src, real_sides)
        except OSError as e:
            items.append(ExportItem(rel, src, "", [], f"cannot look into {dest}: {_reason(e)}"))
            continue
        item = ExportItem(rel, src, name, [], None, state == SAME, notes=notes)
        for (side_src, side_name, side_state), side_album in zip(sides, album_sides, strict=True):
            side_rel = _rel(album, side_album)
            if side_state == FREE:
                item.sidecars.append((side_src, side_name))
                item.sidecar_rels.append(side_rel)
            elif side_state == DIFFERENT:
                item.notes.append((side_rel, f"a different {side_name} is already in {dest}; kept it"))
        items.append(item)
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
    fd, tmp_str = tempfile.mkstemp(prefix=f".{fit_bytes(name, 40)}.picksel-tmp-", dir=dest)
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


@dataclass
class DestSurvey:
    """The images already in DEST that are not part of this export's selection.

    Only DEST's top level counts (an export is flat); identical copies of images of this
    selection are not counted (they are this selection). ``foreign`` are those without
    an entry in picksel's manifest: images picksel did not write (or wrote before it
    kept a manifest)."""

    dest: Path
    others: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)
    note: str | None = None

    def line(self) -> str:
        """E.g. "122 images here are not in this selection (22 of them not written by picksel)"."""
        n = len(self.others)
        text = f"{_plural(n, 'image')} here {'is' if n == 1 else 'are'} not in this selection"
        k = len(self.foreign)
        if k and n == 1:
            text += " (it was not written by picksel)"
        elif k:
            text += " (none of them written by picksel)" if k == n else f" ({k} of them not written by picksel)"
        return text


def replaced_folder_name(when: float | None = None) -> str:
    return ".picksel-replaced-" + time.strftime("%Y%m%d-%H%M%S", time.localtime(when))


class DestHasOtherImages(PickselError):
    """DEST holds images outside this selection and the caller chose neither merge nor replace."""

    def __init__(self, survey: DestSurvey) -> None:
        self.survey = survey
        super().__init__(
            f"{survey.dest}: {survey.line()}; add --merge to add this selection to them, or"
            f" --replace to move them into {survey.dest}/{replaced_folder_name()}/"
            " (nothing is deleted), or choose another folder"
        )


def _dest_images(dest: Path) -> list[str]:
    """Image names at DEST's top level (not hidden; files or links to files)."""
    try:
        entries = list(os.scandir(dest))
    except OSError:
        return []
    out = []
    for entry in entries:
        if entry.name.startswith(".") or not is_image_name(entry.name):
            continue
        with contextlib.suppress(OSError):
            if entry.is_file() or entry.is_symlink():
                out.append(entry.name)
    return sorted(out)


def survey_dest(dest: Path, items: list[ExportItem], manifest: Manifest | None = None) -> DestSurvey:
    """What DEST holds besides this selection; reads only (nothing is written)."""
    dest = Path(dest)
    manifest = manifest if manifest is not None else read_manifest(dest)
    ours = {_key(it.dest_name) for it in items if it.already_there}
    others = [name for name in _dest_images(dest) if _key(name) not in ours]
    foreign = [name for name in others if name not in manifest.files]
    return DestSurvey(dest, others, foreign, manifest.note)


@dataclass
class ExportReview:
    """Everything the UI shows before copying: the plan, DEST's other images, and the
    entries of the saved selection that are not indexed images (left out)."""

    items: list[ExportItem]
    survey: DestSurvey
    left_out: list[str] = field(default_factory=list)


def review_export(
    album: Path, rels: list[str], dest: Path, *, indexed: Collection[str] | None = None
) -> ExportReview:
    """``plan_export`` plus ``survey_dest``, after leaving out non-indexed entries."""
    left_out: list[str] = []
    if indexed is not None:
        rels, left_out = split_indexed(rels, indexed)
    items = plan_export(album, rels, dest)
    return ExportReview(items, survey_dest(Path(dest), items), left_out)


def _move_others_aside(
    dest: Path, survey: DestSurvey, manifest: Manifest, report: ExportReport
) -> None:
    """Move the images not in this selection (and captions no staying image shares) into
    a fresh ``DEST/.picksel-replaced-TIME/``; never overwrites, never deletes."""
    base = replaced_folder_name()
    folder = dest / base
    for n in range(2, 1000):
        try:
            folder.mkdir()
            break
        except FileExistsError:
            folder = dest / f"{base}-{n}"
    staying = {_split(name)[0] for name in _dest_images(dest)} - {_split(n)[0] for n in survey.others}
    moving: list[str] = []
    for name in survey.others:
        moving.append(name)
        stem = _split(name)[0]
        if stem in staying:
            continue
        for ext in SIDECAR_EXTENSIONS:
            side = f"{stem}{ext}"
            if side not in moving and os.path.lexists(dest / side):
                moving.append(side)
    report.replaced_to = folder
    for name in moving:
        try:
            if os.path.lexists(folder / name):
                raise FileExistsError(errno.EEXIST, "file exists")
            os.rename(dest / name, folder / name)
        except OSError as e:
            report.errors.append((name, f"cannot move it into {folder}: {_reason(e)}"))
            continue
        report.replaced.append(name)
        entry = manifest.files.pop(name, None)
        if entry is not None:
            manifest.files[f"{folder.name}/{name}"] = entry


def export_images(
    album: Path,
    rels: list[str],
    dest: Path,
    *,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
    indexed: Collection[str] | None = None,
    others: str | None = None,
) -> ExportReport:
    """Copy ``rels`` (album-relative, already minus exclusions) and their sidecars to DEST.

    ``indexed``: the album index's paths; entries not among them are left out
    (``report.left_out``) before anything is copied. ``others`` says what to do when DEST
    holds images that are not in this selection: None refuses (DestHasOtherImages,
    nothing copied), ``"merge"`` adds to them, ``"replace"`` moves them aside first.

    Every failure is recorded with its path and reason and the rest continue; a full
    disk stops the export. ``cancel()`` is honoured between and inside file copies:
    the temp file is removed, files already placed stay, and Cancelled is raised.
    """
    if others not in (None, "merge", "replace"):
        raise ValueError(f"others must be None, 'merge' or 'replace', not {others!r}")
    progress = progress or no_progress
    cancel = cancel or never_cancel
    album, dest = Path(album), Path(dest)
    rels = _dedupe(rels)
    report = ExportReport(dest=dest)
    if indexed is not None:
        rels, report.left_out = split_indexed(rels, indexed)
    report.planned = len(rels)
    album_real = album.resolve()
    problem = _prepare_dest(album_real, dest)
    if problem:
        report.errors.append((str(dest), problem))
        return report
    report.leftovers_removed = sweep_leftovers(dest)
    items = plan_export(album, rels, dest)
    manifest = read_manifest(dest)
    survey = survey_dest(dest, items, manifest)
    if survey.others:
        if others is None:
            raise DestHasOtherImages(survey)
        if others == "merge":
            report.merged_with = len(survey.others)
        else:
            _move_others_aside(dest, survey, manifest, report)
            items = plan_export(album, rels, dest)  # the freed names may be used now
    stamp = now_iso()
    album_name = str(album_real)
    try:
        _copy_items(items, album, dest, report, progress, cancel)
    finally:
        for rel, name in report.copied + [(it.rel, it.dest_name) for it in items if it.already_there]:
            manifest.files[name] = {"album": album_name, "source": rel, "kind": "image", "exported": stamp}
        for rel, name in report.sidecars:
            manifest.files[name] = {"album": album_name, "source": rel, "kind": "caption", "exported": stamp}
        manifest.exports.append({
            "album": album_name, "time": stamp, "images": len(report.copied),
            "already_there": len(report.identical_skipped), "mode": others or "new",
            **({"replaced_to": report.replaced_to.name} if report.replaced_to else {}),
        })
        try:
            write_manifest(dest, manifest)
        except OSError as e:
            report.errors.append((str(dest / MANIFEST_NAME), f"cannot write the export manifest: {_reason(e)}"))
    progress(len(items), len(items), "done")
    return report


def _copy_items(
    items: list[ExportItem],
    album: Path,
    dest: Path,
    report: ExportReport,
    progress: ProgressFn,
    cancel: CancelFn,
) -> None:
    total = len(items)
    for i, item in enumerate(items):
        if cancel():
            raise Cancelled()
        progress(i, total, item.rel)
        if item.problem:
            report.skipped.append((item.rel, item.problem))
            continue
        report.skipped.extend(item.notes)
        try:
            _export_group(item, dest, report, cancel)
        except _DiskFull:
            left = total - i - 1
            report.errors.append((str(dest), f"no space left on device; export stopped ({left} images not tried)"))
            break


def _export_group(item: ExportItem, dest: Path, report: ExportReport, cancel: CancelFn) -> None:
    if item.already_there:
        report.identical_skipped.append(item.rel)
    else:
        outcome = _try_copy(item.rel, item.src, dest, item.dest_name, report, cancel)
        if outcome is None:
            return  # no caption without its image
        if outcome == SAME:
            report.identical_skipped.append(item.rel)
        else:
            report.copied.append((item.rel, item.dest_name))
    for (side, side_name), side_rel in zip(item.sidecars, item.sidecar_rels, strict=True):
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
