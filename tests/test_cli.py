"""The headless CLI end to end: index → select → exclude → export → inventory → favorites.

Runs ``picksel.cli.run`` in-process (same code path as the console script) on real
images; one test goes through a real subprocess to prove the entry points work.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import picksel

from picksel.cli import run
from picksel.scan import IMAGE_EXTENSIONS


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture(scope="module")
def demo_album(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real demo album, built and indexed once for this module."""
    from picksel.demo import build_demo_album
    from picksel.index import build_index

    root = tmp_path_factory.mktemp("demo") / "demo-album"
    build_demo_album(root)
    build_index(root)
    return root


@pytest.fixture
def album(demo_album: Path, tmp_path: Path) -> Path:
    """A private copy of the indexed demo album so tests do not share state.json."""
    dest = tmp_path / "album"
    shutil.copytree(demo_album, dest, symlinks=True)
    return dest


def test_help_explains_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        run(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for command in ("index", "select", "export", "inventory", "exclude", "favorites", "demo"):
        assert command in out


def test_entry_points_run_as_subprocess(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "picksel", "select", str(tmp_path / "nope"), "--count", "0"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert one_line(proc.stderr) == (
        "picksel select: argument --count: count must be at least 1, not 0 "
        "(see `picksel select --help`)"
    )
    exe = Path(sys.executable).with_name("picksel")
    proc = subprocess.run([str(exe), "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.startswith("picksel ")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--count", "0"], "count must be at least 1"),
        (["--count", "2.5"], "count must be a whole number"),
        (["--count", "abc"], "count must be a whole number"),
        (["--iterations", "0"], "iterations must be 1 to 100"),
        (["--iterations", "101"], "iterations must be 1 to 100"),
        (["--method", "random"], "invalid choice"),
        (["--exclude-threshold", "0"], "exclude threshold must be 1 to 100"),
    ],
)
def test_bad_numbers_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str], expected: str
) -> None:
    code, out, err = picksel(capsys, "select", tmp_path, *args)
    assert code == 2
    assert expected in one_line(err)
    assert out == ""


def test_missing_album_and_missing_selection_fail_cleanly(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, album: Path
) -> None:
    code, _, err = picksel(capsys, "select", tmp_path / "missing")
    assert code == 1 and "album folder not found" in one_line(err)
    code, _, err = picksel(capsys, "export", album, tmp_path / "out")
    assert code == 1 and "no selection yet" in one_line(err)
    assert not (tmp_path / "out").exists()
    code, _, err = picksel(capsys, "exclude", album, "no/such/image.png")
    assert code == 2 and "not an indexed image" in one_line(err)


def test_corrupt_index_is_reported_not_a_traceback(capsys: pytest.CaptureFixture[str], album: Path) -> None:
    (album / ".picksel" / "index.npz").write_bytes(b"PK\x03\x04 this is not a zip")
    code, _, err = picksel(capsys, "select", album, "--count", "5")
    assert code == 1
    assert "index" in one_line(err)


def test_empty_album_is_a_failure_not_a_usage_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    code, out, err = picksel(capsys, "select", tmp_path / "empty")
    assert code == 1 and out == ""
    assert "no images that could be indexed" in err.splitlines()[-1]


def test_a_closed_pipe_ends_quietly(demo_album: Path, tmp_path: Path) -> None:
    album = tmp_path / "album"
    shutil.copytree(demo_album, album)
    proc = subprocess.run(
        f"'{sys.executable}' -m picksel select '{album}' --count 1800 --iterations 1 --seed 1 | head -1",
        shell=True, capture_output=True, text=True,
    )
    assert proc.stdout.count("\n") == 1
    assert "Broken pipe" not in proc.stderr and "Traceback" not in proc.stderr


