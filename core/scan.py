"""Find the images of an album quickly and safely.

Re-indexing an unchanged album must be cheap (a 10,000-image album re-indexes in well
under two seconds), so the walk uses ``os.scandir`` and the stat data it carries instead
of ``Path.rglob``. The album is a user's folder and may contain symlinks: we never follow
one that resolves outside the album (exporting or indexing someone else's files by
accident is worse than missing a few), and a directory reached twice (symlink loop or
alias) is walked once.

A folder that cannot be listed (``lost+found`` at a mount root, a path longer than the
system allows, a disk error) is skipped and reported, never fatal: one odd folder must
not stop every re-index. Only the album folder itself must be readable — an empty scan
of an unreadable album would otherwise look like every image was deleted.
"""

from __future__ import annotations

import errno
import os
import stat as stat_mod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from picksel.errors import CancelFn, Cancelled, PickselError, ProgressFn

_BASE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")


def _heif_extensions() -> tuple[str, ...]:
    """HEIC/HEIF are only listed when pillow-heif can actually decode them."""
    try:
        import pillow_heif  # type: ignore[import-not-found]
    except ImportError:
        return ()
    try:
        pillow_heif.register_heif_opener()
    except Exception:  # pragma: no cover - a broken install should not break scanning
        return ()
    return (".heic", ".heif")


HEIF_SUPPORTED: bool = bool(_heif_extensions())
IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    _BASE_EXTENSIONS + ((".heic", ".heif") if HEIF_SUPPORTED else ())
)
SIDECAR_EXTENSIONS: tuple[str, ...] = (".txt", ".caption", ".json")

# Folders that belong to tools, not to the album: our own state and PhotoMapAI's index.
SKIPPED_DIRS: frozenset[str] = frozenset({".picksel", "photomap_index"})


@dataclass(frozen=True)
class ImageEntry:
    """One image file: where it is (relative POSIX path) and the stat data that tells
    whether its embedding is still valid."""

    rel: str
    size: int
    mtime: float


def _why(exc: OSError) -> str:
    return (exc.strerror or type(exc).__name__).lower()


def _short(rel: str, limit: int = 80) -> str:
    """A folder path that fits a message line (deep trees can be thousands of bytes)."""
    return rel if len(rel) <= limit else f"{rel[: limit // 2 - 1]}…{rel[-(limit // 2 - 1):]}"


def unreadable_folders_message(folders: list[tuple[str, str]], limit: int = 3) -> str:
    """'2 folders could not be read and were skipped: lost+found (permission denied), …'"""
    n = len(folders)
    shown = ", ".join(f"{_short(rel)} ({why})" for rel, why in folders[:limit])
    more = f", and {n - limit} more" if n > limit else ""
    verb = "folder could not be read and was" if n == 1 else "folders could not be read and were"
    return f"{n} {verb} skipped: {shown}{more}"


def is_image_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def scan_album(
    root: Path,
    *,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
    unreadable: list[tuple[str, str]] | None = None,
) -> list[ImageEntry]:
    """All images below ``root``, sorted by relative path.

    Skips hidden entries (name starting with '.'), ``.picksel/`` and ``photomap_index/``,
    symlinks resolving outside the album, and directories already visited (loops).
    Sub-folders that cannot be listed are skipped and appended to ``unreadable`` as
    (relative path, reason); an unreadable album folder raises ``PickselError``.
    ``progress(found, 0, message)`` is called per directory (the total is unknown while
    walking); ``cancel`` is checked per directory and raises ``Cancelled``.
    """
    root = Path(root)
    if not root.is_dir():
        raise PickselError(f"album folder not found: {root}")
    real_root = os.path.realpath(root)
    found: list[ImageEntry] = []
    try:
        root_st = os.stat(real_root)
    except OSError as exc:
        raise PickselError(f"cannot read album folder {root}: {exc.strerror}") from exc
    visited: set[tuple[int, int]] = {(root_st.st_dev, root_st.st_ino)}
    # Stack of (filesystem path to list, relative prefix with trailing '/').
    stack: list[tuple[str, str]] = [(str(root), "")]
    dirs_done = 0
    while stack:
        if cancel is not None and cancel():
            raise Cancelled()
        dir_path, prefix = stack.pop()
        subdirs: list[tuple[str, str]] = []
        try:
            for entry in _listing(dir_path):
                name = entry.name
                if name.startswith(".") or name in SKIPPED_DIRS:
                    continue
                try:
                    if entry.is_symlink():
                        target = os.path.realpath(entry.path)
                        if not _inside(target, real_root):
                            continue
                        st = os.stat(target)
                    else:
                        st = entry.stat(follow_symlinks=False)
                except OSError as exc:
                    # A dangling link or a vanished file is nothing to report; a folder
                    # we cannot even stat (path too long, i/o error) is.
                    if exc.errno != errno.ENOENT and unreadable is not None and _is_dir(entry):
                        unreadable.append((prefix + name, _why(exc)))
                    continue
                mode = st.st_mode
                if stat_mod.S_ISDIR(mode):
                    key = (st.st_dev, st.st_ino)
                    if key in visited:
                        continue
                    visited.add(key)
                    subdirs.append((entry.path, prefix + name + "/"))
                elif stat_mod.S_ISREG(mode) and is_image_name(name):
                    found.append(ImageEntry(prefix + name, int(st.st_size), float(st.st_mtime)))
        except OSError as exc:
            if not prefix:
                raise PickselError(f"cannot read album folder {root}: {_why(exc)}") from exc
            # Skip it (what it listed before failing is kept) rather than fail the album.
            if unreadable is not None:
                unreadable.append((prefix.rstrip("/"), _why(exc)))
        # Push in reverse so sub-folders are walked in name order (deterministic
        # "first visit wins" when two paths reach the same folder).
        subdirs.sort(reverse=True)
        stack.extend(subdirs)
        dirs_done += 1
        if progress is not None:
            progress(len(found), 0, f"scanning: {len(found)} images in {dirs_done} folders")
    found.sort(key=lambda e: e.rel)
    return found


def _is_dir(entry: os.DirEntry[str]) -> bool:
    """From the listing's own type field: no system call for a real folder."""
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False


def _listing(path: str) -> Iterator[os.DirEntry[str]]:
    """``os.scandir`` that closes its handle; OSError on opening or while reading."""
    with os.scandir(path) as it:
        yield from it


def find_sidecars(image_path: Path) -> list[Path]:
    """Caption/metadata files that travel with an image (``a.jpg`` → ``a.txt``,
    ``a.caption``, ``a.json``), in ``SIDECAR_EXTENSIONS`` order."""
    image_path = Path(image_path)
    out = []
    for ext in SIDECAR_EXTENSIONS:
        candidate = image_path.with_suffix(ext)
        if candidate != image_path and candidate.is_file():
            out.append(candidate)
    return out
