"""Which entries of a saved selection are images of the album, by the album's index.

state.json is a user-editable file: an entry ``.``, ``../../etc/passwd``, a caption or
``.picksel/index.npz`` must never reach an export or be listed as Included. The index
holds exactly the images the scanner accepted, so it is the one list to check against.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

SHOWN = 5
"""How many left-out entries the one-line report names."""


def split_indexed(rels: Iterable[str], indexed: Collection[str]) -> tuple[list[str], list[str]]:
    """(entries that are indexed images, entries that are not), order kept, duplicates dropped."""
    known = indexed if isinstance(indexed, (set, frozenset, dict)) else set(indexed)
    kept: list[str] = []
    left_out: list[str] = []
    for rel in dict.fromkeys(rels):
        (kept if rel in known else left_out).append(rel)
    return kept, left_out


def left_out_line(left_out: list[str]) -> str:
    """One line naming the first few, e.g. "2 entries of the saved selection are not
    indexed images of this album; left out: ., ../../etc/passwd"."""
    n = len(left_out)
    names = ", ".join(left_out[:SHOWN]) + (", …" if n > SHOWN else "")
    what = "entry of the saved selection is not an indexed image" if n == 1 else (
        "entries of the saved selection are not indexed images")
    return f"{n} {what} of this album; left out: {names}"
