"""Per-album curator state: exclusions, pins, favorites, settings and the last selection.

Lives in ``STATE_DIR/state.json`` (``picksel.album.state_dir``). Every image is named by
its path relative to the album, never by its row in the index, so exclusions and the
saved selection survive a re-index that adds, removes or reorders images.

The file is versioned JSON written atomically with ``ensure_ascii=True``: file names that
were not valid UTF-8 come out of ``os.fsdecode`` as lone surrogates (U+DC80–U+DCFF) and
JSON's ``\\udcXX`` escapes carry them through a save/load round trip unchanged.

A state file that cannot be read or does not have the expected shape never stops the
app: it is moved aside to ``state.json.corrupt-<timestamp>`` (never overwriting an earlier
one) and ``load_state`` returns fresh defaults plus a warning for the user. Only a regular
file of at most 64 MB is read (picksel.saferead): a FIFO or a link to a device is moved
aside unread. Individual bad values (a vote above the iteration count, a non-string
path...) are dropped or fall back to their default one by one, the rest stays in use, and
the file as it was is copied (not moved) to ``state.json.corrupt-<timestamp>`` so that the
next save, which no longer holds them, loses nothing. Unknown keys are ignored so an
older picksel can read a newer file's known parts.

Writers go through picksel.statelock (lock, re-read, change, save); this module only
reads, writes and changes the state in memory.

Rules chosen for pins and exclusions: an image is never both pinned and excluded.
Pinning an excluded image removes the exclusion (pinning is the more deliberate act);
excluding a pinned image unpins it. ``exclude_at_or_above`` leaves pinned images alone
because a pin is an explicit "keep this" and pinned images naturally score 100%.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from json.encoder import encode_basestring_ascii  # type: ignore[attr-defined]
from pathlib import Path
from typing import TYPE_CHECKING, Any

from picksel.errors import PickselError, UsageError
from picksel.fsutil import atomic_write
from picksel.saferead import FileTooLarge, NotRegularFile, read_regular_file

if TYPE_CHECKING:  # picksel.select is written in parallel; only its shape matters here
    from picksel.select import SelectionResult

STATE_FILENAME = "state.json"
STATE_VERSION = 1
METHODS = ("fps", "kmeans")  # mirrors picksel.select.METHODS
MAX_ITERATIONS = 100
VIEWS = ("list", "grid")  # the TUI image pane's two views (Settings.view)
CORE = 90.0  # mirrors picksel.select.CORE / STABLE (tier thresholds)
STABLE = 70.0


def _tier_of(frequency: float) -> str:
    """Tier of a frequency; defers to picksel.select when it is importable."""
    try:
        from picksel.select import tier_of
    except ImportError:  # select not written yet: same thresholds as DESIGN.md
        return "core" if frequency >= CORE else "stable" if frequency >= STABLE else "variable"
    return tier_of(frequency)


@dataclass
class Settings:
    """The curator panel's last values, restored when the album is reopened."""

    method: str = "fps"
    count: int = 20
    iterations: int = 20
    threshold: float = 90  # int normally; a float like 90.5 is accepted
    seed: int | None = None
    view: str = "list"  # the TUI's image pane: "list" or "grid" (key t)


