"""Helpers for the export tests: tiny albums of byte files and DEST listings."""

from __future__ import annotations

import os
from pathlib import Path


def make_album(root: Path, files: dict[str, bytes]) -> Path:
    """Create ``root`` with ``files`` (album-relative POSIX path -> content)."""
    root.mkdir(parents=True, exist_ok=True)
    for rel, data in files.items():
        path = root.joinpath(*rel.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


MANIFEST = ".picksel-export.json"


def listing(dest: Path) -> dict[str, bytes]:
    """Every entry in DEST (hidden ones too, so a leftover temp file fails a test) but the
    export manifest (tested on its own)."""
    if not dest.exists():
        return {}
    return {name: (dest / name).read_bytes() for name in sorted(os.listdir(dest)) if name != MANIFEST}


def stem(name: str) -> str:
    return Path(name).stem
