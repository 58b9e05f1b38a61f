"""Non-widget glue between the engine (``picksel.*``) and the Textual app.

The :class:`Curator` owns one album's index and state: it turns them into the
:class:`~picksel.tui.viewstate.ViewModel` the panes draw, applies the curator operations
(exclude, pin, favorites...) and saves ``state.json`` after every change, so quitting at
any moment loses nothing. It never imports Textual widgets, which keeps every rule here
testable with plain pytest and leaves the app free to only wire keys to methods.

Threading: only :meth:`SelectionJob.run` is meant for a worker thread. It works on a
snapshot (embeddings plus masks taken when the run started) and returns the result; the
app applies it on the UI thread with :meth:`Curator.apply_result`.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from picksel import state as st
from picksel import statecache, undo
from picksel.album import state_dir as default_state_dir
from picksel.errors import PickselError, ProgressFn, UsageError
from picksel.rowlookup import SortedRows
from picksel.statelock import TUI_WAIT, StateBusy, commit, open_repaired, state_lock
from picksel.tui.marks import QualityMarks, quality_facts
from picksel.tui.viewstate import (
    STATE_CORE,
    STATE_EXCLUDED,
    STATE_STABLE,
    STATE_VARIABLE,
    ViewModel,
    row_states,
)

METHOD_LABELS = {"fps": "Diversity (FPS)", "kmeans": "Blocks (K-Means)"}
MAX_ITERATIONS = 100


@dataclass
class Counts:
    """The numbers the title, status line and legend show."""

    images: int
    selected: int  # consensus minus exclusions
    target: int  # requested count of the last run (0 without a selection)
    excluded: int
    core: int
    stable: int
    variable: int
    pinned: int
    favorites: int

    def status(self) -> str:
        if self.target == 0:
            return f"no selection yet ({self.excluded:,} excluded)"
        return f"{self.selected:,} of {self.target:,} selected ({self.excluded:,} excluded)"


@dataclass
class Details:
    """What the large preview shows about one image."""

    rel: str
    path: Path
    size: int
    dimensions: str
    votes: int
    iterations: int
    frequency: float
    tier: str
    excluded: bool
    pinned: bool
    favorite: bool
    caption: str
    quality: list[tuple[str, str]] = field(default_factory=list)  # (label, value) of the check


@dataclass
class SelectionJob:
    """A snapshot of everything one selection run needs, safe to run in a thread."""

    embeddings: np.ndarray | Callable[[], np.ndarray]
    """The vectors, or what returns them: the index may still be reading them, and a
    damaged file raises IndexCorrupt there, in the worker, not on the UI thread."""
    method: str
    count: int
    iterations: int
    seed: int | None
    excluded: np.ndarray
    pinned: np.ndarray
    cancel_event: threading.Event = field(default_factory=threading.Event)

    def run(self, progress: ProgressFn | None = None):
        """Run the Monte Carlo selection; raises Cancelled when the event is set."""
        from picksel.select import run_selection

        return run_selection(
            self.embeddings() if callable(self.embeddings) else self.embeddings,
            method=self.method,
            count=self.count,
            iterations=self.iterations,
            seed=self.seed,
            excluded=self.excluded,
            pinned=self.pinned if self.pinned.any() else None,
            progress=progress,
            cancel=self.cancel_event.is_set,
        )


@dataclass
class QualityJob:
    """A snapshot of what ``picksel check`` needs, safe to run in a thread: the measures
    are cached in quality.npz, so re-checking an unchanged album decodes nothing."""

    album: Path
    rels: list[str]
    state_dir: Path
    thresholds: object  # picksel.quality.Thresholds
    pinned: set[str]
    rows: dict[str, int]  # path -> index row, to align the result with the list
    overrides: dict[str, float] = field(default_factory=dict)  # state's "quality" then
    cancel_event: threading.Event = field(default_factory=threading.Event)

    def run(self, progress: ProgressFn | None = None) -> QualityMarks:
        """The check's marks per index row; raises Cancelled when the event is set.
        Aligning the result to the rows happens here too: at a million images it is a
        million look-ups the UI thread should not make."""
        from picksel.check import check_album

        result = check_album(self.album, self.rels, self.state_dir, self.thresholds,  # type: ignore[arg-type]
                             self.pinned, progress=progress, cancel=self.cancel_event.is_set)
        return QualityMarks.from_check(result, self.rows, len(self.rels), self.pinned)


def parse_int(text: str, name: str, lo: int, hi: int | None = None) -> int:
    """A whole number in ``lo..hi`` from an input field, or UsageError saying why not."""
    text = text.strip().replace(",", "").replace("_", "")
    if not text:
        raise UsageError(f"{name}: enter a number")
    try:
        value = int(text)
    except ValueError:
        raise UsageError(f"{name}: {text!r} is not a whole number") from None
    if value < lo:
        raise UsageError(f"{name}: at least {lo}")
    if hi is not None and value > hi:
        raise UsageError(f"{name}: at most {hi:,}")
    return value


def read_caption(image_path: Path, limit: int = 4000) -> str:
    """Text of the image's caption sidecar (.txt / .caption / .json), '' when none."""
    try:
        from picksel.scan import find_sidecars

        sidecars = find_sidecars(image_path)
    except (ImportError, OSError):
        return ""
    for sc in sidecars:
        try:
            return sc.read_text(encoding="utf-8", errors="replace")[:limit].strip()
        except OSError:
            continue
    return ""


