"""``DEST/.picksel-export.json``: what picksel wrote into an export folder, from which
album, when.

It lets the next export tell an earlier export of this album from files picksel never
wrote, and lets the user see where a training set came from. DEST is the user's folder
(or anyone's), so the file is read defensively: no symlink followed, regular files only,
at most ``MAX_BYTES``, plain JSON (never pickle), and entries of the wrong shape are
dropped one by one. An unreadable manifest is moved aside (never deleted) before a new
one is written. Writes are atomic (temp file + ``os.replace``), and the temp name
carries ``.picksel-tmp-`` so a killed export's leftover is swept like the image temps.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from picksel.filemode import chmod_like_new_file
from picksel.saferead import FileTooLarge, NotRegularFile, read_regular_file

MANIFEST_NAME = ".picksel-export.json"
MANIFEST_VERSION = 1
MAX_BYTES = 32 << 20
MAX_HISTORY = 200


@dataclass
class Manifest:
    """``files``: DEST name -> {"album", "source", "kind", "exported"};
    ``exports``: one short record per export run, newest last."""

    files: dict[str, dict[str, str]] = field(default_factory=dict)
    exports: list[dict[str, object]] = field(default_factory=list)
    note: str | None = None  # why an existing manifest was ignored
    unreadable: bool = False  # an existing file is in the way and must be moved aside


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def _read_bytes(path: Path) -> bytes | None:
    """The file's bytes, or None when it does not exist; ValueError when it is not a
    small regular file (DEST is not ours: a link there is never followed)."""
    try:
        return read_regular_file(path, MAX_BYTES, follow_symlinks=False)
    except FileNotFoundError:
        return None
    except NotRegularFile as e:
        raise ValueError("is not a regular file") from e
    except FileTooLarge as e:
        raise ValueError(f"is larger than {MAX_BYTES >> 20} MB") from e
    except OSError as e:
        raise ValueError(f"cannot be opened ({(e.strerror or str(e)).lower()})") from e


def read_manifest(dest: Path) -> Manifest:
    path = Path(dest) / MANIFEST_NAME
    try:
        data = _read_bytes(path)
        if data is None:
            return Manifest()
        doc = json.loads(data.decode("utf-8", "surrogateescape"))
        if not isinstance(doc, dict) or doc.get("picksel_export") != MANIFEST_VERSION:
            raise ValueError("is not a picksel export manifest")
    except (ValueError, RecursionError, UnicodeError) as e:
        return Manifest(note=f"{path} {e}; ignored", unreadable=os.path.lexists(path))
    files: dict[str, dict[str, str]] = {}
    raw_files = doc.get("files")
    if isinstance(raw_files, dict):
        for name, entry in raw_files.items():
            if (isinstance(entry, dict) and "/" not in name
                    and all(isinstance(v, str) for v in entry.values())):
                files[name] = dict(entry)
    raw_exports = doc.get("exports")
    exports = [e for e in raw_exports if isinstance(e, dict)] if isinstance(raw_exports, list) else []
    return Manifest(files=files, exports=exports[-MAX_HISTORY:])


def _move_aside(path: Path) -> None:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in range(1000):
        aside = path.with_name(f"{path.name}.unreadable-{stamp}" + (f"-{n}" if n else ""))
        if not os.path.lexists(aside):
            os.rename(path, aside)
            return


def write_manifest(dest: Path, manifest: Manifest) -> None:
    """Atomically replace DEST's manifest; raises OSError."""
    dest = Path(dest)
    path = dest / MANIFEST_NAME
    if manifest.unreadable and os.path.lexists(path):
        _move_aside(path)
        manifest.unreadable = False
    doc = {
        "picksel_export": MANIFEST_VERSION,
        "about": "written by picksel: the images it exported here, from which album, when",
        "files": dict(sorted(manifest.files.items())),
        "exports": manifest.exports[-MAX_HISTORY:],
    }
    text = json.dumps(doc, ensure_ascii=True, indent=1) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=f"{MANIFEST_NAME}.picksel-tmp-", dir=dest)
    try:
        chmod_like_new_file(fd)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
