"""Where picksel keeps its files for an album."""

from __future__ import annotations

from pathlib import Path

STATE_DIRNAME = ".picksel"


def state_dir(album: Path, override: Path | None = None) -> Path:
    """``ALBUM/.picksel`` unless ``--state-dir`` moved it (for read-only albums)."""
    return Path(override) if override is not None else Path(album) / STATE_DIRNAME