class Curator:
    """One open album: its index, its state and the operations of the curator panel."""

    def __init__(self, album: Path, state_dir: Path, index, state: st.AlbumState) -> None:
        self.album = Path(album)
        self.state_dir = Path(state_dir)
        self.index = index
        self.state = state
        self.paths: list[str] = list(index.paths)
        self._rows: Mapping[str, int] | None = None
        self._fingerprint: str | None = None
        self._stamp = self._disk_stamp()
        self.seed_override: int | None = None  # tests and screenshots: deterministic runs
        self.save_problem: str | None = None  # why the last save failed, if it did
        self.notes: list[str] = []  # warnings for the app to show (e.g. no locking here)
        self._quality: QualityMarks | None = None
        self._quality_pins: frozenset[str] | None = None  # the pins its keepers follow

    # ------------------------------------------------------------------ opening

    @classmethod
    def open(cls, album: Path, state_dir: Path | None = None) -> tuple[Curator, str | None]:
        """Load index and state; IndexMissing / IndexCorrupt propagate to the caller.

        Returns the curator and the state loader's warning (a corrupt state.json that was
        moved aside), which the app shows as a notification.
        """
        from picksel.index import load_index

        album = Path(album)
        sdir = default_state_dir(album, state_dir)
        index = load_index(album, state_dir, verify=False)  # the app checks in the background
        warnings: list[str] = []
        state = open_repaired(sdir, warn=warnings.append)
        return cls(album, sdir, index, state), "\n".join(warnings) or None

    @property
    def n(self) -> int:
        return len(self.paths)

    @property
    def quality(self) -> QualityMarks | None:
        """The last quality check, per index row, its duplicate keepers chosen for the
        current pins (the check's rule: a pinned image is kept)."""
        return self._quality

    @quality.setter
    def quality(self, marks: QualityMarks | None) -> None:
        self._quality, self._quality_pins = marks, None
        self._follow_pins()  # pins may have changed while the check ran

    def _follow_pins(self) -> None:
        """Re-choose the keepers when the pins changed (p, undo, redo, another picksel):
        from the measures the marks hold, no image is read."""
        if self._quality is None:
            return
        pins = frozenset(self.state.pins)
        if pins != self._quality_pins:
            self._quality = self._quality.with_pins(self.pinned_mask(), self.paths)
            self._quality_pins = pins

    @property
    def rows(self) -> Mapping[str, int]:
        """rel path -> row: a binary search over the loaded path array (nothing to build
        at 1M images), or a dict for an index built in this process."""
        if self._rows is None:
            array = getattr(self.index, "paths_array", None)
            if array is not None and len(array) == len(self.paths):
                self._rows = SortedRows(self.paths, array)
            else:
                self._rows = {p: i for i, p in enumerate(self.paths)}
        return self._rows

    @property
    def fingerprint(self) -> str:
        if self._fingerprint is None:
            self._fingerprint = self.index.fingerprint()
        return self._fingerprint

    @property
    def settings(self) -> st.Settings:
        return self.state.settings

    def _commit(self, before: undo.Snapshot, action: str | None) -> None:
        """Journal and write a change made under the lock. A failure (read-only album
        without --state-dir, full disk) does not lose the change: the curator goes on
        from memory and ``save_problem`` says why, for the app to tell the user."""
        try:
            commit(self.state_dir, before, self.state, action)
        except PickselError as e:
            self.save_problem = f"{e}. Changes are kept until you quit; --state-dir saves them elsewhere."
            return
        self.save_problem = None
        self._stamp = self._disk_stamp()

    def _disk_stamp(self) -> tuple[int, int, int] | None:
        try:
            s = st.state_path(self.state_dir).stat()
        except OSError:
            return None
        return (s.st_mtime_ns, s.st_size, s.st_ino)

    def reload_if_changed(self, *, exact: bool = False) -> tuple[bool, str | None]:
        """Take state.json from disk when another picksel wrote it since we last read or
        wrote it (a CLI ``exclude`` in another shell, a second curator), so our next
        save does not silently undo its exclusions, pins or selection.

        ``exact`` (under the lock, before a change) also compares the bytes with what this
        process last read or wrote: a same-size rewrite in one mtime tick keeps the stat.

        Returns (reloaded, warning). A file that vanished or no longer parses (moved
        aside) keeps our in-memory state, which the next save writes back; a file with
        some bad values (copied aside, still in place) is taken without them."""
        stamp = self._disk_stamp()
        same = stamp == self._stamp
        if same and (not exact or stamp is None or statecache.holds(self.state_dir)):
            return False, None
        self._stamp = stamp
        if stamp is None:
            return False, None
        state, _before, warning = statecache.load(self.state_dir)
        if warning is not None and self._disk_stamp() is None:
            return False, warning
        self.state = state
        self._follow_pins()
        return True, warning

    # ------------------------------------------------------------------ masks and model

    def _mask(self, rels) -> np.ndarray:
        mask = np.zeros(self.n, dtype=bool)
        rows = self.rows
        if isinstance(rows, SortedRows):
            mask[rows.rows_of(rels)] = True
            return mask
        idx = [rows[r] for r in rels if r in rows]
        if idx:
            mask[np.asarray(idx, dtype=np.int64)] = True
        return mask

    def excluded_mask(self) -> np.ndarray:
        return self._mask(self.state.excluded)

    def pinned_mask(self) -> np.ndarray:
        return self._mask(self.state.pins)

    def favorite_mask(self) -> np.ndarray:
        return self._mask(self.state.favorites)

    def selection_arrays(self) -> tuple[np.ndarray, int, np.ndarray]:
        """(votes per row, iterations, consensus rows) of the saved selection, by path."""
        votes = np.zeros(self.n, dtype=np.int32)
        sel = self.state.selection
        if sel is None:
            return votes, 0, np.zeros(0, dtype=np.int64)
        rows = self.rows
        for rel, v in sel.votes.items():
            r = rows.get(rel)
            if r is not None:
                votes[r] = v
        consensus = np.asarray([rows[p] for p in sel.consensus if p in rows], dtype=np.int64)
        return votes, int(sel.iterations), consensus

    def view_model(self) -> ViewModel:
        """Everything the panes draw. Colours cover the consensus only: an image that was
        picked in a few iterations but did not make the top N is not "selected"."""
        votes, iterations, consensus = self.selection_arrays()
        excluded = self.excluded_mask()
        frequency = (
            votes.astype(np.float64) * 100.0 / iterations if iterations else np.zeros(self.n)
        )
        shown = np.zeros(self.n, dtype=np.int32)
        if len(consensus):
            shown[consensus] = np.maximum(votes[consensus], 1)
        states = row_states(self.n, shown if iterations else None, max(iterations, 1), excluded)
        return ViewModel(
            root=self.album,
            paths=self.paths,
            states=states,
            votes=votes,
            frequency=frequency,
            excluded=excluded,
            pinned=self.pinned_mask(),
            favorite=self.favorite_mask(),
            consensus=consensus,
            state_dir=self.state_dir,
            quality=self.quality,
        )

    def counts(self, vm: ViewModel | None = None) -> Counts:
        vm = vm if vm is not None else self.view_model()
        sel = self.state.selection
        s = vm.states
        return Counts(
            images=self.n,
            selected=len(self.included_rels()),
            target=int(sel.count) if sel is not None else 0,
            excluded=int(vm.excluded.sum()),
            core=int((s == STATE_CORE).sum()),
            stable=int((s == STATE_STABLE).sum()),
            variable=int((s == STATE_VARIABLE).sum()),
            pinned=int(vm.pinned.sum()),
            favorites=int(vm.favorite.sum()),
        )

    def voted_frequencies(self) -> np.ndarray:
        """Frequency (%) of every image that got at least one vote (for the chart)."""
        sel = self.state.selection
        if sel is None or not sel.votes:
            return np.zeros(0)
        v = np.fromiter(sel.votes.values(), dtype=np.float64, count=len(sel.votes))
        return v * 100.0 / sel.iterations

    def title(self) -> str:
        n_ex = sum(1 for r in self.state.excluded if r in self.rows)
        return f"picksel — {self.album.name} ({self.n:,} images, {n_ex:,} excluded)"

    def included_rels(self) -> list[str]:
        """The selection to export: consensus minus exclusions, in consensus order."""
        rows = self.rows
        return [p for p in st.included_paths(self.state) if p in rows]

    # ------------------------------------------------------------------ operations

    def rel(self, row: int) -> str:
        return self.paths[row]

    @contextlib.contextmanager
    def _editing(self, action: str | None) -> Iterator[st.AlbumState]:
        """Change the freshest state under the album's lock and save it when the change is
        done (journaled for undo under ``action``). Another picksel holding the lock for
        more than TUI_WAIT seconds raises StateBusy, with nothing changed: the UI thread
        never hangs on it."""
        with state_lock(self.state_dir, timeout=TUI_WAIT, warn=self.notes.append):
            self.reload_if_changed(exact=True)
            before = undo.snapshot(self.state)
            try:
                yield self.state
                self._commit(before, action)
            finally:
                self._follow_pins()

    def toggle_excluded(self, row: int) -> bool:
        with self._editing("x") as state:
            return st.toggle_excluded(state, self.rel(row))

    def toggle_pin(self, row: int) -> bool:
        with self._editing("p") as state:
            return st.toggle_pin(state, self.rel(row))

    def at_or_above(self, threshold: float) -> list[str]:
        """What ``exclude_at_or_above`` would newly exclude now (for the confirmation)."""
        self.reload_if_changed()
        sel = self.state.selection
        if sel is None:
            raise PickselError("no saved selection yet: run a selection first")
        st.check_threshold(threshold)
        ex, pins, rows = self.state.excluded, self.state.pins, self.rows
        return [p for p in sel.at_or_above(threshold) if p not in ex and p not in pins and p in rows]

    def exclude_at_or_above(self, threshold: float) -> int:
        with self._editing(f"X ≥ {threshold:g}%") as state:
            return st.exclude_at_or_above(state, threshold)

    def exclude_found(self, rels: list[str], action: str) -> tuple[int, list[str]]:
        """Exclude what the quality check found (pinned images left alone), as one
        journaled change ``u`` takes back; (newly excluded, pinned left alone)."""
        with self._editing(action) as state:
            return st.exclude_unpinned(state, rels)

    def keep_one(self, keep: str, others: list[str], action: str) -> tuple[int, list[str]]:
        """Duplicates review: keep ``keep`` (included again if it was excluded) and exclude
        ``others`` (pinned ones left alone), as one journaled change."""
        with self._editing(action) as state:
            st.set_excluded(state, [keep], False)
            return st.exclude_unpinned(state, others)

    # ------------------------------------------------------------------ quality check

    def quality_job(self) -> QualityJob:
        """Snapshot for a check with the state's thresholds (``picksel check --set``)."""
        from picksel.quality import Thresholds

        return QualityJob(self.album, list(self.paths), self.state_dir,
                          Thresholds.from_dict(self.state.quality), set(self.state.pins),
                          self.rows, dict(self.state.quality))

    def clear_exclusions(self) -> int:
        with self._editing("C") as state:
            return st.clear_exclusions(state)

    def clear_selection(self) -> bool:
        with self._editing("c") as state:
            had = state.selection is not None
            st.clear_selection(state)
            return had

    def set_favorites(self) -> int:
        with self._editing("f") as state:
            return st.set_favorites(state)

    def undo(self) -> undo.Undone | None:
        """Take back the newest journaled change (made here or by any other picksel)."""
        return self._journal_step(undo.undo_last)

    def redo(self) -> undo.Undone | None:
        """Make again what the last undo took back (here or in any other picksel)."""
        return self._journal_step(undo.redo_last)

    def _journal_step(self, step) -> undo.Undone | None:
        def save() -> None:
            statecache.save(self.state_dir, self.state)
            self.save_problem = None
            self._stamp = self._disk_stamp()

        with state_lock(self.state_dir, timeout=TUI_WAIT, warn=self.notes.append):
            self.reload_if_changed(exact=True)
            try:
                return step(self.state_dir, self.state, save)
            finally:
                self._follow_pins()

    def _remember(self, **values) -> None:
        """Settings and remembered paths: saved, not journaled. When another picksel holds
        the lock they stay in memory and are saved with the next change."""
        try:
            with self._editing(None) as state:
                for key, value in values.items():
                    target = state.settings if hasattr(state.settings, key) else state
                    setattr(target, key, value)
        except StateBusy as e:
            for key, value in values.items():
                target = self.state.settings if hasattr(self.state.settings, key) else self.state
                setattr(target, key, value)
            self.save_problem = str(e)

    def update_settings(self, **values) -> None:
        """Remember curator panel values (method, count, iterations, threshold)."""
        if any(getattr(self.state.settings, k) != v for k, v in values.items()):
            self._remember(**values)

    def set_export_path(self, path: str) -> None:
        if self.state.export_path != path:
            self._remember(export_path=path)

    def set_inventory_path(self, path: str) -> None:
        if getattr(self.state, "inventory_path", None) != path:
            self._remember(inventory_path=path)

    # ------------------------------------------------------------------ selection

    def selection_job(self) -> SelectionJob:
        """Validate the settings against the album and snapshot what the run needs."""
        s = self.state.settings
        excluded = self.excluded_mask()
        available = int(self.n - excluded.sum())
        if available <= 0:
            raise PickselError("every image is excluded: clear some exclusions first (C)")
        try:
            from picksel.select import validate
        except ImportError:  # pragma: no cover - select always ships with the app
            validate = None
        count, iterations = s.count, s.iterations
        if validate is not None:
            count, iterations = validate(count, iterations, available)
        index = self.index
        return SelectionJob(
            embeddings=lambda: index.embeddings,
            method=s.method,
            count=int(count),
            iterations=int(iterations),
            seed=self.seed_override if self.seed_override is not None else s.seed,
            excluded=excluded,
            pinned=self.pinned_mask(),
        )

    def apply_result(self, result) -> st.SavedSelection:
        """Store a finished run as the album's selection (saved at once)."""
        with self._editing("selection run") as state:
            state.selection = st.SavedSelection.from_result(result, self.paths, self.fingerprint)
            return state.selection

    # ------------------------------------------------------------------ details

    def details(self, row: int) -> Details:
        rel = self.rel(row)
        path = self.album / rel
        try:
            size = path.stat().st_size
        except OSError:
            size = -1
        dims = "?"
        try:
            from PIL import Image

            with Image.open(path) as im:
                dims = f"{im.width} × {im.height}"
        except Exception:  # noqa: BLE001 - any unreadable file just shows "?"
            dims = "unreadable"
        sel = self.state.selection
        votes = sel.votes.get(rel, 0) if sel is not None else 0
        iterations = sel.iterations if sel is not None else 0
        freq = votes * 100.0 / iterations if iterations else 0.0
        tier = sel.tier(rel) if sel is not None else ""
        if sel is not None and rel not in sel.consensus and tier:
            tier = f"{tier} (not in the top {sel.count})"
        return Details(
            rel=rel,
            path=path,
            size=size,
            dimensions=dims,
            votes=votes,
            iterations=iterations,
            frequency=freq,
            tier=tier or "not selected",
            excluded=rel in self.state.excluded,
            pinned=rel in self.state.pins,
            favorite=rel in set(self.state.favorites),
            caption=read_caption(path),
            quality=quality_facts(self.quality, row, lambda r: self.paths[r]),
        )


