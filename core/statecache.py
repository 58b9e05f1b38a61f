"""What this process last read or wrote as each album's state.json, so that one more
exclusion in a 150,000-exclusion album neither parses nor sorts the whole file again.

``edit_state`` re-reads state.json under the lock before every change, so that a change
another process made in between is never lost. Parsing, checking and sorting 150,000
paths made that ~0.4 s per key. The re-read stays, but it is cheap when the file holds
exactly the bytes this process last read or wrote there: the state those bytes hold is
known, and a copy of it is handed out. The test is the bytes themselves (a memcmp of a
few MB, well under a millisecond), not the inode, size and mtime: a same-size rewrite
within one tick of a coarse clock, or a new file on a reused inode, has the stat of the
old file but other bytes. Equal bytes parse to an equal state, so a hit is always right.

Only a file that parsed without a warning is remembered (a repaired one is parsed again
and saved), one per state folder (by its real path); a failed save leaves it as it was. The
remembered state is private: callers get copies, so a change that raises half-way
leaves nothing behind, and a caller keeping its state after the edit cannot reach ours.

Saving patches the remembered sorted list of JSON-encoded paths and the remembered set
with what changed (a bisection per name) instead of encoding and sorting 150,000 names
again and copying the set once more.
"""

from __future__ import annotations

import bisect
import os
import threading
from dataclasses import dataclass, replace
from pathlib import Path

from picksel import state as st
from picksel import undo
from picksel.saferead import read_regular_file
from picksel.state import AlbumState, SavedSelection

PATCH_LIMIT = 1000
"""More changed names than this are sorted afresh: each patch moves the list's tail."""
MAX_FOLDERS = 8
"""State folders remembered at once; a process edits one album, tests a few."""


@dataclass(frozen=True)
class Known:
    """state.json as this process last read or wrote it in one folder."""

    raw: bytes
    state: undo.Snapshot
    """The state ``raw`` holds; its selection is a private copy, never handed out."""
    excluded: list[str] | None
    """``st.sorted_bodies(state.excluded)`` once a save computed it; never changed."""
    pins: list[str] | None
    order: dict[str, list[str]] | None = None
    """The path sets in the order the parsed file listed them (see ``_known_bodies``)."""


_known: dict[str, Known] = {}
_guard = threading.Lock()
"""Writers of one folder are serialised by its flock; readers (``open_repaired``) are not."""


def _key(state_dir: Path) -> str:
    return os.path.realpath(state_dir)


def forget(state_dir: Path) -> None:
    _known.pop(_key(state_dir), None)


def forget_all() -> None:
    """Drop everything remembered (tests start from a cold process this way)."""
    _known.clear()


def _remember(state_dir: Path, known: Known) -> None:
    key = _key(state_dir)
    _known.pop(key, None)
    _known[key] = known
    while len(_known) > MAX_FOLDERS:
        del _known[next(iter(_known))]


def _copy_selection(sel: SavedSelection | None) -> SavedSelection | None:
    """A selection nobody else holds: a caller changing one in place cannot reach ours."""
    if sel is None:
        return None
    return replace(sel, consensus=list(sel.consensus), votes=dict(sel.votes))


def _thaw(snap: undo.Snapshot) -> AlbumState:
    """A mutable copy of a remembered state for a caller to change."""
    return AlbumState(
        excluded=set(snap.excluded),
        pins=set(snap.pins),
        favorites=list(snap.favorites),
        settings=replace(snap.settings),
        export_path=snap.export_path,
        inventory_path=snap.inventory_path,
        selection=_copy_selection(snap.selection),
        quality=dict(snap.quality),
    )


def _private(snap: undo.Snapshot) -> undo.Snapshot:
    return replace(snap, selection=_copy_selection(snap.selection), settings=replace(snap.settings))


def holds(state_dir: Path) -> bool:
    """True when state.json holds exactly the bytes this process last read or wrote there.
    A reader keeping a state in memory asks before writing it back: a same-size rewrite
    within one mtime tick keeps inode, size and mtime, but not the bytes."""
    known = _known.get(_key(state_dir))
    if known is None:
        return False
    try:
        return read_regular_file(st.state_path(state_dir)) == known.raw
    except OSError:  # gone, a FIFO, unreadable: not ours; the caller's reload says why
        return False


def load(state_dir: Path) -> tuple[AlbumState, undo.Snapshot, str | None]:
    """The newest state, as ``st.load_state`` returns it, plus its undo snapshot (free
    when the file is the one this process last read or wrote; see the module)."""
    raw, warning = st.read_state_bytes(state_dir)
    if raw is None:
        forget(state_dir)
        state = AlbumState()
        return state, undo.snapshot(state), warning
    with _guard:  # an unlocked reader thread must not copy a set a save is patching
        known = _known.get(_key(state_dir))
        if known is not None and known.raw == raw:
            state = _thaw(known.state)
            return state, replace(known.state, selection=state.selection), None
    order: dict[str, list[str]] = {}
    state, warning = st.parse_state(state_dir, raw, order)
    before = undo.snapshot(state)
    if warning is None:
        _remember(state_dir, Known(raw, _private(before), None, None, order))
    else:
        forget(state_dir)
    return state, before, warning


