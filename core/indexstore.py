"""Which index file in a state folder belongs to which album and encoder.

Why: an index can cost hours of GPU time, so no index is ever replaced unless it is
picksel's own for this album, and switching encoders never throws vectors away.

- The active index is ``index.npz`` (what ``load_index`` returns, the name older
  versions read). When the album switches encoder, the previous one is kept as
  ``index-<encoder>.npz`` beside it; switching back starts from it, so unchanged images
  are not encoded again.
- Every index records the album it was built for (its resolved path). An index in the
  album's own ``.picksel`` is always this album's (renamed or moved albums included).
  One in a ``--state-dir`` folder is this album's when the recorded path matches, or —
  for an album that was moved, or an index written before paths were recorded — when
  most of a sample of its images exist in the album. Anything else there (another
  album's index, a file that is not a picksel index) is moved aside to
  ``NAME.foreign-<time>``, never overwritten.
- Temp files of a save that was killed are swept (see ``picksel.fsutil.sweep_temps``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import time
from pathlib import Path

import numpy as np

from picksel.fsutil import atomic_write, sweep_temps, temp_pattern
from picksel.npzio import NpzError, npz_keys, read_npz

INDEX_FILENAME = "index.npz"
TEMPS = temp_pattern(r"index(?:-[A-Za-z0-9_.+-]+)?\.npz")
SAMPLE = 32
"""Paths checked (spread over the index) to recognise a moved album's index."""


def album_identity(album: Path) -> str:
    return os.path.realpath(album)


def stash_path(sdir: Path, encoder: str, source: str = "picksel") -> Path:
    """``index-<encoder>.npz``: readable, and a short hash keeps distinct ids distinct."""
    key = encoder if source == "picksel" else f"{source}-{encoder}"
    safe = re.sub(r"[^A-Za-z0-9_.+-]+", "_", key).strip("._")[:60] or "encoder"
    digest = hashlib.sha1(key.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return Path(sdir) / f"index-{safe}-{digest}.npz"


def sweep(sdir: Path) -> int:
    """Remove index temp files left by killed saves (never raises)."""
    return sweep_temps(Path(sdir), TEMPS)


def peek(path: Path) -> tuple[str, str] | None:
    """(encoder, source) of an index file from its small fields; None when the file is
    missing or not a readable picksel index."""
    try:
        arrays = read_npz(path, ("encoder", "source"))
    except (OSError, NpzError):
        return None
    enc, src = arrays.get("encoder"), arrays.get("source")
    if enc is None or src is None or enc.shape != () or src.shape != ():
        return None
    if enc.dtype.kind != "U" or src.dtype.kind != "U":
        return None
    return str(enc), str(src)


def recorded_album(arrays: dict[str, np.ndarray]) -> str | None:
    a = arrays.get("album")
    return str(a) if a is not None and a.shape == () and a.dtype.kind == "U" else None


def belongs_here(album: Path, recorded: str | None, paths: list[str]) -> bool:
    """True when an index recording ``recorded`` and listing ``paths`` is this album's."""
    if recorded is not None and recorded == album_identity(album):
        return True
    if not paths:
        return recorded is None  # an old empty index: nothing to lose either way
    step = max(1, len(paths) // SAMPLE)
    sample = paths[::step][:SAMPLE]
    root = Path(album)
    hits = sum(1 for p in sample if (root / p).is_file())
    return 2 * hits >= len(sample)


def foreign_reason(path: Path, album: Path) -> str | None:
    """Why the index file at ``path`` (in a --state-dir) is not this album's; None when it
    is (or there is no file)."""
    if not path.exists() and not path.is_symlink():
        return None
    if path.is_symlink() or not path.is_file():
        return "it is not a regular file"
    try:
        if "paths" not in npz_keys(path):
            return "it is not a picksel index"
        arrays = read_npz(path, ("album", "paths"))
    except (OSError, NpzError):
        return "it is not a readable picksel index"
    paths = arrays["paths"]
    if paths.ndim != 1 or paths.dtype.kind not in "Uf":
        return "it is not a picksel index"
    recorded = recorded_album(arrays)
    if belongs_here(album, recorded, paths.tolist() if paths.dtype.kind == "U" else []):
        return None
    return f"it belongs to another album ({recorded})" if recorded else "it belongs to another album"


def move_aside(path: Path) -> Path:
    """Rename ``path`` to ``NAME.foreign-<time>`` (a new name: never replaces a file)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in range(1000):
        dest = path.with_name(f"{path.name}.foreign-{stamp}" + (f"-{n}" if n else ""))
        try:
            os.link(path, dest, follow_symlinks=False)  # fails if dest exists: no overwrite
        except FileExistsError:
            continue
        except OSError:  # no hard links here (some network/FAT file systems)
            if dest.exists() or dest.is_symlink():
                continue
            os.rename(path, dest)
            return dest
        os.unlink(path)
        return dest
    raise OSError(f"cannot find a free name to move {path} aside")


def claim(path: Path, album: Path, messages: list[str]) -> None:
    """Make sure ``path`` can be written for this album: a file there that is not this
    album's index is moved aside, with a message."""
    why = foreign_reason(path, album)
    if why is None:
        return
    dest = move_aside(path)
    messages.append(f"{path} was not replaced: {why}; it was moved to {dest.name}")


def keep_copy(src: Path, dest: Path) -> None:
    """``dest`` becomes a copy of ``src`` (a hard link when possible: instant, no space)."""
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}link.tmp")
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        os.link(src, tmp)
        os.replace(tmp, dest)
        return
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    with open(src, "rb") as fin, atomic_write(dest, "wb") as fout:
        shutil.copyfileobj(fin, fout, 1 << 22)