def test_select_indexes_an_album_first(capsys: pytest.CaptureFixture[str], small_album: Path) -> None:
    code, out, err = picksel(capsys, "select", small_album, "--count", "3", "--iterations", "4", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert len(result["selected"]) == 3
    assert (small_album / ".picksel" / "index.npz").exists()
    assert "broken.jpg" in err  # the unreadable file is reported, the run goes on


def test_garbage_lands_in_the_fps_core_tier(capsys: pytest.CaptureFixture[str], album: Path) -> None:
    """Scenario A of the curator guide on the demo album: FPS, 20 images, 20 iterations."""
    code, out, err = picksel(
        capsys, "select", album, "--method", "fps", "--count", "20", "--iterations", "20",
        "--seed", "7", "--json",
    )
    assert code == 0, err
    core = {s["path"] for s in json.loads(out)["selected"] if s["tier"] == "core"}
    garbage = sorted(p.relative_to(album).as_posix() for p in (album / "garbage").iterdir() if p.suffix == ".png")
    black = [g for g in garbage if "black" in g]
    noise = [g for g in garbage if "noise" in g]
    assert black and noise
    assert set(black + noise) <= core


def test_headless_session_end_to_end(capsys: pytest.CaptureFixture[str], album: Path, tmp_path: Path) -> None:
    # Scenario A: find the outliers and exclude the core tier.
    code, out, err = picksel(capsys, "select", album, "--count", "20", "--iterations", "10", "--seed", "1",
                             "--exclude-threshold", "90", "--json")
    assert code == 0, err
    first = json.loads(out)
    assert first["seed"] == 1 and first["iterations"] == 10
    newly = first["newly_excluded"]
    core = [s["path"] for s in first["selected"] if s["frequency"] >= 90]
    assert newly == len(core) > 0
    code, out, _ = picksel(capsys, "exclude", album, "--list")
    assert sorted(out.split()) == sorted(core)

    # Scenario B: the training set never contains an excluded image; the seed reproduces it.
    code, out, err = picksel(capsys, "select", album, "--count", "40", "--iterations", "5", "--seed", "3", "--json")
    assert code == 0, err
    second = json.loads(out)
    chosen = [s["path"] for s in second["selected"]]
    assert len(chosen) == 40 and not set(chosen) & set(core)
    assert sorted(second["excluded"]) == sorted(core)
    code, again, _ = picksel(capsys, "select", album, "--count", "40", "--iterations", "5", "--seed", "3", "--json")
    assert json.loads(again)["selected"] == second["selected"]

    # Drop one by hand; it leaves the export.
    dropped = chosen[0]
    code, out, _ = picksel(capsys, "exclude", album, str(album / dropped))
    assert code == 0 and "added 1" in out

    dest = tmp_path / "lora" / "set1"
    code, out, err = picksel(capsys, "export", album, dest)
    assert code == 0, err
    images = sorted(p for p in dest.iterdir() if p.suffix in IMAGE_EXTENSIONS)
    assert len(images) == 39
    assert Path(dropped).name not in {p.name for p in images}
    # Every exported image that had a caption in the album has it beside it, same stem.
    with_caption = [c for c in chosen[1:] if (album / c).with_suffix(".txt").exists()]
    captions = [p for p in dest.iterdir() if p.suffix == ".txt"]
    assert len(captions) == len(with_caption) > 0
    before = sorted(p.name for p in dest.iterdir())

    # Exporting again adds nothing and says what was already there.
    code, out, err = picksel(capsys, "export", album, dest, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["copied"] == 0 and len(report["already_there"]) == 39
    assert sorted(p.name for p in dest.iterdir()) == before

    inv = tmp_path / "inventory.tsv"
    code, out, err = picksel(capsys, "inventory", album, inv)
    assert code == 0, err
    with inv.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh, dialect="excel-tab"))
    assert rows[0] == ["Filename", "Subfolder", "Count", "Frequency(%)", "Index", "Status",
                       "Flags", "DupGroup", "DupRole"]
    assert "unchecked" not in {r[6] for r in rows[1:]}  # indexing measured every image
    statuses = [r[5] for r in rows[1:]]
    assert statuses == sorted(statuses, key=lambda s: s != "Included")
    assert statuses.count("Included") == 39 and statuses.count("Excluded") == len(core) + 1
    code, _, err = picksel(capsys, "inventory", album, inv)
    assert code == 1 and "exists" in one_line(err)

    code, out, err = picksel(capsys, "favorites", album, "--set")
    assert code == 0 and "39" in err
    assert len(out.split()) == 39

    # An export folder that is a file: every image fails with a reason, exit 1, no traceback.
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    code, _, err = picksel(capsys, "export", album, blocker)
    assert code == 1 and "Traceback" not in err
    assert err.splitlines()[-1] == f"picksel: cannot export {blocker}: exists and is not a folder"