@dataclass
class SavedSelection:
    """The last selection, by path, so export/inventory/favorites work after a restart."""

    method: str
    count: int
    iterations: int
    seed: int | None
    fingerprint: str
    consensus: list[str] = field(default_factory=list)
    votes: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_result(
        cls, result: SelectionResult, paths: list[str], fingerprint: str
    ) -> SavedSelection:
        """Translate row indices of a run into album paths (``paths`` = the index's rows)."""
        votes_arr = [int(v) for v in result.votes]
        if len(votes_arr) != len(paths):
            raise ValueError(
                f"selection has {len(votes_arr)} vote counts but the index has {len(paths)} rows"
            )
        seed = None if result.seed is None else int(result.seed)
        return cls(
            method=str(result.method),
            count=int(result.count),
            iterations=int(result.iterations),
            seed=seed,
            fingerprint=str(fingerprint),
            consensus=[paths[int(i)] for i in result.consensus],
            votes={p: v for p, v in zip(paths, votes_arr, strict=True) if v > 0},
        )

    def frequency(self, path: str) -> float:
        """Percent of iterations that picked ``path`` (0.0 when never picked)."""
        # votes*100/iterations, not votes/iterations*100: keeps 29/100 at exactly 29.0
        return self.votes.get(path, 0) * 100 / self.iterations

    def tier(self, path: str) -> str:
        """"core" / "stable" / "variable", or "" for a path that was never picked."""
        if self.votes.get(path, 0) <= 0:
            return ""
        return _tier_of(self.frequency(path))

    def at_or_above(self, threshold: float) -> list[str]:
        """Voted paths with frequency >= threshold, compared exactly (no float noise)."""
        t = Fraction(threshold)
        return [p for p, v in self.votes.items() if Fraction(v * 100, self.iterations) >= t]

    def is_current(self, fingerprint: str) -> bool:
        """True when the index has not changed since this selection was made."""
        return self.fingerprint == fingerprint


@dataclass
class AlbumState:
    excluded: set[str] = field(default_factory=set)
    pins: set[str] = field(default_factory=set)
    favorites: list[str] = field(default_factory=list)
    settings: Settings = field(default_factory=Settings)
    export_path: str | None = None
    inventory_path: str | None = None
    selection: SavedSelection | None = None
    quality: dict[str, float] = field(default_factory=dict)
    """Quality thresholds the user set (``picksel check --min-side`` …): only the ones that
    differ from ``picksel.quality.Thresholds``' defaults."""


# ---------------------------------------------------------------------------- operations


def set_excluded(state: AlbumState, rels: Iterable[str], excluded: bool = True) -> int:
    """Exclude (or include again) ``rels``; returns how many changed. An image is never
    both excluded and pinned, so excluding one unpins it."""
    before = len(state.excluded)
    if excluded:
        rels = set(rels)
        state.excluded |= rels
        state.pins -= rels
    else:
        state.excluded.difference_update(rels)
    return abs(len(state.excluded) - before)


def exclude_unpinned(state: AlbumState, rels: Iterable[str]) -> tuple[int, list[str]]:
    """Exclude what a check found (flagged images, duplicate copies), leaving pinned ones
    alone: a pin is the user's word that the image stays, a flag is only a guess.
    Returns (how many were newly excluded, the pinned ones left alone)."""
    rels = list(rels)
    pinned = [rel for rel in rels if rel in state.pins]
    return set_excluded(state, [rel for rel in rels if rel not in state.pins], True), pinned


def set_pinned(state: AlbumState, rels: Iterable[str], pinned: bool = True) -> int:
    """Pin (or unpin) ``rels``; returns how many changed. Pinning an image un-excludes it."""
    before = len(state.pins)
    if pinned:
        rels = set(rels)
        state.pins |= rels
        state.excluded -= rels
    else:
        state.pins.difference_update(rels)
    return abs(len(state.pins) - before)


def toggle_excluded(state: AlbumState, rel: str) -> bool:
    """Flip the exclusion of ``rel``; returns True when it is now excluded (and unpinned)."""
    now = rel not in state.excluded
    set_excluded(state, [rel], now)
    return now


def toggle_pin(state: AlbumState, rel: str) -> bool:
    """Flip the pin of ``rel``; returns True when it is now pinned (and no longer excluded)."""
    now = rel not in state.pins
    set_pinned(state, [rel], now)
    return now


def check_threshold(threshold: object) -> float:
    """The exclusion threshold must be a number in 1..100 (UsageError otherwise)."""
    if isinstance(threshold, bool) or not isinstance(threshold, int | float):
        raise UsageError(f"threshold must be a number from 1 to 100, got {threshold!r}")
    if not 1 <= threshold <= 100:
        raise UsageError(f"threshold must be from 1 to 100, got {threshold:g}")
    return threshold


