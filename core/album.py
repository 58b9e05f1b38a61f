"""Where picksel keeps its files for an album."""

from __future__ import annotations

from pathlib import Path

from picksel.errors import PickselError

STATE_DIRNAME = ".picksel"


def state_dir(album: Path, override: Path | None = None) -> Path:
    """``ALBUM/.picksel`` unless ``--state-dir`` moved it (for read-only albums).

    A ``.picksel`` that is a symlink is refused: writing through it would put this
    album's index and state into whatever folder it points at (another album's, say) and
    replace the files there. ``--state-dir`` is the explicit way to keep them elsewhere."""
    if override is not None:
        return Path(override)
    sdir = Path(album) / STATE_DIRNAME
    if sdir.is_symlink():
        raise PickselError(
            f"{sdir} is a symbolic link; picksel does not write through it "
            "(remove the link, or pass --state-dir DIR to keep picksel's files elsewhere)"
        )
    return sdir
