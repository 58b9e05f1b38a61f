"""Fault injection for what picksel prints and writes next to the user's files.

Hostile file names (bytes that are not UTF-8, terminal escape sequences), a strict UTF-8
stdout, planted symlinks and edited demo files, and the bare ``picksel`` command line.
Every CLI test runs the real program in a subprocess (``python -m picksel``) on real
files, so what is checked is what a terminal would receive.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from picksel.textsafe import is_printable, json_text, printable

ESC = b"\x1b"
# Names as the file system holds them (bytes): one is not UTF-8 at all, two would retitle
# and clear the terminal, one sits in a folder whose name is Latin-1.
BAD_UTF8 = b"bad\xff\xfename.png"
TITLE = b"\x1b]0;pwned\x07title.png"
CLEAR = b"\x1b[2Jclear.png"
LATIN1_DIR = b"caf\xe9/x.png"
BROKEN = b"\x1b[31mbroken\xff.jpg"  # not an image: the index reports it by name
HOSTILE = (BAD_UTF8, TITLE, CLEAR, LATIN1_DIR)


def _digit(i: int) -> Image.Image:
    from sklearn.datasets import load_digits

    arr = (load_digits().images[i * 7] / 16.0 * 255).astype(np.uint8)
    return Image.fromarray(arr).resize((64, 64), Image.NEAREST).convert("RGB")


def _save(root: bytes, rel: bytes, img: Image.Image) -> None:
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as fh:
        img.save(fh, "PNG")


def picksel(*argv: object, cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run the real CLI with a strict UTF-8 stdout/stderr; bytes in, bytes out."""
    env = dict(os.environ, PYTHONIOENCODING="utf-8:strict", COLUMNS="100")
    args = [a if isinstance(a, bytes) else os.fsencode(str(a)) for a in argv]
    return subprocess.run(
        [os.fsencode(sys.executable), b"-m", b"picksel", *args],
        capture_output=True,
        env=env,
        cwd=cwd,
        timeout=120,
    )


def clean(proc: subprocess.CompletedProcess[bytes], code: int = 0) -> tuple[str, str]:
    """Assert exit ``code``, no traceback, no ESC/BEL byte and valid UTF-8 on both streams."""
    assert b"Traceback" not in proc.stderr, proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    for stream in (proc.stdout, proc.stderr):
        assert ESC not in stream and b"\x07" not in stream and b"\x9b" not in stream, stream
    return proc.stdout.decode("utf-8"), proc.stderr.decode("utf-8")


def shown(rel: bytes) -> str:
    """How a text printer must show the album-relative name ``rel``."""
    return printable(os.fsdecode(rel))


@pytest.fixture(scope="module")
def hostile_master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from picksel.index import build_index

    root = tmp_path_factory.mktemp("hostile") / "album"
    broot = os.fsencode(str(root))
    for i, name in enumerate((b"d0.png", b"d1.png", b"sub/d2.png", *HOSTILE)):
        _save(broot, name, _digit(i))
    with open(os.path.join(broot, BROKEN), "wb") as fh:
        fh.write(b"\xff\xd8\xff\xe0 not really a jpeg")
    build_index(root)
    return root


@pytest.fixture
def hostile(hostile_master: Path, tmp_path: Path) -> Path:
    """A private copy of the indexed hostile album (tests write state.json)."""
    dest = tmp_path / "album"
    shutil.copytree(hostile_master, dest, symlinks=True)
    return dest


# --------------------------------------------------------------------------- textsafe


def test_printable_escapes_controls_bytes_and_bidi_but_keeps_letters() -> None:
    name = os.fsdecode(b"a\xff\x1b]0;x\x07\x7f\xc2\x9b\xe2\x80\xae \xc3\xa9\xe6\xbc\xa2\n\t")
    assert printable(name) == "a\\xff\\x1b]0;x\\x07\\x7f\\x9b\\u202e é漢\\x0a\\x09"
    assert printable(Path("/tmp/\udcfe")) == "/tmp/\\xfe"
    assert printable("\ud800") == "\\ud800"  # a lone surrogate that is not a byte
    assert is_printable("photos/été 01.jpg") and not is_printable(name)
    printable(name).encode("utf-8", "strict")  # no surrogate is left to refuse


