"""Fault injection for indexing: signals to a running ``picksel index``, unreadable
folders, images too large to decode. Real processes, real files; future changes must
keep passing these.

Process trees are read from /proc (no psutil): a worker is any descendant of the
picksel process, identified by pid *and* start time so a recycled pid is not mistaken
for a survivor; zombies count as gone (they hold no memory).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from picksel.index import build_index, index_path

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")

EXIT_BUDGET = 2.0
"""Seconds from Ctrl-C / SIGTERM to picksel's exit: the promise in the README."""
REAP_BUDGET = 5.0
"""Seconds for every worker to be gone once picksel itself is gone (workers check for
their parent every 0.5 s; the rest is slack for a loaded 2-core machine)."""
START_TIMEOUT = 120.0
"""Seconds to wait for the workers to start: generous, the machine may be busy."""


# --------------------------------------------------------------------------- /proc


def _proc_table() -> dict[int, tuple[int, str, int]]:
    """pid -> (parent pid, state letter, start time in clock ticks)."""
    table = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                stat = fh.read().decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        table[int(name)] = (int(fields[1]), fields[0], int(fields[19]))
    return table


def _descendants(pid: int) -> dict[int, int]:
    """pid -> start time of every process below ``pid``."""
    table = _proc_table()
    found: dict[int, int] = {}
    frontier = {pid}
    while frontier:
        frontier = {p for p, (ppid, _, _) in table.items() if ppid in frontier and p not in found}
        found.update({p: table[p][2] for p in frontier})
    return found


def _alive(procs: dict[int, int]) -> dict[int, int]:
    table = _proc_table()
    return {
        p: start
        for p, start in procs.items()
        if p in table and table[p][2] == start and table[p][1] not in "ZX"
    }


def _wait_gone(procs: dict[int, int], budget: float) -> dict[int, int]:
    """Survivors after waiting up to ``budget`` seconds."""
    deadline = time.monotonic() + budget
    left = _alive(procs)
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = _alive(left)
    return left


def _kill_all(procs: dict[int, int]) -> None:
    for p in _alive(procs):
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, signal.SIGKILL)


# --------------------------------------------------------------------------- albums


def _photo_pngs(dest: Path, demo_images: dict[str, Image.Image], side: tuple[int, int]) -> list[Path]:
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for name, img in sorted(demo_images.items()):
        path = dest / f"{name}.png"
        img.convert("RGB").resize(side).save(path, compress_level=1)
        out.append(path)
    return out


@pytest.fixture(scope="module")
def busy_album(tmp_path_factory: pytest.TempPathFactory, demo_images) -> Path:
    """An indexed album of a few photos, then 600 more real 1500×1000 PNGs (hard links to
    the photos, so building it is instant): re-indexing it keeps the workers busy for
    many seconds."""
    root = tmp_path_factory.mktemp("busy") / "album"
    sources = _photo_pngs(root / "originals", demo_images, (1500, 1000))
    build_index(root)  # the "old index" every interrupted run must leave intact
    more = root / "more"
    more.mkdir()
    for k in range(600):
        os.link(sources[k % len(sources)], more / f"img{k:04d}.png")
    return root


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _start_index(album: Path) -> subprocess.Popen:
    # A session of its own, so a signal can go to the whole process group, as the
    # terminal's Ctrl-C does (workers included). Four workers as in the report, whatever
    # this machine's core count.
    return subprocess.Popen(
        [sys.executable, "-m", "picksel", "index", str(album)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        env={**os.environ, "PICKSEL_WORKERS": "4"},
    )


def _wait_for_workers(proc: subprocess.Popen) -> dict[int, int]:
    """Wait until encoding runs in worker processes (grandchildren: the forkserver's
    children); returns every descendant seen."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        table = _proc_table()
        procs = _descendants(proc.pid)
        workers = [p for p in procs if p in table and table[p][0] != proc.pid]
        if workers:
            time.sleep(0.5)  # let them get well into their first tasks
            assert proc.poll() is None, "the index finished before the signal: album too small"
            return _descendants(proc.pid)
        time.sleep(0.05)
    pytest.fail("no worker process started")


def _finish(proc: subprocess.Popen, sig: int, *, group: bool) -> tuple[float, str, str, dict[int, int]]:
    """Send ``sig``; (seconds until picksel exited, stdout, stderr, survivors)."""
    procs = _wait_for_workers(proc)
    sent = time.monotonic()
    if group:
        os.killpg(proc.pid, sig)
    else:
        proc.send_signal(sig)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        _kill_all(procs)
        proc.communicate()
        pytest.fail(f"picksel index hung after signal {sig}")
    elapsed = time.monotonic() - sent
    left = _wait_gone(procs, REAP_BUDGET)
    _kill_all(left)  # never leave them behind, even when the test fails
    # Only read the pipes now: a surviving worker would hold them open forever.
    out = proc.stdout.read().decode() if proc.stdout else ""
    err = proc.stderr.read().decode() if proc.stderr else ""
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()
    return elapsed, out, err, left


def _temps(album: Path) -> list[str]:
    return sorted(p.name for p in (album / ".picksel").iterdir() if p.name.endswith(".tmp"))


# --------------------------------------------------------------------------- signals


@pytest.mark.parametrize("run", range(5))
def test_ctrl_c_exits_promptly_and_leaves_no_worker(busy_album: Path, run: int):
    # Point 12: Ctrl-C used to hang in about half the runs, so it is tried several times.
    before = _digest(index_path(busy_album))
    elapsed, out, err, left = _finish(_start_index(busy_album), signal.SIGINT, group=True)
    assert not left, f"worker processes outlived picksel: {sorted(left)}"
    assert err == "picksel: interrupted\n" and out == ""
    assert elapsed < EXIT_BUDGET, f"took {elapsed:.2f} s to exit after Ctrl-C"
    assert _digest(index_path(busy_album)) == before
    assert _temps(busy_album) == []


def test_sigint_to_picksel_alone_also_exits(busy_album: Path):
    # `kill -INT PID` reaches picksel but not its workers: they must still go.
    proc = _start_index(busy_album)
    elapsed, out, err, left = _finish(proc, signal.SIGINT, group=False)
    assert proc.returncode == 130 and not left
    assert err == "picksel: interrupted\n"
    assert elapsed < EXIT_BUDGET


def test_sigterm_is_a_clean_exit(busy_album: Path):
    before = _digest(index_path(busy_album))
    proc = _start_index(busy_album)
    elapsed, out, err, left = _finish(proc, signal.SIGTERM, group=False)
    assert proc.returncode == 143
    assert err == "picksel: terminated\n" and out == ""
    assert not left, f"worker processes outlived picksel: {sorted(left)}"
    assert elapsed < EXIT_BUDGET
    assert _digest(index_path(busy_album)) == before
    assert _temps(busy_album) == []


def test_workers_die_with_a_killed_parent(busy_album: Path):
    # SIGKILL cannot be handled: the workers must notice on their own.
    proc = _start_index(busy_album)
    _, _, _, left = _finish(proc, signal.SIGKILL, group=False)
    assert proc.returncode == -signal.SIGKILL
    assert not left, f"worker processes outlived a killed picksel: {sorted(left)}"
