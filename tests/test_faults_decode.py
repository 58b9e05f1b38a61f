"""Fault injection for indexing: signals to a running ``picksel index``, unreadable
folders, images too large to decode. Real processes, real files; future changes must
keep passing these.

Process trees are read from /proc (no psutil): a worker is any descendant of the
picksel process, identified by pid *and* start time so a recycled pid is not mistaken
for a survivor; zombies count as gone (they hold no memory).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import os
import re
import signal
import struct
import subprocess
import sys
import time
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from picksel.index import build_index, index_path, load_index

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


def _as_from_a_shell() -> None:
    """preexec_fn: Ctrl-C as an interactive shell leaves it (default action). A child
    inherits an ignored SIGINT, and Python then keeps ignoring it: in a full xdist run
    something left the test worker with SIGINT ignored, and picksel never saw Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start_picksel(command: str, album: Path) -> subprocess.Popen:
    # A session of its own, so a signal can go to the whole process group, as the
    # terminal's Ctrl-C does (workers included). Four workers as in the report, whatever
    # this machine's core count.
    return subprocess.Popen(
        [sys.executable, "-m", "picksel", command, str(album)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        preexec_fn=_as_from_a_shell,
        env={**os.environ, "PICKSEL_WORKERS": "4"},
    )


def _start_index(album: Path) -> subprocess.Popen:
    return _start_picksel("index", album)


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


# --------------------------------------------------------------------------- huge images


def _blank_png(dest: Path, width: int, height: int, *, depth: int = 16, color: int = 0) -> Path:
    """A real, valid PNG of zeros (``color`` 0 grey, 6 RGBA), written row by row: a
    13370×13370 16-bit one is 347 KB on disk and 357 MB decoded, and building it here
    never holds more than one row."""
    channels = {0: 1, 2: 3, 6: 4}[color]
    row = bytes(1 + width * channels * depth // 8)  # filter byte 0 + the row
    comp = zlib.compressobj(9)
    data = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, depth, color, 0, 0, 0)
    dest.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b""))
    return dest


@pytest.fixture(scope="module")
def huge_pngs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("huge")
    out = {
        # The report's file: 179 Mpx, over the budget: refused from its header.
        "huge": _blank_png(folder / "huge16.png", 13370, 13370),
        # 95 Mpx: under our budget but over Pillow's warning threshold (89 Mpx).
        "large": _blank_png(folder / "large16.png", 9800, 9700),
        # The most bytes per pixel Pillow holds, just under the budget.
        "rgba": _blank_png(folder / "rgba16.png", 10000, 9990, color=6),
    }
    with warnings.catch_warnings():  # Pillow warns about its size: expected here
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with Image.open(out["huge"]) as im:
            assert (im.mode, im.size) == ("I;16", (13370, 13370))
    assert out["huge"].stat().st_size < 1_000_000
    return out


_MEASURE = """\
import resource, subprocess, sys
r = subprocess.run(sys.argv[1:], capture_output=True)
sys.stdout.buffer.write(r.stdout)
sys.stderr.buffer.write(r.stderr)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)
sys.exit(r.returncode)
"""


def _measured(args: list[str], **env: str) -> tuple[int, str, str, int]:
    """Run ``args`` in a fresh wrapper process; (exit code, stdout without the last
    line, stderr, peak RSS in MB of the process tree it waited for)."""
    r = subprocess.run(
        [sys.executable, "-c", _MEASURE, *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **env},
    )
    *out, peak = r.stdout.splitlines()
    return r.returncode, "\n".join(out), r.stderr, int(peak)


def _index_cmd(album: Path) -> list[str]:
    return [sys.executable, "-m", "picksel", "index", str(album)]


HUGE_REASON = "too large to decode safely: 13370×13370 (179 Mpx) > 100 Mpx"


