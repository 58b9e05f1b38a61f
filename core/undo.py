"""The undo journal: the last changes of exclusions, pins, favorites and the selection.

Kept in ``STATE_DIR/undo.json`` beside state.json (so state.json stays small for the
curator's reloads) and written under the same lock, so an undo survives a restart and
undoes the newest change whichever picksel made it (curator key ``u``, ``picksel undo``).

An entry stores what it takes to go back, per changed field: exclusions and pins as the
paths added and removed (undoing re-applies the opposite and leaves changes made since by
others alone), favorites and the selection as their previous value. At most
``UNDO_LEVELS`` entries are kept, and fewer if they would pass ``MAX_JOURNAL_BYTES``.

Undoing moves the change onto a redo list (curator key ``U``, ``picksel redo``), so one
``u`` too many loses nothing; any new change ends the redo list, as in every editor.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from picksel.errors import PickselError
from picksel.fsutil import atomic_write_text
from picksel.saferead import read_regular_file
from picksel.state import (
    AlbumState,
    SavedSelection,
    Settings,
    move_aside,
    selection_from_dict,
    selection_to_dict,
    set_changes,
)

UNDO_FILENAME = "undo.json"
UNDO_LEVELS = 20
MAX_JOURNAL_BYTES = 32 * 1024 * 1024  # half the read cap: the file always stays readable
JOURNAL_VERSION = 1
SET_FIELDS = ("excluded", "pins")


@dataclass(frozen=True)
class Snapshot:
    """The state's values before an edit (the selection is only ever replaced, never
    changed in place, so holding the object is enough)."""

    excluded: frozenset[str]
    pins: frozenset[str]
    favorites: tuple[str, ...]
    selection: SavedSelection | None
    settings: Settings
    export_path: str | None
    inventory_path: str | None
    quality: tuple[tuple[str, float], ...] = ()


@dataclass
class Undone:
    action: str
    when: float
    summary: str
    verb: str = "undid"  # or "redid"

    def message(self, with_time: bool = True) -> str:
        if not with_time or not self.when:
            return f"{self.verb} {self.action}: {self.summary}"
        stamp = time.strftime("%H:%M:%S", time.localtime(self.when))
        return f"{self.verb} {self.action} (from {stamp}): {self.summary}"


def snapshot(state: AlbumState) -> Snapshot:
    return Snapshot(
        excluded=frozenset(state.excluded),
        pins=frozenset(state.pins),
        favorites=tuple(state.favorites),
        selection=state.selection,
        settings=replace(state.settings),
        export_path=state.export_path,
        inventory_path=state.inventory_path,
        quality=tuple(sorted(state.quality.items())),
    )


def differs(before: Snapshot, state: AlbumState) -> bool:
    """True when anything saved in state.json changed since ``before``."""
    return (
        _selection_changed(before, state)
        or before.excluded != state.excluded
        or before.pins != state.pins
        or before.favorites != tuple(state.favorites)
        or before.settings != state.settings
        or before.export_path != state.export_path
        or before.inventory_path != state.inventory_path
        or before.quality != tuple(sorted(state.quality.items()))
    )


def _selection_changed(before: Snapshot, state: AlbumState) -> bool:
    # identity first: a selection is only ever replaced, and comparing votes costs O(n)
    return before.selection is not state.selection and before.selection != state.selection


SetDiffs = dict[str, tuple[set[str], set[str]]]
"""(added, removed) per field of SET_FIELDS that changed."""


def set_diffs(before: Snapshot, state: AlbumState) -> SetDiffs:
    """What changed in the path sets; computed once per save, as each is a pass over all
    the paths of a big album (the journal and the state file both need it)."""
    diffs: SetDiffs = {}
    for name in SET_FIELDS:
        old, new = getattr(before, name), getattr(state, name)
        if old != new:
            diffs[name] = set_changes(old, new)
    return diffs


def entry_for(
    before: Snapshot, state: AlbumState, action: str, diffs: SetDiffs | None = None
) -> dict[str, Any] | None:
    """The journal entry that undoes the change ``before`` -> ``state`` (None when none of
    the undoable fields changed: settings and remembered paths are not journaled).
    ``diffs`` is ``set_diffs(before, state)`` when the caller has it already."""
    entry: dict[str, Any] = {"action": action, "time": time.time()}
    for name, (added, removed) in (set_diffs(before, state) if diffs is None else diffs).items():
        entry[name] = {"added": sorted(added), "removed": sorted(removed)}
    if before.favorites != tuple(state.favorites):
        entry["favorites"] = list(before.favorites)
    if _selection_changed(before, state):
        old_sel = before.selection
        entry["selection"] = None if old_sel is None else selection_to_dict(old_sel)
    return entry if len(entry) > 2 else None


# ---------------------------------------------------------------------------- the file


def journal_path(state_dir: Path) -> Path:
    return Path(state_dir) / UNDO_FILENAME


def load_journal(state_dir: Path) -> tuple[list[dict[str, Any]], str | None]:
    """The entries, oldest first, and a warning when the file had to be moved aside."""
    entries, _redo, warning = _load(state_dir)
    return entries, warning


def _load(state_dir: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]], str | None]:
    """(undo entries, redo entries, warning); both lists oldest first. Journals written
    before redo existed have no "redo" key: an empty redo list."""
    path = journal_path(state_dir)
    try:
        raw = read_regular_file(path)
    except FileNotFoundError:
        return [], [], None
    except OSError as e:
        return [], [], move_aside(path, f"refused ({e.strerror or e})", "undo history")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return [], [], move_aside(path, "not valid JSON", "undo history")
    if not isinstance(data, dict) or data.get("version") != JOURNAL_VERSION:
        return [], [], move_aside(path, "not an undo journal of this picksel", "undo history")
    entries, redo = data.get("entries"), data.get("redo", [])
    if not isinstance(entries, list) or not isinstance(redo, list):
        return [], [], move_aside(path, "not an undo journal of this picksel", "undo history")
    return [e for e in entries if _valid(e)], [e for e in redo if _valid(e)], None


def _valid(entry: object) -> bool:
    if not isinstance(entry, dict) or not isinstance(entry.get("action"), str):
        return False
    for name in SET_FIELDS:
        if name in entry:
            diff = entry[name]
            if not isinstance(diff, dict):
                return False
            for key in ("added", "removed"):
                value = diff.get(key, [])
                if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
                    return False
    fav = entry.get("favorites", [])
    if not isinstance(fav, list) or not all(isinstance(p, str) for p in fav):
        return False
    sel = entry.get("selection")
    return sel is None or isinstance(sel, dict)


def _save_journal(
    state_dir: Path, entries: list[dict[str, Any]], redo: list[dict[str, Any]] | None = None
) -> None:
    entries, redo = entries[-UNDO_LEVELS:], (redo or [])[-UNDO_LEVELS:]
    while True:
        data: dict[str, Any] = {"version": JOURNAL_VERSION, "entries": entries}
        if redo:
            data["redo"] = redo
        text = json.dumps(data, ensure_ascii=True) + "\n"
        if len(text) <= MAX_JOURNAL_BYTES or not (entries or redo):
            break
        if redo:
            redo = redo[1:]  # the furthest redo goes first, then the oldest undo
        else:
            entries = entries[1:]
    try:
        atomic_write_text(journal_path(state_dir), text)
    except OSError as e:
        raise PickselError(f"cannot save {journal_path(state_dir)}: {e.strerror or e}") from e


def record(state_dir: Path, entry: dict[str, Any]) -> None:
    """Append ``entry`` and end the redo list (call with the state lock held)."""
    entries, _redo, _warning = _load(state_dir)
    entries.append(entry)
    _save_journal(state_dir, entries)


def undo_last(state_dir: Path, state: AlbumState, save: Callable[[], None]) -> Undone | None:
    """Undo the newest journaled change in ``state``, ``save()`` it, then move the entry
    to the redo list (call with the lock held); None when there is nothing to undo.
    State first: a kill in between leaves the entry, and undoing it again changes
    nothing more."""
    entries, redo, _warning = _load(state_dir)
    return _step(state_dir, state, save, entries, redo, "undid")


def redo_last(state_dir: Path, state: AlbumState, save: Callable[[], None]) -> Undone | None:
    """Make again the change the last undo took back (call with the lock held); None when
    there is nothing to redo. The change goes back on the undo list."""
    entries, redo, _warning = _load(state_dir)
    return _step(state_dir, state, save, redo, entries, "redid")


def _step(
    state_dir: Path,
    state: AlbumState,
    save: Callable[[], None],
    source: list[dict[str, Any]],
    target: list[dict[str, Any]],
    verb: str,
) -> Undone | None:
    """Apply the newest entry of ``source`` and put its opposite on ``target``."""
    if not source:
        return None
    entry = source.pop()
    before = snapshot(state)
    summary = apply_entry(state, entry)
    opposite = entry_for(before, state, entry["action"])
    if opposite is not None:
        opposite["time"] = entry.get("time", opposite["time"])
        target.append(opposite)
    save()
    if verb == "undid":
        _save_journal(state_dir, source, target)
    else:
        _save_journal(state_dir, target, source)
    when = entry.get("time")
    return Undone(entry["action"], float(when) if isinstance(when, int | float) else 0.0, summary, verb)


def apply_entry(state: AlbumState, entry: dict[str, Any]) -> str:
    """Go back by one entry; returns what that did, in the user's words."""
    parts: list[str] = []
    restored_pins: set[str] = set()
    for name in SET_FIELDS:
        if name not in entry:
            continue
        added, removed = set(entry[name].get("added", [])), set(entry[name].get("removed", []))
        current: set[str] = getattr(state, name)
        current -= added
        current |= removed
        if name == "pins":
            restored_pins = removed
        parts += _describe(name, added, removed)
    both = state.pins & state.excluded  # never both: whichever this undo restored wins
    state.excluded -= both & restored_pins
    state.pins -= both - restored_pins
    if "favorites" in entry:
        state.favorites = list(dict.fromkeys(entry["favorites"]))
        parts.append(f"favorites back to {len(state.favorites):,} images")
    if "selection" in entry:
        problems: list[str] = []
        state.selection = selection_from_dict(entry["selection"], problems)
        sel = state.selection
        if sel is None:
            parts.append("selection removed (there was none before)")
        else:
            parts.append(f"previous selection back ({sel.method}, {len(sel.consensus):,} images)")
    return "; ".join(parts) or "nothing left to change"


def _describe(name: str, added: set[str], removed: set[str]) -> list[str]:
    def what(paths: set[str], one: str, many: str) -> str:
        return f"{next(iter(paths))} {one}" if len(paths) == 1 else f"{len(paths):,} {many}"

    out = []
    if name == "excluded":
        if added:
            out.append(what(added, "included again", "images included again"))
        if removed:
            out.append(what(removed, "excluded again", "exclusions back"))
    else:
        if added:
            out.append(what(added, "unpinned", "images unpinned"))
        if removed:
            out.append(what(removed, "pinned again", "pins back"))
    return out