def test_json_text_is_utf8_ascii_safe_and_gives_the_bytes_back() -> None:
    raw = b"bad\xff\x1b[2J\xc2\x9b\xc3\xa9.png"
    text = json_text({"path": os.fsdecode(raw)})
    data = text.encode("utf-8")  # would raise on a raw surrogate
    assert ESC not in data and b"\xc2\x9b" not in data
    assert "é" in text  # readable characters stay readable
    assert os.fsencode(json.loads(text)["path"]) == raw


# --------------------------------------------------------------------------- CLI output


def test_select_text_and_json_survive_hostile_names_under_strict_utf8(hostile: Path) -> None:
    out, err = clean(picksel("select", hostile, "--count", "7", "--iterations", "3", "--seed", "1"))
    for rel in HOSTILE:
        assert shown(rel) in out.splitlines()[0:7] or any(
            line.startswith(shown(rel) + " ") for line in out.splitlines()
        ), out
    assert "7 of 7 selected" in err
    proc = picksel("select", hostile, "--json", "--seed", "1")
    clean(proc)
    payload = json.loads(proc.stdout.decode("utf-8"))  # complete, valid UTF-8 JSON
    on_disk = {os.fsencode(str(p.relative_to(hostile))) for p in hostile.rglob("*.png")}
    assert {os.fsencode(s["path"]) for s in payload["selected"]} == on_disk


def test_favorites_exclude_pin_lists_show_escaped_names(hostile: Path) -> None:
    clean(picksel("select", hostile, "--count", "7", "--seed", "2"))
    _, err = clean(picksel("favorites", hostile, "--set"))
    assert "7 images" in err
    out, _ = clean(picksel("favorites", hostile))
    assert sorted(out.splitlines()) == sorted(
        [shown(r) for r in HOSTILE] + ["d0.png", "d1.png", "sub/d2.png"]
    )
    proc = picksel("favorites", hostile, "--json")
    clean(proc)
    assert {os.fsencode(p) for p in json.loads(proc.stdout)} >= set(HOSTILE)
    for command in ("exclude", "pin"):
        # The real bytes on the command line name the real file.
        out, _ = clean(picksel(command, hostile, *HOSTILE))
        assert out.startswith(f"added {len(HOSTILE)} ")
        out, _ = clean(picksel(command, hostile, "--list"))
        assert sorted(out.splitlines()) == sorted(shown(r) for r in HOSTILE)


def test_export_text_and_json_survive_hostile_names(hostile: Path, tmp_path: Path) -> None:
    clean(picksel("select", hostile, "--count", "7", "--seed", "3"))
    out, _ = clean(picksel("export", hostile, tmp_path / "out1"))
    assert "7" in out
    proc = picksel("export", hostile, tmp_path / "out2", "--json")
    clean(proc)
    report = json.loads(proc.stdout.decode("utf-8"))
    exported = {os.fsencode(f["path"]) for f in report["files"]}
    assert set(HOSTILE) <= exported
    for rel in HOSTILE:  # the copies carry the original bytes
        assert os.path.basename(rel) in os.listdir(os.fsencode(str(tmp_path / "out2")))


def test_inventory_message_and_index_report_escape_names(hostile: Path, tmp_path: Path) -> None:
    clean(picksel("select", hostile, "--count", "3", "--seed", "4"))
    target = os.fsencode(str(tmp_path)) + b"/inv\x1b[2J\xff.tsv"
    out, _ = clean(picksel("inventory", hostile, target))
    assert printable(os.fsdecode(target)) in out
    assert os.path.exists(target)
    out, err = clean(picksel("index", hostile, "--full"))
    assert shown(BROKEN) in err  # the unreadable file is named, harmlessly


def test_error_lines_escape_names(hostile: Path, tmp_path: Path) -> None:
    missing = os.fsencode(str(tmp_path)) + b"/\x1b]0;pwned\x07\xff"
    _, err = clean(picksel("select", missing), code=1)
    assert err == f"picksel: album folder not found: {printable(os.fsdecode(missing))}\n"
    _, err = clean(picksel("select", hostile, "--count", b"\x1b[2J"), code=2)
    assert err.count("\n") == 1 and "count must be a whole number, not '\\x1b[2J'" in err