def test_huge_16bit_png_is_refused_with_bounded_memory(tmp_path: Path, huge_pngs, demo_images):
    # Point 15: a 347 KB file used 3 GB and printed Pillow's DecompressionBombWarning.
    album = tmp_path / "album"
    album.mkdir()
    demo_images["china"].save(album / "photo.jpg")
    _, _, _, baseline = _measured(_index_cmd(album))  # the same command on a normal album
    for name in ("huge", "large"):
        os.link(huge_pngs[name], album / huge_pngs[name].name)
    code, out, err, peak = _measured(_index_cmd(album))
    assert code == 0, err
    assert out.startswith("2 images indexed") and "1 could not be read" in out
    # One line, ours; no Pillow warning text.
    assert err == f"1 file could not be read: huge16.png ({HUGE_REASON})\n"
    # The 95-Mpx 16-bit image is decoded (2 bytes a pixel), the 179-Mpx one never is.
    assert peak - baseline < 2 * 95 * 1.3, f"peak {peak} MB, baseline {baseline} MB"


def test_worker_processes_obey_the_budget_silently(tmp_path: Path, huge_pngs, demo_images):
    # Over PARALLEL_MIN files, so decoding happens in worker processes, whose stderr is
    # the terminal's: nothing of Pillow's may appear there either.
    album = tmp_path / "album"
    album.mkdir()
    photo = demo_images["china"].resize((160, 120))
    for k in range(40):
        photo.rotate(k * 9).save(album / f"p{k:02d}.jpg")
    for name in ("huge", "large"):
        os.link(huge_pngs[name], album / huge_pngs[name].name)
    r = subprocess.run(
        _index_cmd(album), capture_output=True, text=True, timeout=600,
        env={**os.environ, "PICKSEL_WORKERS": "2"},
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("41 images indexed")
    assert r.stderr == f"1 file could not be read: huge16.png ({HUGE_REASON})\n"


_THUMBS = """\
import sys
from pathlib import Path
from picksel.thumbs import is_placeholder, load_thumbnail
img = load_thumbnail(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), 64)
print(img.info.get("picksel_placeholder", "") if is_placeholder(img) else f"{img.size[0]}x{img.size[1]}")
"""


@pytest.mark.parametrize(
    ("name", "shown", "per_pixel"),
    [
        ("huge", f"{HUGE_REASON}", 0.0),  # refused from the header: nothing decoded
        ("large", "64x63", 2.0),  # 16-bit grey: 2 bytes a pixel, no full-size copy
        ("rgba", "64x64", 4.0),  # 16-bit RGBA: Pillow's 4 bytes a pixel, no second copy
    ],
)
def test_tui_thumbnails_obey_the_budget(tmp_path: Path, huge_pngs, name: str, shown: str, per_pixel: float):
    # The TUI's list and preview decode through load_thumbnail/open_image in-process.
    src = huge_pngs[name]
    album = tmp_path / "album"
    album.mkdir()
    os.link(src, album / src.name)
    small = album / "small.png"
    Image.new("L", (300, 200), 9).save(small)
    script = [sys.executable, "-c", _THUMBS, str(album)]
    _, _, _, baseline = _measured([*script, "small.png", str(tmp_path / "state")])
    code, out, err, peak = _measured([*script, src.name, str(tmp_path / "state")])
    assert code == 0 and err == "", err
    assert out == shown
    mpx = {"huge": 13370 * 13370, "large": 9800 * 9700, "rgba": 10000 * 9990}[name] / 1e6
    assert peak - baseline < per_pixel * mpx * 1.15 + 40, f"peak {peak} MB, baseline {baseline} MB"


# --------------------------------------------------------------------------- unreadable folders

_PR_CAPBSET_DROP = 24
_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH = 1, 2


def _drop_root_file_powers() -> None:
    """preexec_fn: drop the two capabilities that let root read any folder, so mode 000
    stops root as it stops everyone else (the exec'd picksel keeps uid 0)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH):
        if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def _run_denied(args: list[str], locked: Path) -> subprocess.CompletedProcess:
    """Run ``args`` so that ``locked`` (mode 000 or similar) really cannot be read,
    also when the tests run as root; skip when this machine cannot arrange that."""
    preexec = _drop_root_file_powers if os.geteuid() == 0 else None
    probe = subprocess.run(
        [sys.executable, "-c", "import os, sys; os.listdir(sys.argv[1])", str(locked)],
        preexec_fn=preexec, capture_output=True, text=True,
    )
    if probe.returncode == 0:
        pytest.skip("cannot make a folder unreadable here (root without CAP_SETPCAP?)")
    return subprocess.run(args, preexec_fn=preexec, capture_output=True, text=True, timeout=300)


@pytest.fixture
def indexed_album(tmp_path: Path, demo_images) -> Path:
    album = tmp_path / "album"
    _photo_pngs(album / "photos", demo_images, (160, 120))
    build_index(album)
    return album


def test_unreadable_lost_found_is_skipped_with_a_note(indexed_album: Path):
    # Point 14: `lost+found` (mode 000 at a mount root) made every plain re-index fail.
    locked = indexed_album / "lost+found"
    locked.mkdir()
    locked.chmod(0)
    try:
        r = _run_denied(_index_cmd(indexed_album), locked)
    finally:
        locked.chmod(0o700)
    assert r.returncode == 0, r.stderr
    assert r.stderr == "1 folder could not be read and was skipped: lost+found (permission denied)\n"
    n = len(list((indexed_album / "photos").iterdir()))
    assert r.stdout.startswith(f"{n} images indexed") and f"{n} unchanged" in r.stdout


def test_unreadable_album_folder_fails_and_keeps_the_index(indexed_album: Path):
    # Listing nothing must not read as "every image was deleted".
    before = _digest(index_path(indexed_album))
    indexed_album.chmod(0o300)  # can enter (the index is readable), cannot list
    try:
        r = _run_denied(_index_cmd(indexed_album), indexed_album)
    finally:
        indexed_album.chmod(0o755)
    assert r.returncode == 1
    assert r.stderr == f"picksel: cannot read album folder {indexed_album}: permission denied\n"
    assert _digest(index_path(indexed_album)) == before


def _deep_tree(top: Path, min_bytes: int) -> int:
    """Nest 200-byte folder names below ``top`` until the path is longer than
    ``min_bytes``, with an image at the bottom; built through directory handles, as no
    path call can reach that deep. Returns the depth."""
    top.mkdir()
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    depth, length = 0, len(os.fsencode(top))
    try:
        while length <= min_bytes:
            os.mkdir("d" * 200, dir_fd=fd)
            nxt = os.open("d" * 200, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd, depth, length = nxt, depth + 1, length + 201
        buf = io.BytesIO()
        Image.new("RGB", (16, 16), (9, 99, 199)).save(buf, "PNG")
        out = os.open("lost.png", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(out, buf.getvalue())
        os.close(out)
    finally:
        os.close(fd)
    return depth


def test_folder_too_deep_to_name_is_skipped_with_a_note(indexed_album: Path):
    # A condition root cannot read either: a folder whose path exceeds PATH_MAX.
    path_max = os.pathconf(indexed_album, "PC_PATH_MAX")
    _deep_tree(indexed_album / "deep", path_max)
    r = subprocess.run(_index_cmd(indexed_album), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and len(lines[0]) < 200, r.stderr
    assert re.fullmatch(
        r"1 folder could not be read and was skipped: deep/d+…[d/]+d \(file name too long\)", lines[0]
    ), lines[0]
    assert "unchanged" in r.stdout


def test_listing_error_midway_keeps_what_was_listed(tmp_path: Path, monkeypatch):
    # A disk error while reading a folder (not while opening it): in-process, since a
    # failing disk cannot be made on demand.
    album = tmp_path / "album"
    for name in ("a.png", "b.png", "c.png"):
        (album / "bad").mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8), (1, 2, 3)).save(album / "bad" / name)
    Image.new("RGB", (8, 8), (200, 2, 3)).save(album / "ok.png")
    real_scandir = os.scandir

    class Failing:
        def __init__(self, path: str) -> None:
            self.it = real_scandir(path)
            self.first = sorted(self.it, key=lambda e: e.name)[:1]

        def __enter__(self) -> Failing:
            return self

        def __exit__(self, *exc: object) -> None:
            self.it.close()

        def __iter__(self):
            yield from self.first
            raise OSError(errno.EIO, "Input/output error")

    def scandir(path):
        return Failing(path) if os.path.basename(path) == "bad" else real_scandir(path)

    monkeypatch.setattr("picksel.scan.os.scandir", scandir)
    idx, rep = build_index(album)
    assert idx.paths == ["bad/a.png", "ok.png"]
    assert rep.messages == ["1 folder could not be read and was skipped: bad (input/output error)"]


# --------------------------------------------------------------------------- the TUI


class _Tui:
    """``picksel tui`` on a real pseudo-terminal, its output drained by a thread."""

    def __init__(self, album: Path, state_dir: Path) -> None:
        import fcntl
        import pty
        import termios
        import threading

        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 110, 0, 0))
        env = {**os.environ, "TERM": "xterm-256color", "PICKSEL_WORKERS": "4"}
        env.pop("NO_COLOR", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "picksel", "tui", str(album), "--state-dir", str(state_dir),
             "--graphics", "text"],
            stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True,
        )
        os.close(slave)
        self.output = bytearray()
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            if not data:
                return
            self.output += data

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)


@pytest.mark.parametrize(("how", "code"), [("ctrl+q", 0), ("SIGTERM", 143), ("SIGKILL", -9)])
def test_tui_quit_during_indexing_leaves_no_worker(busy_album: Path, tmp_path: Path, how: str, code: int):
    # The TUI indexes an album without an index in a thread, with a cancel callback;
    # before, its pool never even started (Textual's stderr has no descriptor), and
    # quitting waited for the current batch of 128 images to finish.
    tui = _Tui(busy_album, tmp_path / "state")
    try:
        procs = _wait_for_workers(tui.proc)
        sent = time.monotonic()
        if how == "ctrl+q":
            os.write(tui.master, b"\x11")
        else:
            tui.proc.send_signal(getattr(signal, how))
        try:
            tui.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            _kill_all(procs)
            pytest.fail(f"the TUI did not quit on {how}")
        elapsed = time.monotonic() - sent
        left = _wait_gone(procs, REAP_BUDGET)
        _kill_all(left)
        assert not left, f"worker processes outlived the TUI: {sorted(left)}"
        assert tui.proc.returncode == code, bytes(tui.output[-3000:]).decode(errors="replace")
        if how != "SIGKILL":
            assert elapsed < EXIT_BUDGET, f"took {elapsed:.2f} s to quit"
            assert b"Traceback" not in tui.output
        assert not (tmp_path / "state" / "index.npz").exists()
    finally:
        tui.close()


def test_cancel_stops_the_workers_mid_batch(busy_album: Path):
    # What the TUI's quit relies on: a cancel seen while the workers run kills them
    # instead of waiting for the batch.
    from picksel.encoders.builtin import BuiltinEncoder
    from picksel.errors import Cancelled

    paths = sorted((busy_album / "more").iterdir())[:128]
    enc = BuiltinEncoder(workers=2)
    asked: list[float] = []

    def cancel() -> bool:
        asked.append(time.monotonic())
        return len(asked) > 3  # a few polls in: the workers are busy by then

    try:
        with pytest.raises(Cancelled):
            enc.encode_paths(paths, cancel=cancel)
        stopped = time.monotonic()
        assert enc._pool is None  # terminated, not left for close() to wait on
        assert stopped - asked[-1] < EXIT_BUDGET
    finally:
        enc.close()


def test_a_temporarily_unreadable_folder_keeps_its_images_vectors(indexed_album: Path):
    # A folder that cannot be listed for a moment (permissions being fixed, a network
    # share hiccup) must not cost its images' vectors: the next re-index would have to
    # encode them all again (hours with CLIP on a large album).
    photos = indexed_album / "photos"
    n = len(list(photos.iterdir()))
    before = load_index(indexed_album)
    photos.chmod(0)
    try:
        r = _run_denied(_index_cmd(indexed_album), photos)
    finally:
        photos.chmod(0o755)
    assert r.returncode == 0, r.stderr
    assert "photos (permission denied)" in r.stderr
    assert f"kept the vectors of {n} images in folders that could not be read" in r.stderr
    after = load_index(indexed_album)
    assert after.paths == before.paths
    assert np.array_equal(after.embeddings, before.embeddings)
    again = subprocess.run(_index_cmd(indexed_album), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and f"{n} unchanged" in again.stdout, again.stdout + again.stderr


# --------------------------------------------------------------------------- check


@pytest.fixture(scope="module")
def unmeasured_album(tmp_path_factory: pytest.TempPathFactory, demo_images) -> Path:
    """An album whose index lists 600 real 1500×1000 PNGs (hard links to a few photos)
    that nothing has measured yet (as after a PhotoMapAI import): ``picksel check`` must
    decode them all, which keeps its workers busy for many seconds."""
    from picksel.index import AlbumIndex, load_index, save_index

    root = tmp_path_factory.mktemp("unmeasured") / "album"
    sources = _photo_pngs(root / "originals", demo_images, (1500, 1000))
    first, _ = build_index(root)
    (root / "more").mkdir()
    rels = []
    for k in range(600):
        os.link(sources[k % len(sources)], root / "more" / f"img{k:04d}.png")
        rels.append(f"more/img{k:04d}.png")
    row = first.row_of()
    src = [row[f"originals/{sources[k % len(sources)].name}"] for k in range(600)]
    stats = [os.stat(root / r) for r in rels]
    paths = first.paths + rels
    order = sorted(range(len(paths)), key=paths.__getitem__)
    save_index(AlbumIndex(
        root=root, paths=[paths[i] for i in order],
        embeddings=np.concatenate([first.embeddings, first.embeddings[src]])[order],
        mtimes=np.concatenate([first.mtimes, [s.st_mtime for s in stats]])[order],
        sizes=np.concatenate([first.sizes, np.array([s.st_size for s in stats], np.int64)])[order],
        encoder=first.encoder,
    ))
    assert len(load_index(root)) == len(first) + 600
    return root


def _start_check(album: Path) -> subprocess.Popen:
    with contextlib.suppress(FileNotFoundError):
        (album / ".picksel" / "quality.npz").unlink()
    return _start_picksel("check", album)


@pytest.mark.parametrize(("sig", "group", "code", "said"), [
    (signal.SIGINT, True, 130, "picksel: interrupted\n"),  # Ctrl-C: the whole process group
    (signal.SIGINT, True, 130, "picksel: interrupted\n"),
    (signal.SIGTERM, False, 143, "picksel: terminated\n"),
])
def test_check_interrupted_exits_promptly_and_leaves_no_worker(
    unmeasured_album: Path, sig: int, group: bool, code: int, said: str
):
    # `picksel check` measured in a plain ProcessPoolExecutor: Ctrl-C reached its workers
    # (tracebacks, a hang while they held the queue's lock) and SIGTERM left them behind.
    proc = _start_check(unmeasured_album)
    elapsed, out, err, left = _finish(proc, sig, group=group)
    assert not left, f"worker processes outlived picksel check: {sorted(left)}"
    assert proc.returncode == code, err
    assert err == said and out == ""
    assert elapsed < EXIT_BUDGET
    assert not (unmeasured_album / ".picksel" / "quality.npz").exists()
    assert _temps(unmeasured_album) == []


def test_check_workers_die_with_a_killed_parent(unmeasured_album: Path):
    proc = _start_check(unmeasured_album)
    _, _, _, left = _finish(proc, signal.SIGKILL, group=False)
    assert not left, f"worker processes outlived a killed picksel check: {sorted(left)}"
