"""Faults of the quality check's cache (``.picksel/quality.npz``): when it cannot be
written, the check still shows what it measured, says once why the measures are not
cached, and leaves nothing behind.

The fault is ``quality.npz`` being a directory: ``os.replace`` of the new file over it
fails for every user, root included (CI runs as root, and root ignores ``chmod``)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from quality_helpers import write_quality_album
from tui_app_helpers import index_album, make_app, settle, wait_until

TIMEOUT = 120
SIZE = (120, 40)


@pytest.fixture(scope="module")
def checked_album(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """An indexed album and what ``picksel check --json`` says of it with a healthy cache."""
    album = index_album(write_quality_album(tmp_path_factory.mktemp("fq") / "album"))
    return album, json.loads(check(album, "--json").stdout)


@pytest.fixture
def album(checked_album: tuple[Path, dict], tmp_path: Path) -> Path:
    """A copy whose quality.npz is a directory: nothing can be saved there."""
    dest = tmp_path / "album"
    shutil.copytree(checked_album[0], dest)
    cache = dest / ".picksel" / "quality.npz"
    cache.unlink()
    cache.mkdir()
    return dest


def check(album: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "picksel", "check", str(album), *args],
                          capture_output=True, text=True, timeout=TIMEOUT)


def listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize("mode", [("--json",), ()])
def test_cli_check_prints_its_result_when_the_cache_cannot_be_written(
        album: Path, checked_album: tuple[Path, dict], mode: tuple[str, ...]) -> None:
    before = listing(album / ".picksel")
    out = check(album, *mode)
    assert out.returncode == 0, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert "Traceback" not in out.stderr
    assert str(album / ".picksel" / "quality.npz") in lines[0]
    assert "Is a directory" in lines[0]  # the OS's reason
    assert "measure again" in lines[0]
    expected = checked_album[1]
    if mode:
        assert json.loads(out.stdout) == expected
    else:
        assert f"{expected['images']} images checked" in out.stdout
        for rel in expected["flags"]:
            assert rel in out.stdout
        for g in expected["duplicates"]:
            assert f"{g['keep']} ← {', '.join(g['copies'])}" in out.stdout
    # no temp file left behind, nothing else touched
    assert listing(album / ".picksel") == before
    assert (album / ".picksel" / "quality.npz").is_dir()


def test_cli_check_still_fails_for_a_real_error(tmp_path: Path) -> None:
    """The warning is for the cache only: an album that is not there is still an error."""
    out = check(tmp_path / "missing")
    assert out.returncode != 0
    assert len(out.stderr.strip().splitlines()) == 1


async def test_tui_shows_the_flags_and_warns_once_when_the_cache_cannot_be_written(
        album: Path, checked_album: tuple[Path, dict]) -> None:
    expected = checked_album[1]
    app = make_app(album)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert await wait_until(pilot, lambda: app.curator is not None and app.curator.quality is not None)
        c = app.curator
        for rel, flags in expected["flags"].items():
            assert c.quality.flags(c.rows[rel]) == flags
        shown = [(c.rel(k), [c.rel(r) for r in copies]) for k, copies in c.quality.groups]
        assert shown == [(g["keep"], g["copies"]) for g in expected["duplicates"]]
        assert "failed" not in app.quality_line()
        warnings = [n.message for n in app._notifications if "quality.npz" in n.message]
        assert len(warnings) == 1, warnings
        assert str(album / ".picksel" / "quality.npz") in warnings[0]
        assert "Is a directory" in warnings[0]
        # a re-check (thresholds changed in another shell) does not repeat the warning
        app.start_quality()
        await settle(app, pilot)
        assert await wait_until(pilot, lambda: app.quality_job is None and app.curator.quality is not None)
        assert len([n for n in app._notifications if "quality.npz" in n.message]) == 1
    left = listing(album / ".picksel")
    assert not [p for p in left if p.endswith(".tmp")], left
    assert (album / ".picksel" / "quality.npz").is_dir()