@pytest.mark.parametrize("command", ["exclude", "pin"])
def test_a_path_that_is_not_an_indexed_image_is_a_bad_argument(hostile: Path, command: str) -> None:
    """The README's own example (`exclude ALBUM photos/blurry_001.jpg` on an album without
    that file) is a bad argument: exit 2, one line, and nothing changes, not even the
    good PATHs given with it."""
    state = hostile / ".picksel" / "state.json"
    before = state.read_bytes() if state.exists() else None
    _, err = clean(picksel(command, hostile, "photos/blurry_001.jpg"), code=2)
    assert err == "picksel: not an indexed image of this album: photos/blurry_001.jpg\n"
    _, err = clean(picksel(command, hostile, "d0.png", b"no\x1b[2Jsuch\xff.png", "x.jpg"), code=2)
    assert err == (
        "picksel: not an indexed image of this album: no\\x1b[2Jsuch\\xff.png (and 1 more)\n"
    )
    outside = hostile.parent / "outside.png"
    shutil.copy(hostile / "d0.png", outside)
    _, err = clean(picksel(command, hostile, outside), code=2)
    assert err == f"picksel: not an indexed image of this album: {outside}\n"
    assert (state.read_bytes() if state.exists() else None) == before
    # A real image by album path or by any path to it still works, and a stale entry
    # (its file since deleted) can still be removed.
    out, _ = clean(picksel(command, hostile, "d0.png", hostile / "sub" / "d2.png"))
    assert out.startswith("added 2 ")
    (hostile / "d0.png").unlink()
    out, _ = clean(picksel(command, hostile, "--remove", "d0.png"))
    assert out.startswith("removed 1 ")


# --------------------------------------------------------------------------- demo rebuild


@pytest.fixture(scope="module")
def demo_master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from picksel.demo import build_demo_album
    from picksel.index import build_index

    root = tmp_path_factory.mktemp("demo") / "demo-album"
    build_demo_album(root)
    build_index(root)
    return root


def test_demo_rebuild_keeps_edits_and_never_writes_through_symlinks(
    demo_master: Path, tmp_path: Path
) -> None:
    album = tmp_path / "demo-album"
    shutil.copytree(demo_master, album, symlinks=True)
    caption = album / "digits" / "3" / "3_0003.txt"
    caption.write_text("my own caption, carefully written\n", encoding="utf-8")
    # Planted links: the old temp name, and a final name, each pointing at a foreign file.
    foreign = tmp_path / "precious.txt"
    foreign.write_bytes(b"not yours")
    planted_tmp = album / "digits" / "5" / ".5_0005.png.tmp"
    (album / "digits" / "5" / "5_0005.png").unlink()
    planted_tmp.symlink_to(foreign)
    linked_final = album / "digits" / "6" / "6_0006.png"
    linked_final.unlink()
    linked_final.symlink_to(foreign)
    # A folder swapped for a link to a foreign folder: nothing is written into it.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.rmtree(album / "garbage")
    (album / "garbage").symlink_to(elsewhere, target_is_directory=True)

    proc = picksel("demo", album, "--build-only")
    out, err = clean(proc)
    assert foreign.read_bytes() == b"not yours"
    assert caption.read_text(encoding="utf-8") == "my own caption, carefully written\n"
    assert planted_tmp.is_symlink() and linked_final.is_symlink()
    assert os.readlink(linked_final) == str(foreign)
    assert list(elsewhere.iterdir()) == []
    recreated = album / "digits" / "5" / "5_0005.png"
    assert recreated.is_file() and not recreated.is_symlink()
    assert recreated.read_bytes() == (demo_master / "digits" / "5" / "5_0005.png").read_bytes()
    assert oct(recreated.stat().st_mode & 0o777) == oct(0o666 & ~_umask())
    n_files = sum(1 for p in demo_master.rglob("*") if p.is_file() and ".picksel" not in p.parts)
    # Every demo file but the 6 garbage images (refused), the recreated one and the marker.
    assert f"; kept {n_files - 6 - 1 - 1} existing files as they are" in out.splitlines()[0]
    assert "not written: 6 file(s) under a symlinked folder, e.g. garbage/" in err
    assert not [p for p in album.rglob("*.picksel-tmp")]


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# --------------------------------------------------------------------------- bare `picksel`


