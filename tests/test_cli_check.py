"""``picksel check`` and ``picksel exclude --flagged / --duplicates`` end to end, on a small
album the tests make from real sample photos (plus garbage and copies)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import picksel
from quality_helpers import write_quality_album

from picksel.state import load_state


@pytest.fixture(scope="module")
def made_album(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = write_quality_album(tmp_path_factory.mktemp("check") / "album")
    from picksel.index import build_index

    build_index(root)
    return root


@pytest.fixture
def album(made_album: Path, tmp_path: Path) -> Path:
    import shutil

    dest = tmp_path / "album"
    shutil.copytree(made_album, dest)
    return dest


def test_check_json_is_one_object_with_flags_groups_and_thresholds(
    album: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = picksel(capsys, "check", album, "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["images"] == 11
    assert {"dark", "blank"} <= set(doc["flags"]["bad/black.png"])
    assert "noisy" in doc["flags"]["bad/noise.png"]
    assert "small" in doc["flags"]["bad/tiny.png"]
    assert all(flags for flags in doc["flags"].values())  # only flagged images are listed
    groups = {(g["keep"], tuple(g["copies"]), g["kind"]) for g in doc["duplicates"]}
    assert ("photos/coffee.jpg", ("photos/coffee_resaved.png",), "exact") in groups or (
        "photos/coffee_resaved.png", ("photos/coffee.jpg",), "exact") in groups
    chelsea = [g for g in doc["duplicates"] if "photos/chelsea.jpg" in [g["keep"], *g["copies"]]]
    assert len(chelsea) == 1 and chelsea[0]["kind"] == "near"
    assert set([chelsea[0]["keep"], *chelsea[0]["copies"]]) == {"photos/chelsea.jpg", "photos/chelsea_mirror.jpg"}
    assert doc["thresholds"]["min_side"] == 256
    assert (album / ".picksel" / "quality.npz").is_file()


def test_check_table_counts_then_lists_and_reuses_the_cache(
    album: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = picksel(capsys, "check", album)
    assert code == 0 and "0 measured now, 11 from the cache" in out  # indexing measured them
    assert "duplicates       3 group(s), 3 copies" in out  # tiny.png is a squashed astronaut
    assert "bad/noise.png" in out and "[exact]" in out and "[near]" in out
    (album / ".picksel" / "quality.npz").unlink()  # as after a PhotoMapAI import
    code, again, _ = picksel(capsys, "check", album)
    assert code == 0 and "11 measured now" in again
    assert again.splitlines()[1:] == out.splitlines()[1:]
    code, out, _ = picksel(capsys, "check", album)
    assert code == 0 and "0 measured now, 11 from the cache" in out


def test_min_side_and_set_are_kept_in_state_and_reset(album: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = picksel(capsys, "check", album, "--json", "--min-side", "1000", "--set", "noise=0.5")
    doc = json.loads(out)
    assert code == 0 and doc["thresholds"]["min_side"] == 1000 and doc["thresholds"]["noise"] == 0.5
    assert "small" in doc["flags"]["photos/chelsea.jpg"]
    assert "noisy" not in doc["flags"].get("bad/noise.png", [])
    assert load_state(album / ".picksel")[0].quality == {"min_side": 1000, "noise": 0.5}
    doc = json.loads(picksel(capsys, "check", album, "--json")[1])
    assert doc["thresholds"]["min_side"] == 1000  # remembered
    picksel(capsys, "check", album, "--reset-thresholds", "--list-thresholds")
    assert load_state(album / ".picksel")[0].quality == {}


@pytest.mark.parametrize("argv", [["--set", "noise"], ["--set", "bogus=1"], ["--set", "noise=-1"],
                                  ["--set", "min_side=2.5"], ["--min-side", "0"], ["--min-side", "x"]])
def test_bad_threshold_is_one_line_and_exit_2(album: Path, capsys: pytest.CaptureFixture[str], argv) -> None:
    code, out, err = picksel(capsys, "check", album, *argv)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err and out == ""


def test_exclude_flagged_and_duplicates_then_undo(album: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sdir = album / ".picksel"
    code, out, err = picksel(capsys, "exclude", album, "--flagged", "noisy", "dark")
    assert code == 0, err
    assert "excluded 2 new image(s) of 2 images flagged noisy/dark" in out
    assert load_state(sdir)[0].excluded == {"bad/noise.png", "bad/black.png"}
    code, out, _ = picksel(capsys, "exclude", album, "--duplicates")
    assert code == 0 and "excluded 3 new image(s) of 3 duplicate copies" in out
    excluded = load_state(sdir)[0].excluded
    assert len(excluded) == 5 and "bad/tiny.png" in excluded and ("photos/chelsea.jpg" in excluded) != ("photos/chelsea_mirror.jpg" in excluded)
    assert picksel(capsys, "undo", album)[0] == 0
    assert load_state(sdir)[0].excluded == {"bad/noise.png", "bad/black.png"}
    assert picksel(capsys, "undo", album)[0] == 0
    assert load_state(sdir)[0].excluded == set()


def test_exclude_flagged_without_flags_takes_the_defects_and_leaves_pins(
    album: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert picksel(capsys, "pin", album, "bad/tiny.png")[0] == 0
    code, out, _ = picksel(capsys, "exclude", album, "--flagged")
    state = load_state(album / ".picksel")[0]
    assert code == 0 and "1 pinned left alone" in out
    assert {"bad/noise.png", "bad/black.png"} <= state.excluded and "bad/tiny.png" in state.pins
    assert "bad/tiny.png" not in state.excluded


def test_exclude_flagged_with_paths_or_unknown_flag_is_a_usage_error(
    album: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert picksel(capsys, "exclude", album, "--flagged", "fuzzy")[0] == 2
    assert picksel(capsys, "exclude", album, "photos/chelsea.jpg", "--duplicates")[0] == 2


def test_hostile_cache_is_never_unpickled_and_is_rebuilt(album: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A quality.npz holding a pickled object array (someone else's file) is refused and
    recomputed: the check still answers, nothing is executed."""
    marker = album / "pwned"
    evil = np.array([_Boom(str(marker))], dtype=object)
    sdir = album / ".picksel"
    with open(sdir / "quality.npz", "wb") as fh:
        np.savez(fh, version=np.array(2), paths=evil)
    code, out, err = picksel(capsys, "check", album)
    assert code == 0, err
    assert "11 measured now" in out and not marker.exists()


class _Boom:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


def test_check_runs_as_a_real_process(album: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "picksel", "check", str(album), "--json"],
                       capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["images"] == 11