def exclude_at_or_above(state: AlbumState, threshold: float) -> int:
    """Exclude every analysed image of the saved selection picked in >= threshold % of
    iterations (pinned images are left alone); returns how many were newly excluded."""
    check_threshold(threshold)
    if state.selection is None:
        raise PickselError("no saved selection yet: run a selection first")
    new = [
        p
        for p in state.selection.at_or_above(threshold)
        if p not in state.excluded and p not in state.pins
    ]
    state.excluded.update(new)
    return len(new)


def clear_exclusions(state: AlbumState) -> int:
    n = len(state.excluded)
    state.excluded.clear()
    return n


def clear_selection(state: AlbumState) -> None:
    state.selection = None


def included_paths(state: AlbumState) -> list[str]:
    """The saved consensus minus current exclusions, in consensus order."""
    if state.selection is None:
        return []
    return [p for p in state.selection.consensus if p not in state.excluded]


def set_favorites(state: AlbumState) -> int:
    """Replace favorites with the included part of the saved selection; returns their count."""
    if state.selection is None:
        raise PickselError("no saved selection yet: run a selection first")
    state.favorites = included_paths(state)
    return len(state.favorites)


def set_changes(old: frozenset[str] | set[str], new: set[str]) -> tuple[set[str], set[str]]:
    """(added, removed) from ``old`` to ``new``. Each side is a pass over 150,000 paths
    in a big album; the sizes tell when the second one would come out empty, which is
    the case for every single exclusion, pin or un-exclusion."""
    if len(new) >= len(old):
        added = new - old
        return added, (set() if len(old) + len(added) == len(new) else old - new)
    removed = old - new
    return (set() if len(new) + len(removed) == len(old) else new - old), removed


# ---------------------------------------------------------------------------- persistence


def state_path(state_dir: Path) -> Path:
    return Path(state_dir) / STATE_FILENAME


def state_to_dict(state: AlbumState, *, with_sets: bool = True) -> dict[str, Any]:
    """The JSON form of ``state``; ``with_sets=False`` leaves the two path sets empty
    (sorting 150,000 paths is for callers that need them, see ``state_text``)."""
    s = state.settings
    data: dict[str, Any] = {
        "version": STATE_VERSION,
        "excluded": sorted(state.excluded) if with_sets else [],
        "pins": sorted(state.pins) if with_sets else [],
        "favorites": list(state.favorites),
        "settings": {
            "method": s.method,
            "count": s.count,
            "iterations": s.iterations,
            "threshold": s.threshold,
            "seed": s.seed,
            "view": s.view,
        },
        "export_path": state.export_path,
        "inventory_path": state.inventory_path,
        "selection": None,
    }
    if state.quality:
        data["quality"] = dict(sorted(state.quality.items()))
    if state.selection is not None:
        data["selection"] = selection_to_dict(state.selection)
    return data


def selection_to_dict(sel: SavedSelection) -> dict[str, Any]:
    return {
        "method": sel.method,
        "count": sel.count,
        "iterations": sel.iterations,
        "seed": sel.seed,
        "fingerprint": sel.fingerprint,
        "consensus": list(sel.consensus),
        "votes": dict(sel.votes),
    }


def save_state(state_dir: Path, state: AlbumState) -> None:
    """Write state.json atomically (ASCII JSON, so surrogate-escaped names survive).
    Sorts every path; picksel.statecache saves a small change to a big state faster."""
    text = state_text(state, sorted_bodies(state.excluded), sorted_bodies(state.pins))
    write_state_bytes(state_dir, text.encode("ascii"))