def test_bare_picksel_outside_an_album_prints_usage_and_indexes_nothing(tmp_path: Path) -> None:
    """From a folder full of images that is not an album (a home folder, say), bare
    `picksel` must not index it: usage on stderr, exit 2, no .picksel created."""
    _save(os.fsencode(str(tmp_path)), b"holiday.png", _digit(1))
    for argv in ([], ["tui"], ["--graphics", "text"]):
        proc = picksel(*argv, cwd=tmp_path)
        _, err = clean(proc, code=2)
        assert "Open the curator on an album:" in err  # the usage
        assert err.splitlines()[-1] == (
            f"picksel: no album here ({tmp_path} has no .picksel folder): "
            "give the ALBUM folder, e.g. `picksel ~/photos/album`, or see `picksel --help`"
        )
        assert proc.stdout == b""
    assert sorted(os.listdir(tmp_path)) == ["holiday.png"]


def test_an_unknown_word_is_an_unknown_command_not_a_missing_album(tmp_path: Path) -> None:
    proc = picksel("nope_cmd", cwd=tmp_path)
    _, err = clean(proc, code=2)
    line = err.strip()
    assert "\n" not in line
    assert line.startswith("picksel: unknown command 'nope_cmd' (and no folder of that name); ")
    for command in ("demo", "index", "select", "export", "inventory", "exclude", "pin", "favorites"):
        assert command in line
    _, err = clean(picksel("selcet", "album", cwd=tmp_path), code=2)
    assert err.rstrip().endswith("did you mean `picksel select`?")
    _, err = clean(picksel("\x1b[2Jx", cwd=tmp_path), code=2)
    assert "unknown command '\\x1b[2Jx'" in err
    # What looks like a path is still an album that is not there.
    _, err = clean(picksel("./nope_dir", cwd=tmp_path), code=1)
    assert err == "picksel: album folder not found: nope_dir\n"
    assert os.listdir(tmp_path) == []


