"""Fault injection for state.json: concurrent writers, bad values, hostile files.

Every test drives real ``python -m picksel`` processes on a real album and real files
(FIFOs, symlinks to devices). Interleavings are made exact with the
``PICKSEL_TEST_HOLD=POINT=FILE`` hook of picksel.statelock: the process creates FILE at
POINT and waits there until the test removes it. Future changes must keep this passing.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tui_app_helpers import index_album

from picksel.state import load_state

TIMEOUT = 120  # generous: a busy 2-core machine; a hang still fails instead of blocking


@pytest.fixture
def album(small_album: Path) -> Path:
    return index_album(small_album)


def images(album: Path) -> list[str]:
    from picksel.index import load_index

    return list(load_index(album).paths)


def cli(*argv: object, env: dict[str, str] | None = None, timeout: float = TIMEOUT):
    return subprocess.run(
        [sys.executable, "-m", "picksel", *map(str, argv)],
        capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})},
    )


def start(*argv: object, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "picksel", *map(str, argv)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, **(env or {})},
    )


def wait_for_hold(proc: subprocess.Popen, marker: Path) -> None:
    """Until ``proc`` sits at its hold point; fails if it ends without getting there."""
    deadline = time.monotonic() + TIMEOUT
    while not marker.exists():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the process ended without reaching its hold point: {out}{err}")
        assert time.monotonic() < deadline, "the process never reached its hold point"
        time.sleep(0.02)


def finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=TIMEOUT)
    return proc.returncode, out, err


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


# ---------------------------------------------------------------- lost updates (issue 8.1)


def test_select_saving_after_exclude_pin_and_favorites_keeps_all_three(album: Path, tmp_path: Path) -> None:
    paths = images(album)
    assert cli("select", album, "--count", "3", "--iterations", "4", "--seed", "1").returncode == 0
    first = load_state(album / ".picksel")[0].selection
    marker = tmp_path / "select-paused"
    sel = start("select", album, "--count", "4", "--iterations", "5", "--seed", "2",
                env={"PICKSEL_TEST_HOLD": f"before-lock={marker}"})
    wait_for_hold(sel, marker)  # computed, read its state long ago, about to save
    victim = next(p for p in paths if p not in first.consensus)
    pin = next(p for p in paths if p not in first.consensus and p != victim)
    assert cli("exclude", album, victim).returncode == 0
    assert cli("pin", album, pin).returncode == 0
    fav = cli("favorites", album, "--set")
    assert fav.returncode == 0
    marker.unlink()
    code, _out, err = finish(sel)
    assert code == 0, err
    state, warning = load_state(album / ".picksel")
    assert warning is None
    assert victim in state.excluded
    assert pin in state.pins
    assert state.favorites == list(first.consensus) == fav.stdout.split()
    assert state.selection is not None and state.selection.count == 4 and state.selection.seed == 2


def test_a_writer_holding_the_lock_makes_others_wait_and_both_changes_survive(
    album: Path, tmp_path: Path
) -> None:
    a, b = images(album)[:2]
    marker = tmp_path / "holding"
    slow = start("exclude", album, a, env={"PICKSEL_TEST_HOLD": f"locked={marker}"})
    wait_for_hold(slow, marker)  # holds .picksel/lock now
    fast = start("exclude", album, b)
    line = fast.stderr.readline()  # blocks until picksel says it waits: no sleep-based timing
    assert "waiting for another picksel" in line
    assert fast.poll() is None
    marker.unlink()
    assert finish(slow)[0] == 0
    assert finish(fast)[0] == 0
    assert {a, b} <= load_state(album / ".picksel")[0].excluded


def test_many_concurrent_excludes_all_survive(album: Path) -> None:
    paths = images(album)[:6]
    procs = [start("exclude", album, p) for p in paths]
    for proc in procs:
        code, _out, err = finish(proc)
        assert code == 0, err
    assert set(paths) <= load_state(album / ".picksel")[0].excluded


def test_export_saving_its_path_keeps_an_exclusion_made_meanwhile(album: Path, tmp_path: Path) -> None:
    assert cli("select", album, "--count", "3", "--iterations", "4", "--seed", "1").returncode == 0
    victim = images(album)[0]
    marker = tmp_path / "export-paused"
    exp = start("export", album, tmp_path / "out", env={"PICKSEL_TEST_HOLD": f"before-lock={marker}"})
    wait_for_hold(exp, marker)
    assert cli("exclude", album, victim).returncode == 0
    marker.unlink()
    assert finish(exp)[0] == 0
    state = load_state(album / ".picksel")[0]
    assert victim in state.excluded and state.export_path == str((tmp_path / "out").resolve())


def test_curator_waits_only_briefly_for_a_busy_lock_and_changes_nothing(album: Path, tmp_path: Path) -> None:
    from picksel.statelock import TUI_WAIT, StateBusy
    from picksel.tui.controller import Curator

    curator, _ = Curator.open(album)
    marker = tmp_path / "holding"
    holder = start("exclude", album, curator.rel(1), env={"PICKSEL_TEST_HOLD": f"locked={marker}"})
    wait_for_hold(holder, marker)
    t0 = time.monotonic()
    with pytest.raises(StateBusy, match="another picksel"):
        curator.toggle_excluded(0)
    assert TUI_WAIT <= time.monotonic() - t0 < TUI_WAIT + 5
    assert curator.rel(0) not in curator.state.excluded
    marker.unlink()
    assert finish(holder)[0] == 0
    assert curator.toggle_excluded(0) is True  # the lock is free again: works, keeps the other
    assert {curator.rel(0), curator.rel(1)} <= load_state(album / ".picksel")[0].excluded


def test_a_command_waiting_too_long_gives_up_with_one_line(album: Path, monkeypatch) -> None:
    """The test process itself holds the lock (as a stuck picksel would)."""
    from picksel import statelock
    from picksel.state import AlbumState

    sdir = album / ".picksel"
    fd = os.open(sdir / "lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        said: list[str] = []
        with pytest.raises(statelock.StateBusy), statelock.edit_state(
            sdir, action="exclude", warn=said.append, timeout=0.8
        ) as state:
            state.excluded.add("never.png")
        assert any("waiting for another picksel" in s for s in said)
    finally:
        os.close(fd)
    assert "never.png" not in load_state(sdir)[0].excluded
    assert isinstance(load_state(sdir)[0], AlbumState)


def test_a_symlinked_lock_file_is_not_followed(album: Path, tmp_path: Path) -> None:
    victim = tmp_path / "elsewhere" / "victim"
    victim.parent.mkdir()
    (album / ".picksel" / "lock").symlink_to(victim)
    rel = images(album)[0]
    r = cli("exclude", album, rel)
    assert r.returncode == 0
    assert "lock" in one_line(r.stderr) and "symlink" in r.stderr
    assert not victim.exists()
    assert rel in load_state(album / ".picksel")[0].excluded


def test_without_flock_the_edit_still_happens_with_a_warning(tmp_path: Path, monkeypatch) -> None:
    """Some network/FUSE filesystems refuse flock (ENOLCK); picksel warns and goes on."""
    import errno

    from picksel import statelock

    def no_locks(fd: int, op: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(statelock.fcntl, "flock", no_locks)
    said: list[str] = []
    with statelock.edit_state(tmp_path, action="exclude", warn=said.append) as state:
        state.excluded.add("a.png")
    assert load_state(tmp_path)[0].excluded == {"a.png"}
    assert len(said) == 1 and "No locks available" in said[0]


# ---------------------------------------------------------------- one bad value (issue 8.2)


def _state_with_bad_vote(album: Path) -> tuple[Path, bytes, dict]:
    assert cli("select", album, "--count", "3", "--iterations", "4", "--seed", "1").returncode == 0
    path = album / ".picksel" / "state.json"
    data = json.loads(path.read_text())
    sel = data["selection"]
    bad = sel["consensus"][0]
    sel["votes"][bad] = sel["iterations"] + 5  # a vote above the iteration count
    sel["consensus"].append(17)  # and a consensus entry that is not a path
    raw = json.dumps(data).encode()
    path.write_bytes(raw)
    return path, raw, data


def test_one_bad_vote_drops_only_that_vote_and_keeps_a_copy_told_once(album: Path) -> None:
    path, raw, data = _state_with_bad_vote(album)
    sel = data["selection"]
    bad = sel["consensus"][0]
    rel = images(album)[-1]
    r = cli("exclude", album, rel)
    assert r.returncode == 0
    line = one_line(r.stderr)
    copies = sorted(path.parent.glob("state.json.corrupt-*"))
    assert len(copies) == 1 and copies[0].name in line
    assert copies[0].read_bytes() == raw  # the file as it was, byte for byte
    state, warning = load_state(path.parent)
    assert warning is None  # repaired on disk: the next command says nothing
    assert state.selection is not None
    assert state.selection.consensus == sel["consensus"][:-1]  # only the bad entry went
    assert bad not in state.selection.votes
    assert {p: v for p, v in sel["votes"].items() if p != bad} == state.selection.votes
    assert rel in state.excluded
    again = cli("favorites", album)
    assert again.returncode == 0 and again.stderr == ""
    assert len(list(path.parent.glob("state.json.corrupt-*"))) == 1


def test_a_read_only_command_on_bad_values_tells_once_and_copies_once(album: Path) -> None:
    path, raw, _ = _state_with_bad_vote(album)
    first = cli("favorites", album)
    assert first.returncode == 0 and "state.json.corrupt-" in one_line(first.stderr)
    second = cli("inventory", album, album.parent / "inv.tsv")
    assert second.returncode == 0 and "corrupt" not in second.stderr
    copies = list(path.parent.glob("state.json.corrupt-*"))
    assert len(copies) == 1 and copies[0].read_bytes() == raw


# ---------------------------------------------------------------- hostile files (issue 8.3)


@pytest.mark.parametrize("command", [("favorites",), ("exclude", "--list")])
def test_state_json_as_a_fifo_does_not_hang(album: Path, command: tuple[str, ...]) -> None:
    path = album / ".picksel" / "state.json"
    os.mkfifo(path)
    r = cli(command[0], album, *command[1:], timeout=60)  # a hang fails with TimeoutExpired
    assert r.returncode == 0
    assert "FIFO" in one_line(r.stderr)


def test_state_json_linked_to_dev_zero_is_refused_not_read(album: Path) -> None:
    path = album / ".picksel" / "state.json"
    path.symlink_to("/dev/zero")
    rel = images(album)[0]
    r = cli("exclude", album, rel, timeout=60)
    assert r.returncode == 0
    assert "character device" in one_line(r.stderr)
    assert path.is_file() and not path.is_symlink()  # the link itself was replaced
    assert rel in load_state(path.parent)[0].excluded


def test_oversized_state_json_is_refused_quickly(album: Path) -> None:
    path = album / ".picksel" / "state.json"
    with open(path, "wb") as fh:
        fh.truncate(65 * 1024 * 1024)  # sparse: costs no disk
    r = cli("favorites", album, timeout=60)
    assert r.returncode == 0
    assert "bytes" in one_line(r.stderr)
    assert list(path.parent.glob("state.json.corrupt-*"))  # kept, not deleted


def test_writing_through_a_symlinked_state_json_never_touches_its_target(album: Path, tmp_path: Path) -> None:
    target = tmp_path / "foreign.json"
    rel = images(album)[0]
    assert cli("exclude", album, rel).returncode == 0
    original = (album / ".picksel" / "state.json").read_bytes()
    target.write_bytes(original)
    (album / ".picksel" / "state.json").unlink()
    (album / ".picksel" / "state.json").symlink_to(target)
    other = images(album)[1]
    assert cli("exclude", album, other).returncode == 0
    assert target.read_bytes() == original
    state = load_state(album / ".picksel")[0]
    assert {rel, other} <= state.excluded


def test_curator_takes_the_good_parts_of_a_file_another_tool_broke(album: Path) -> None:
    """The curator is open; a script writes state.json with one bad vote and an exclusion.
    The curator keeps the exclusion (and the copy is kept), instead of writing its older
    in-memory state over everything at the next change."""
    from picksel.tui.controller import Curator

    assert cli("select", album, "--count", "3", "--iterations", "4", "--seed", "1").returncode == 0
    curator, _ = Curator.open(album)
    path = album / ".picksel" / "state.json"
    data = json.loads(path.read_text())
    other = curator.rel(2)
    data["excluded"] = [other]
    data["selection"]["votes"][data["selection"]["consensus"][0]] = 99
    path.write_text(json.dumps(data))
    reloaded, warning = curator.reload_if_changed()
    assert reloaded and "state.json.corrupt-" in warning
    curator.toggle_pin(0)
    state = load_state(album / ".picksel")[0]
    assert other in state.excluded and state.selection is not None
    assert len(state.selection.consensus) == 3


def test_a_writer_killed_while_holding_the_lock_blocks_nobody_and_leaves_state_whole(
    album: Path, tmp_path: Path
) -> None:
    a, b = images(album)[:2]
    assert cli("exclude", album, a).returncode == 0
    before = (album / ".picksel" / "state.json").read_bytes()
    marker = tmp_path / "holding"
    victim = start("pin", album, b, env={"PICKSEL_TEST_HOLD": f"locked={marker}"})
    wait_for_hold(victim, marker)
    victim.kill()  # SIGKILL with the lock held: the kernel drops the flock with the process
    victim.communicate(timeout=TIMEOUT)
    assert (album / ".picksel" / "state.json").read_bytes() == before
    r = cli("exclude", album, b)
    assert r.returncode == 0 and "waiting" not in r.stderr
    assert {a, b} <= load_state(album / ".picksel")[0].excluded


async def test_the_curator_says_so_when_another_picksel_holds_the_lock(album: Path, tmp_path: Path) -> None:
    from picksel.tui.app import PickselApp

    app = PickselApp(album, graphics="text", seed=3, compute_umap=False)
    async with app.run_test(size=(120, 40)) as pilot:
        from tui_app_helpers import settle

        await settle(app, pilot)
        marker = tmp_path / "holding"
        row = app.current_row
        other = app.curator.rel(1 if row != 1 else 2)
        holder = start("exclude", album, other, env={"PICKSEL_TEST_HOLD": f"locked={marker}"})
        try:
            wait_for_hold(holder, marker)
            await pilot.press("x")
            await pilot.pause()
            assert any("another picksel is writing" in n.message for n in app._notifications)
            assert app.curator.rel(row) not in app.curator.state.excluded
        finally:
            marker.unlink(missing_ok=True)
            finish(holder)
        await pilot.press("x")  # free again: works, and keeps what the other one did
        await pilot.pause()
        assert {app.curator.rel(row), other} <= load_state(album / ".picksel")[0].excluded


def test_temps_of_a_writer_killed_mid_save_are_swept_by_the_next_one(album: Path) -> None:
    sdir = album / ".picksel"
    dead = [sdir / ".state.json.k1ll3d_x.tmp", sdir / ".undo.json.abc_1234.tmp"]
    for path in dead:
        path.write_text('{"half": ')
    foreign = sdir / ".notes.txt.abcdefgh.tmp"  # not one of ours: left alone
    foreign.write_text("x")
    assert cli("exclude", album, images(album)[0]).returncode == 0
    assert not any(p.exists() for p in dead)
    assert foreign.exists()


# ------------------------------------- the cached re-read of edit_state (large albums)


def in_process_exclude(album: Path, rel: str) -> None:
    """One edit by this process, as the curator or a long-running tool makes it: the
    second and later edits may reuse what this process last read or wrote."""
    from picksel.statelock import edit_state

    with edit_state(album / ".picksel", action="exclude") as state:
        state.excluded.add(rel)


REWRITE_IN_PLACE = (
    "import os, sys\n"
    "path, old, new = sys.argv[1:4]\n"
    "st = os.stat(path)\n"
    "data = open(path, 'rb').read().replace(old.encode(), new.encode())\n"
    "with open(path, 'r+b') as fh:\n"
    "    fh.write(data)\n"
    "os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))\n"
)
"""Another tool's same-size rewrite: same inode, same size, mtime set back (a coarse clock)."""