def write_state_bytes(state_dir: Path, raw: bytes) -> None:
    """Replace state.json with ``raw`` atomically (temp file, fsync, ``os.replace``)."""
    try:
        with atomic_write(state_path(state_dir)) as fh:
            fh.write(raw)
    except OSError as e:
        raise PickselError(f"cannot save {state_path(state_dir)}: {e.strerror or e}") from e


def json_body(path: str) -> str:
    """``path`` as a JSON string without its quotes (ASCII; surrogates as ``\\udcXX``)."""
    return encode_basestring_ascii(path)[1:-1]


def sorted_bodies(paths: Iterable[str]) -> list[str]:
    """The JSON bodies of ``paths`` in the order state.json lists them. Sorting the
    encoded form (the same order as the names for all but escaped characters) lets a
    writer keep this list and patch it for a small change instead of sorting again."""
    return sorted(map(json_body, paths))


def state_text(state: AlbumState, excluded: list[str], pins: list[str]) -> str:
    """state.json's text: ``json.dumps(state_to_dict(state), indent=1)`` with the two
    path sets given as their sorted JSON bodies (see ``sorted_bodies``), which are joined
    instead of encoded one by one: at 150,000 exclusions that was most of a save."""
    data = state_to_dict(state, with_sets=False)
    sets = {"excluded": excluded, "pins": pins}
    pieces: list[str] = []
    for key, value in data.items():
        pieces += [",\n" if pieces else "{\n", f" {json.dumps(key)}: "]
        bodies = sets.get(key)
        if bodies:  # one join and no concatenation: each copy of 4 MB counts
            pieces += ['[\n  "', '",\n  "'.join(bodies), '"\n ]']
        else:
            pieces.append(json.dumps(value, ensure_ascii=True, indent=1).replace("\n", "\n "))
    pieces.append("\n}\n")
    return "".join(pieces)


def load_state(state_dir: Path) -> tuple[AlbumState, str | None]:
    """Read state.json; returns (state, warning). Missing file -> defaults, no warning.

    Only a regular file of at most MAX_STATE_BYTES is read (a FIFO would hang, a link to
    /dev/zero would eat memory); anything else is moved aside like an unparsable file.
    Bad values are dropped one by one and the file as it was is copied aside, so the
    next save (which no longer holds them) loses nothing the user cannot get back."""
    raw, warning = read_state_bytes(state_dir)
    if raw is None:
        return AlbumState(), warning
    return parse_state(state_dir, raw)


def read_state_bytes(state_dir: Path) -> tuple[bytes | None, str | None]:
    """state.json's bytes, or (None, warning) when there is none to use: missing (no
    warning) or refused, unreadable and moved aside (the warning says so)."""
    path = state_path(state_dir)
    try:
        return read_regular_file(path), None
    except FileNotFoundError:
        return None, None
    except (NotRegularFile, FileTooLarge) as e:
        return None, move_aside(path, f"refused ({e})")
    except OSError as e:
        # Unreadable (permissions, I/O error): try to move it aside so the next save works.
        return None, move_aside(path, f"cannot read it ({e.strerror or e})")


def parse_state(
    state_dir: Path, raw: bytes, order: dict[str, list[str]] | None = None
) -> tuple[AlbumState, str | None]:
    """The state ``raw`` (state.json's bytes) holds; see ``load_state`` for the warning.
    ``order``, when given and the file is clean, gets the path sets as the file lists
    them (already sorted when picksel wrote it: the next save need not sort again)."""
    path = state_path(state_dir)
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        return AlbumState(), move_aside(path, f"not valid JSON ({_short(e)})")
    if not isinstance(data, dict):
        return AlbumState(), move_aside(path, "not a JSON object")
    version = data.get("version")
    if version != STATE_VERSION or isinstance(version, bool):
        return AlbumState(), move_aside(path, f"unsupported version {version!r}")
    problems: list[str] = []
    state = _state_from_dict(data, problems)
    warning = None
    if order is not None and not problems:
        order.update({key: data.get(key) or [] for key in ("excluded", "pins")})
    if problems:
        copy = _copy_aside(path, raw)
        kept = f"the file as it was is kept as {copy}" if copy else "could not keep a copy of it"
        warning = f"{path}: dropped bad values ({'; '.join(problems)}); {kept}; the rest is in use"
    return state, warning


