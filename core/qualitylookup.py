"""The flags and duplicate group of each image, for the outputs that list images
(inventory, ``select --json``, ``export --json``), from the cached measures only.

Why cached only: an inventory or a JSON report must stay as fast as it always was, and
never decode an album for minutes behind the user's back. Measures come from
``.picksel/quality.npz`` when the file is unchanged (size and mtime, as ``check`` reuses
them); an image without them is *unchecked* (``None``, not "clean"), and the caller says
once how many there are and that ``picksel check`` measures them. Groups are numbered as
``picksel check`` lists them (its n-th duplicate group is group n) when the cache covers
the album.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from picksel.quality import Thresholds
from picksel.qualitystore import QualityTable, load_quality


@dataclass(frozen=True)
class ImageQuality:
    flags: tuple[str, ...] = ()  # in picksel.quality.FLAGS order; () when clean
    group: int | None = None  # duplicate group number from 1
    role: str = ""  # "keep" or "copy" in its group, "" outside any group
    kind: str = ""  # the group's kind: "exact" or "near"


@dataclass
class QualityLookup:
    by_path: dict[str, ImageQuality] = field(default_factory=dict)
    unchecked: list[str] = field(default_factory=list)  # asked-for paths without measures

    def get(self, rel: str) -> ImageQuality | None:
        """The image's flags and group; None when it has no up-to-date measures."""
        return self.by_path.get(rel)

    def json_fields(self, rel: str) -> dict[str, object]:
        """``{"flags": [...] | null, "duplicate": {"group", "role", "kind"} | null}``:
        ``flags`` is null for an unchecked image, [] for a clean one."""
        q = self.by_path.get(rel)
        if q is None:
            return {"flags": None, "duplicate": None}
        dup = None if q.group is None else {"group": q.group, "role": q.role, "kind": q.kind}
        return {"flags": list(q.flags), "duplicate": dup}


def unchecked_line(n: int, album: Path | str) -> str:
    what = "image has" if n == 1 else "images have"
    return (f"{n:,} {what} no quality measures yet (flags and duplicate group unknown: "
            f"'unchecked'): run `picksel check {album}`")


def _fresh_rows(table: QualityTable, album: Path, wanted: set[str]) -> list[int]:
    """Rows of the cached table whose file is still the one measured (size and mtime)."""
    rows = []
    for i, rel in enumerate(table.paths):
        if rel not in wanted:
            continue
        try:
            st = os.stat(album / rel)
        except OSError:
            continue
        if int(table.sizes[i]) == st.st_size and float(table.mtimes[i]) == st.st_mtime:
            rows.append(i)
    return rows


def _subset(table: QualityTable, rows: list[int]) -> QualityTable:
    idx = np.asarray(rows, np.int64)
    return QualityTable([table.paths[i] for i in rows], table.mtimes[idx], table.sizes[idx],
                        table.values[idx], table.pixel_hash[idx], table.phash[idx],
                        table.thumbs[idx])


def cached_quality(
    album: Path,
    rels: list[str],
    state_dir: Path,
    thresholds: Thresholds,
    pinned: set[str] | None = None,
    vectors: tuple[list[str], np.ndarray] | None = None,
) -> QualityLookup:
    """Flags and groups of ``rels`` (the album index's paths) judged from the cache, as
    ``picksel check`` would with the same thresholds, pins and (CLIP) vectors."""
    from picksel.check import judge

    table = load_quality(state_dir)
    wanted = set(rels)
    rows = _fresh_rows(table, Path(album), wanted) if len(table) else []
    if len(rows) != len(table):
        table = _subset(table, rows)
    lookup = QualityLookup()
    if len(table):
        flags, groups = judge(table, thresholds, pinned or set(), vectors)
        member: dict[str, tuple[int, str, str]] = {}
        for n, g in enumerate(groups, 1):
            member[table.paths[g.keep]] = (n, "keep", g.kind)
            for i in g.copies:
                member[table.paths[i]] = (n, "copy", g.kind)
        for rel in table.paths:
            group, role, kind = member.get(rel, (None, "", ""))
            lookup.by_path[rel] = ImageQuality(tuple(flags.get(rel, ())), group, role, kind)
    lookup.unchecked = [rel for rel in rels if rel not in lookup.by_path]
    return lookup