def _sorted_in_place_order(paths: set[str]) -> list[str]:
    """``st.sorted_bodies(paths)`` made of new strings laid out in memory in list order.
    Sorting leaves them where set order made them, and joining 150,000 strings read in
    random memory order took 25 ms per save instead of 5 (a body never holds a raw
    newline: JSON escapes it)."""
    bodies = st.sorted_bodies(paths)
    return "\n".join(bodies).split("\n") if bodies else []


def _changes(
    name: str, state: AlbumState, known: Known, since: tuple[undo.Snapshot, undo.SetDiffs] | None
) -> tuple[set[str], set[str]]:
    """What changed in one path set since ``known``: the caller's diffs when they start
    from the very set remembered (the usual edit), else a pass over the paths."""
    if since is not None and getattr(since[0], name) is getattr(known.state, name):
        return since[1].get(name, (set(), set()))
    return st.set_changes(getattr(known.state, name), getattr(state, name))


def _patched(bodies: list[str], added: set[str], removed: set[str]) -> list[str] | None:
    """``bodies`` (sorted, remembered, never changed in place) with a few names moved, a
    bisection each; None when a removed name is missing (the caller sorts afresh)."""
    kept = list(bodies)
    for body in map(st.json_body, removed):
        at = bisect.bisect_left(kept, body)
        if at == len(kept) or kept[at] != body:  # cannot happen while Known holds together
            return None
        del kept[at]
    for body in map(st.json_body, added):
        bisect.insort(kept, body)
    return kept


def _known_bodies(name: str, known: Known) -> list[str] | None:
    """The remembered sorted bodies of a path set; right after a parse, made from the
    file's own list, which picksel wrote sorted: encoding it in order and sorting an
    already sorted list is linear (a CLI command's one edit no longer sorts 150k names
    from set order). None when the list is not exactly the set (repeated names)."""
    bodies = getattr(known, name)
    if bodies is not None or known.order is None:
        return bodies
    listed, remembered = known.order.get(name, []), getattr(known.state, name)
    if len(listed) != len(remembered):
        return None
    return sorted(map(st.json_body, listed))


Plan = tuple[list[str], set[str], tuple[set[str], set[str]] | None]
"""One path set's save: the sorted bodies to write, the set, and the (added, removed)
that turn the remembered set into it (None: remember a copy of the set instead)."""


def _plan(
    name: str, state: AlbumState, known: Known | None, since: tuple[undo.Snapshot, undo.SetDiffs] | None
) -> Plan:
    """How to write and remember the path set ``name``: a small change since ``known``
    patches the remembered sorted list (and, once written, the remembered set) instead
    of sorting and copying 150,000 names."""
    current: set[str] = getattr(state, name)
    bodies = None if known is None else _known_bodies(name, known)
    if known is not None and bodies is not None:
        added, removed = _changes(name, state, known, since)
        patched = _patched(bodies, added, removed) if len(added) + len(removed) <= PATCH_LIMIT else None
        if patched is not None:
            return patched, current, (added, removed)
    return _sorted_in_place_order(current), current, None


def _remembered_set(name: str, known: Known | None, plan: Plan) -> set[str]:
    """The set to remember after the write: the remembered one changed in place when the
    plan says how (it is private, handed out only as the ``before`` of the edit that is
    ending with this save), else a copy of the caller's."""
    _bodies, current, changes = plan
    if known is None or changes is None:
        return set(current)
    remembered = getattr(known.state, name)
    if type(remembered) is not set:  # a parse's frozenset: copied once, patched from then on
        remembered = set(remembered)
    remembered -= changes[1]
    remembered |= changes[0]
    return remembered


def save(
    state_dir: Path, state: AlbumState, since: tuple[undo.Snapshot, undo.SetDiffs] | None = None
) -> None:
    """Write ``state`` as ``st.save_state`` does (atomically, the same text) and remember
    it, so the next load and save in this folder are cheap. ``since`` is the snapshot the
    change started from and ``undo.set_diffs`` of it, when the caller has them. A write
    that fails leaves what is remembered as it was: still the file on disk."""
    known = _known.get(_key(state_dir))
    excluded, pins = _plan("excluded", state, known, since), _plan("pins", state, known, since)
    raw = st.state_text(state, excluded[0], pins[0]).encode("ascii")
    st.write_state_bytes(state_dir, raw)
    rest = _private(undo.snapshot(replace(state, excluded=set(), pins=set())))
    with _guard:
        forget(state_dir)  # before its sets change: never remembered half-updated
        snap = replace(
            rest,
            excluded=_remembered_set("excluded", known, excluded),
            pins=_remembered_set("pins", known, pins),
        )
        _remember(state_dir, Known(raw, snap, excluded[0], pins[0]))