def test_bare_picksel_in_an_album_opens_it(
    hostile: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """In a folder with .picksel, bare `picksel` (and `picksel tui`, and `picksel NAME`
    for a folder called like nothing else) reach the TUI launcher with that album."""
    import picksel.tui.app
    from picksel.cli import run

    calls: list[tuple[Path, str]] = []

    def fake_run_app(album: Path, *, state_dir: Path | None = None, graphics: str = "auto") -> int:
        calls.append((Path(album).resolve(), graphics))
        return 0

    monkeypatch.setattr(picksel.tui.app, "run_app", fake_run_app)
    monkeypatch.chdir(hostile)
    assert run([]) == 0
    assert run(["tui", "--graphics", "text"]) == 0
    assert run(["--graphics", "halfcell"]) == 0
    monkeypatch.chdir(hostile.parent)
    assert run([hostile.name]) == 0  # a folder named like no command is an album
    assert calls == [
        (hostile.resolve(), "auto"),
        (hostile.resolve(), "text"),
        (hostile.resolve(), "halfcell"),
        (hostile.resolve(), "auto"),
    ]
    assert capsys.readouterr().err == ""


# --------------------------------------------------------------------------- the TUI


RAW = ("\x1b]0;", "\x1b[2J", "\x07", "\x9b")  # what a name must never send to the terminal


def terminal_output(app) -> str:
    """Everything the app would write to the terminal for a full redraw of the screen."""
    update = app.screen._compositor.render_update(full=True)
    return update.render_segments(app.console)


def assert_harmless(app) -> str:
    seq = terminal_output(app)
    for raw in RAW:
        assert raw not in seq, (raw, app.screen)
    assert not any(0xD800 <= ord(ch) <= 0xDFFF for ch in seq)  # encodable for the terminal
    return seq


async def test_tui_shows_hostile_names_escaped_everywhere(hostile: Path, tmp_path: Path) -> None:
    from textual import events
    from tui_app_helpers import index_album, settle

    from picksel.tui.app import PickselApp
    from picksel.tui.screens.export import ExportScreen
    from picksel.tui.screens.preview import PreviewScreen
    from picksel.tui.widgets.findbar import FindBar
    from picksel.tui.widgets.preview import ImagePreview
    from picksel.tui.widgets.thumblist import ThumbList

    index_album(hostile)
    app = PickselApp(hostile, graphics="text", seed=3, compute_umap=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        seq = assert_harmless(app)
        for rel in (TITLE, CLEAR, BAD_UTF8):  # the list rows show the escaped names
            assert shown(rel) in seq
        assert "caf\\xe9" in seq  # the Latin-1 folder, on the row's second line
        thumbs = app.query_one(ThumbList)
        # Walk the list to the title-changing name: the preview caption shows it escaped.
        target = os.fsdecode(TITLE)
        for _ in range(len(app.curator.paths)):
            if app.current_row is not None and app.curator.paths[app.current_row] == target:
                break
            await pilot.press("down")
            await settle(app, pilot)
        assert app.curator.paths[app.current_row] == target
        await pilot.pause(0.3)
        # (after the name, the quality check's flags may follow: " · small, grayscale")
        assert app.query_one("#preview", ImagePreview).caption.split(" · ")[0] == shown(TITLE)
        assert_harmless(app)
        await pilot.press("enter")  # the large preview: title and facts
        await settle(app, pilot)
        assert isinstance(app.screen, PreviewScreen)
        assert shown(TITLE) in assert_harmless(app)
        await pilot.press("escape")
        await settle(app, pilot)
        # A notification naming a file (any code path may do it) and the title.
        app.notify(f"excluded {target}", title=os.fsdecode(CLEAR))
        app.title = f"picksel — {target}"
        await pilot.pause(0.2)
        assert shown(TITLE) in assert_harmless(app)
        # The find bar: a pasted escape sequence is shown (and matched) as the list shows it.
        await pilot.press("slash")
        find = app.query_one(FindBar)
        find.post_message(events.Paste("\x1b[2J"))
        await pilot.pause(0.2)
        assert find.value == "\\x1b[2J"
        await settle(app, pilot)
        assert [app.curator.paths[int(r)] for r in thumbs._order] == [os.fsdecode(CLEAR)]
        assert_harmless(app)
        # The export dialog's folder tree lists hostile folder names (and markup-like ones).
        exports = tmp_path / "exports"
        for name in (b"\x1b]0;pwned\x07dir", b"[bold]odd", b"bytes\xff"):
            os.makedirs(os.path.join(os.fsencode(str(exports)), name))
        await app.push_screen(ExportScreen(hostile, [target], str(exports / "new")))
        await settle(app, pilot)
        for _ in range(50):  # the tree reads the folder in its own worker
            await pilot.pause(0.1)
            if "odd" in terminal_output(app):
                break
        seq = assert_harmless(app)
        assert "\\x1b]0;pwned\\x07dir" in seq and "[bold]odd" in seq and "bytes\\xff" in seq


def test_a_photomap_model_id_with_escapes_is_printed_harmlessly(tmp_path: Path) -> None:
    from index_helpers import unit_rows, write_photomap

    album = tmp_path / "album"
    files = []
    for i in range(3):
        _save(os.fsencode(str(album)), f"p{i}.png".encode(), _digit(i))
        files.append(album / f"p{i}.png")
    model = "\x1b]0;pwned\x07evil-model\x1b[2J"
    write_photomap(album, files, unit_rows(3, 8), model_id=model)
    out, err = clean(picksel("index", album))
    assert f"with {printable(model)} in " in out
    assert printable(model) in err  # "using PhotoMapAI index … (model …)"


def test_progress_messages_naming_files_are_harmless_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`picksel export` on a terminal shows each file name in its progress bar."""
    import io

    from picksel.cli.common import progress_bar

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Tty()
    monkeypatch.setattr(sys, "stderr", tty)
    monkeypatch.setenv("TERM", "xterm-256color")
    with progress_bar("Exporting") as update:
        update(1, 2, os.fsdecode(b"\x1b]0;pwned\x07[bold]x\xff.png"))
        update(1, 2, os.fsdecode(b"\x1b]0;pwned\x07[bold]x\xff.png"))
    shown_text = tty.getvalue()
    assert "Exporting" in shown_text  # the bar did draw
    assert "\x1b]0;" not in shown_text and "\x07" not in shown_text
    assert "\\x1b]0;pwned\\x07[bold]x\\xff.png" in shown_text