def legend_counts(vm: ViewModel) -> dict[str, int]:
    s = vm.states
    return {
        "core": int((s == STATE_CORE).sum()),
        "stable": int((s == STATE_STABLE).sum()),
        "variable": int((s == STATE_VARIABLE).sum()),
        "excluded": int((s == STATE_EXCLUDED).sum()),
    }


def default_export_path(curator: Curator) -> str:
    """The last export folder, else ``ALBUM_export`` beside the album (where the user
    keeps their pictures; the home folder can be anywhere, even ``/root``)."""
    if curator.state.export_path:
        return curator.state.export_path
    album = Path(curator.album).resolve()
    return str(album.parent / f"{album.name or 'album'}_export")


def default_inventory_path(curator: Curator, csv: bool = False) -> str:
    """The last inventory file, else ``SET_inventory.tsv`` beside the last export folder
    SET (never inside it: a training folder should hold only images and captions), else
    ``ALBUM_inventory.tsv`` in the home folder."""
    ext = ".csv" if csv else ".tsv"
    last = getattr(curator.state, "inventory_path", None)
    if last:
        return str(Path(last).with_suffix(ext))
    if curator.state.export_path:
        export = Path(curator.state.export_path)
        return str(export.parent / f"{export.name}_inventory{ext}")
    return str(Path.home() / f"{curator.album.name}_inventory{ext}")


def human_size(n: int) -> str:
    if n < 0:
        return "?"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"