def _short(e: BaseException) -> str:
    return str(e).splitlines()[0][:120] if str(e) else type(e).__name__


def _copy_aside(path: Path, raw: bytes) -> str | None:
    """Keep ``raw`` (the file as read) as ``state.json.corrupt-<timestamp>[-N]``; returns
    its name. A copy with the same bytes already there is reused, so reading the same bad
    file again (a read-only command, the curator's poll) does not pile up copies."""
    for old in sorted(path.parent.glob(f"{path.name}.corrupt-*")):
        try:
            same_size = not old.is_symlink() and old.is_file() and old.stat().st_size == len(raw)
            if same_size and read_regular_file(old) == raw:
                return old.name
        except OSError:
            continue
    stamp = time.strftime("%Y%m%dT%H%M%S")
    for n in range(1000):
        target = path.with_name(f"{path.name}.corrupt-{stamp}" + (f"-{n}" if n else ""))
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        except FileExistsError:
            continue
        except OSError:
            return None
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(raw)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(target)
            return None
        return target.name
    return None


def move_aside(path: Path, why: str, what: str = "state") -> str:
    """Rename a bad file to ``NAME.corrupt-<timestamp>[-N]`` without ever replacing an
    earlier one (a symlink is renamed itself, never followed); returns the user-facing
    warning, which says a fresh ``what`` is used from now on."""
    stamp = time.strftime("%Y%m%dT%H%M%S")
    fresh = f"started with a fresh {what}"
    for n in range(1000):
        target = path.with_name(f"{path.name}.corrupt-{stamp}" + (f"-{n}" if n else ""))
        try:
            os.link(path, target, follow_symlinks=False)  # fails if target exists
        except FileExistsError:
            continue
        except OSError:
            # no hard links on this filesystem: check, then rename
            if os.path.lexists(target):
                continue
            try:
                os.rename(path, target)
            except OSError as e:
                return f"{path} is {why} and could not be moved aside ({e.strerror or e}); {fresh}"
            return f"{path} was {why}; moved it to {target.name} and {fresh}"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return f"{path} was {why}; moved it to {target.name} and {fresh}"
    return f"{path} is {why} and could not be moved aside; {fresh}"


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _str_list(data: dict, key: str, problems: list[str]) -> list[str]:
    value = data.get(key, [])
    if value is None:
        return []
    if not isinstance(value, list):
        problems.append(f"{key} is not a list")
        return []
    good = [v for v in value if isinstance(v, str)]
    if len(good) != len(value):
        problems.append(f"{len(value) - len(good)} non-text entries in {key}")
    return good


def _opt_str(data: dict, key: str, problems: list[str]) -> str | None:
    value = data.get(key)
    if value is None or isinstance(value, str):
        return value
    problems.append(f"{key} is not text")
    return None


def _settings_from(value: object, problems: list[str]) -> Settings:
    s = Settings()
    if value is None:
        return s
    if not isinstance(value, dict):
        problems.append("settings is not an object")
        return s
    method = value.get("method", s.method)
    if method in METHODS:
        s.method = method
    else:
        problems.append(f"settings.method {method!r}")
    for key, lo, hi in (("count", 1, None), ("iterations", 1, MAX_ITERATIONS), ("threshold", 1, 100)):
        v = value.get(key, getattr(s, key))
        number = _is_int(v) or (key == "threshold" and isinstance(v, float))  # 90.5% is fine
        if number and v >= lo and (hi is None or v <= hi):
            setattr(s, key, v)
        else:
            problems.append(f"settings.{key} {v!r}")
    seed = value.get("seed")
    if seed is None or (_is_int(seed) and seed >= 0):
        s.seed = seed
    else:
        problems.append(f"settings.seed {seed!r}")
    view = value.get("view", s.view)
    if view in VIEWS:
        s.view = view
    else:
        problems.append(f"settings.view {view!r}")
    return s