def rewrite_in_place(path: Path, old: str, new: str) -> None:
    before = path.stat()
    done = subprocess.run([sys.executable, "-c", REWRITE_IN_PLACE, str(path), old, new], timeout=TIMEOUT)
    assert done.returncode == 0
    after = path.stat()
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
        before.st_ino, before.st_size, before.st_mtime_ns)


def test_an_exclusion_by_another_process_between_two_of_ours_is_kept(album: Path) -> None:
    a, b, c = images(album)[:3]
    in_process_exclude(album, a)
    assert cli("exclude", album, b).returncode == 0
    in_process_exclude(album, c)
    assert {a, b, c} <= load_state(album / ".picksel")[0].excluded


def test_a_same_size_rewrite_in_the_same_mtime_tick_is_not_missed(album: Path) -> None:
    """Another tool rewrites state.json in place between two of our edits: same inode,
    same size, and (a coarse clock, simulated with utime) the same mtime. Our second
    edit must start from its content, not from what we remember writing."""
    a, c = images(album)[:2]
    foreign = "Z" * len(a)
    in_process_exclude(album, a)
    rewrite_in_place(album / ".picksel" / "state.json", a, foreign)
    in_process_exclude(album, c)
    excluded = load_state(album / ".picksel")[0].excluded
    assert foreign in excluded and c in excluded and a not in excluded


def test_the_curator_does_not_miss_a_same_size_rewrite_in_the_same_mtime_tick(album: Path) -> None:
    from picksel.tui.controller import Curator

    curator, _ = Curator.open(album)
    curator.toggle_excluded(0)
    foreign = "Z" * len(curator.rel(0))
    rewrite_in_place(album / ".picksel" / "state.json", curator.rel(0), foreign)
    curator.toggle_excluded(1)
    excluded = load_state(album / ".picksel")[0].excluded
    assert foreign in excluded and curator.rel(1) in excluded and curator.rel(0) not in excluded
    assert curator.state.excluded == excluded


def test_an_undo_by_another_process_between_two_of_ours_is_kept(album: Path) -> None:
    a, b, c = images(album)[:3]
    in_process_exclude(album, a)
    in_process_exclude(album, b)
    assert cli("undo", album).returncode == 0  # takes b back
    in_process_exclude(album, c)
    excluded = load_state(album / ".picksel")[0].excluded
    assert {a, c} <= excluded and b not in excluded
    assert cli("undo", album).returncode == 0  # takes c back, then a: the journal is whole
    assert cli("undo", album).returncode == 0
    assert not {a, b, c} & load_state(album / ".picksel")[0].excluded
