"""One writer at a time for state.json: the lock and the edit transaction.

Several picksel processes may work on one album at once (a 17 s ``select`` in one shell,
``exclude`` in another, the curator open in a third). Each write is a read-modify-write,
so two unserialised writers lose one another's change. Every writer therefore takes
``flock`` on ``STATE_DIR/lock``, re-reads the newest state.json, applies only its own
change and writes atomically before unlocking (:func:`edit_state`). Long work (a
selection, an export) runs before, outside the lock, and only its result is applied
inside. Readers need no lock: state.json is only ever replaced whole.

Where the lock cannot be had (no ``flock`` on the filesystem, a state folder that is
read-only) picksel warns once and goes on without it rather than refusing to work.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from picksel import statecache, undo
from picksel.errors import PickselError
from picksel.fsutil import sweep_temps, temp_pattern
from picksel.state import AlbumState, state_path

LOCK_FILENAME = "lock"
CLI_WAIT = 30.0
"""Seconds a command waits for another writer; real edits hold the lock for milliseconds."""
TUI_WAIT = 1.5
"""The curator's wait: its UI thread must not freeze for long."""
WAIT_NOTE_AFTER = 0.5

Warn = Callable[[str], None]
_OUR_TEMPS = temp_pattern(r"state\.json|undo\.json")

_warned: set[str] = set()


class StateBusy(PickselError):
    """Another picksel held the lock for longer than we were willing to wait."""


def _warn_once(warn: Warn | None, message: str) -> None:
    if warn is not None and message not in _warned:
        _warned.add(message)
        warn(message)


def fault_hold(point: str) -> None:
    """Fault-test hook: with ``PICKSEL_TEST_HOLD=POINT=FILE`` in the environment, a real
    process reaching POINT creates FILE and waits until the test removes it, so a test
    can run other writers at an exact moment. Does nothing when the variable is unset."""
    spec = os.environ.get("PICKSEL_TEST_HOLD", "")
    name, _, marker = spec.partition("=")
    if name != point or not marker:
        return
    Path(marker).write_text(str(os.getpid()), encoding="utf-8")
    deadline = time.monotonic() + 120
    while os.path.exists(marker) and time.monotonic() < deadline:
        time.sleep(0.01)


def _open_lock(state_dir: Path, warn: Warn | None) -> int | None:
    lock = Path(state_dir) / LOCK_FILENAME
    flags = os.O_CLOEXEC | os.O_NOFOLLOW
    try:
        Path(state_dir).mkdir(parents=True, exist_ok=True)
        return os.open(lock, os.O_RDWR | os.O_CREAT | flags, 0o644)
    except OSError as e:
        if e.errno in (errno.EACCES, errno.EROFS, errno.EPERM):
            with contextlib.suppress(OSError):  # read-only folder: an existing lock still locks
                return os.open(lock, os.O_RDONLY | flags)
            return None  # nothing can be saved there either; the save says so
        why = "it is a symlink" if e.errno == errno.ELOOP else (e.strerror or str(e))
        _warn_once(warn, f"cannot open the lock {lock} ({why}); other picksel processes "
                         "writing this album at the same time may undo each other's changes")
        return None


def _acquire(fd: int, lock: Path, timeout: float | None, warn: Warn | None,
             on_wait: Callable[[], None] | None) -> bool:
    """True once locked, False when this filesystem cannot lock; StateBusy on timeout."""
    start = time.monotonic()
    told = False
    delay = 0.005
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            pass
        except OSError as e:  # ENOLCK, EOPNOTSUPP...: some network and FUSE filesystems
            _warn_once(warn, f"cannot lock {lock} ({e.strerror or e}); other picksel processes "
                             "writing this album at the same time may undo each other's changes")
            return False
        waited = time.monotonic() - start
        if timeout is not None and waited >= timeout:
            raise StateBusy(
                f"another picksel is writing {lock.parent / 'state.json'} "
                f"(waited {timeout:g} s); nothing was changed, try again"
            )
        if not told and waited >= WAIT_NOTE_AFTER and on_wait is not None:
            told = True
            on_wait()
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


@contextlib.contextmanager
def state_lock(
    state_dir: Path,
    *,
    timeout: float | None = CLI_WAIT,
    warn: Warn | None = None,
    on_wait: Callable[[], None] | None = None,
) -> Iterator[None]:
    """Hold the album's state lock (closing the descriptor releases it, even on a crash)."""
    fault_hold("before-lock")
    fd = _open_lock(state_dir, warn)
    if fd is None:
        yield
        return
    try:
        _acquire(fd, Path(state_dir) / LOCK_FILENAME, timeout, warn, on_wait)
        fault_hold("locked")
        yield
    finally:
        os.close(fd)


def _tell_waiting(warn: Warn | None, state_dir: Path) -> Callable[[], None] | None:
    if warn is None:
        return None
    return lambda: warn(f"waiting for another picksel to finish writing {state_path(state_dir)}…")


@contextlib.contextmanager
def edit_state(
    state_dir: Path,
    *,
    action: str | None,
    warn: Warn | None = None,
    timeout: float | None = CLI_WAIT,
) -> Iterator[AlbumState]:
    """Lock, load the newest state, let the caller change it, save it if it changed.

    ``action`` names the change in the undo journal ("exclude", "select"...); None keeps
    the change out of it (settings, export path, an undo itself). A state that was
    repaired on loading (bad values dropped, copy kept) is saved even when unchanged,
    so the user is told about it once. Nothing is saved when the body raises."""
    with state_lock(state_dir, timeout=timeout, warn=warn, on_wait=_tell_waiting(warn, state_dir)):
        state, before, warning = statecache.load(state_dir)  # cheap when nobody else wrote
        if warning and warn is not None:
            warn(warning)
        yield state
        commit(state_dir, before, state, action, force=warning is not None)


def commit(
    state_dir: Path, before: undo.Snapshot, state: AlbumState, action: str | None, *, force: bool = False
) -> bool:
    """Journal (when ``action``) and save a change made under the lock; False when there
    was nothing to save. The journal is written first: a kill in between leaves an entry
    whose undo changes nothing, never a change that cannot be undone."""
    if not force and not undo.differs(before, state):
        return False
    sweep_temps(Path(state_dir), _OUR_TEMPS)  # left by writers killed mid-save
    diffs = undo.set_diffs(before, state)
    if action is not None:
        entry = undo.entry_for(before, state, action, diffs)
        if entry is not None:
            undo.record(state_dir, entry)
    statecache.save(state_dir, state, (before, diffs))
    return True


def open_repaired(state_dir: Path, warn: Warn | None = None) -> AlbumState:
    """Load the state for a command or the curator; a file with bad values is repaired
    (copy kept, bad parts dropped) and saved under the lock now, so the user is told
    once. Saving may fail (read-only album): reading goes on all the same."""
    state, _before, warning = statecache.load(state_dir)  # remembered: the first edit is cheap
    if warning is None:
        return state
    if warn is not None:
        warn(warning)
    with contextlib.suppress(PickselError), state_lock(state_dir, timeout=TUI_WAIT, warn=warn):
        fresh, _before, again = statecache.load(state_dir)
        if again is not None:
            statecache.save(state_dir, fresh)
        state = fresh
    return state