def selection_from_dict(value: object, problems: list[str]) -> SavedSelection | None:
    """A saved selection from its JSON form, dropping only what is bad: a vote that is not
    a whole number in 0..iterations, a consensus entry that is not text. Without a usable
    iteration count, consensus list or votes object nothing can be trusted: dropped."""
    if value is None:
        return None
    if not isinstance(value, dict):
        problems.append("selection is not an object; dropped it")
        return None
    iterations, consensus, votes = value.get("iterations"), value.get("consensus"), value.get("votes")
    if not (_is_int(iterations) and iterations >= 1):
        problems.append(f"selection.iterations {iterations!r}; dropped the selection")
        return None
    if not isinstance(consensus, list) or not isinstance(votes, dict):
        problems.append("selection.consensus or .votes has the wrong type; dropped the selection")
        return None
    good_consensus = list(dict.fromkeys(p for p in consensus if isinstance(p, str)))
    if len(good_consensus) != len(consensus):
        problems.append(f"{len(consensus) - len(good_consensus)} bad or repeated selection.consensus entries")
    good_votes = {p: v for p, v in votes.items() if _is_int(v) and 0 <= v <= iterations}
    if len(good_votes) != len(votes):
        problems.append(f"{len(votes) - len(good_votes)} selection.votes not in 0..{iterations}")
    method, count = value.get("method"), value.get("count")
    seed, fingerprint = value.get("seed"), value.get("fingerprint")
    if not isinstance(method, str):
        problems.append(f"selection.method {method!r}")
        method = "unknown"
    if not (_is_int(count) and count >= 0):
        problems.append(f"selection.count {count!r}")
        count = len(good_consensus)
    if not (seed is None or _is_int(seed)):
        problems.append(f"selection.seed {seed!r}")
        seed = None
    if not isinstance(fingerprint, str):
        problems.append("selection.fingerprint is not text")
        fingerprint = ""  # never current: the TUI and export treat it as possibly stale
    return SavedSelection(
        method=method,
        count=count,
        iterations=iterations,
        seed=seed,
        fingerprint=fingerprint,
        consensus=good_consensus,
        votes={p: v for p, v in good_votes.items() if v > 0},
    )


def _quality_from(value: object, problems: list[str]) -> dict[str, float]:
    """Threshold overrides, each checked on its own (a bad one is dropped and named)."""
    if value is None:
        return {}
    from picksel.quality import Thresholds

    return quality_overrides(Thresholds.from_dict(value, problems))


def quality_overrides(thresholds: object) -> dict[str, float]:
    """The values of a ``Thresholds`` that differ from the defaults (what state keeps)."""
    from picksel.quality import Thresholds

    assert isinstance(thresholds, Thresholds)
    default = Thresholds().to_dict()
    return {k: v for k, v in thresholds.to_dict().items() if v != default[k]}


def _state_from_dict(data: dict, problems: list[str]) -> AlbumState:
    state = AlbumState(
        excluded=set(_str_list(data, "excluded", problems)),
        pins=set(_str_list(data, "pins", problems)),
        favorites=_str_list(data, "favorites", problems),
        settings=_settings_from(data.get("settings"), problems),
        export_path=_opt_str(data, "export_path", problems),
        inventory_path=_opt_str(data, "inventory_path", problems),
        selection=selection_from_dict(data.get("selection"), problems),
        quality=_quality_from(data.get("quality"), problems),
    )
    both = state.pins & state.excluded
    if both:  # invariant: never both; the pin wins as in toggle_pin
        state.excluded -= both
        problems.append(f"{len(both)} images were both pinned and excluded; kept the pins")
    return state
