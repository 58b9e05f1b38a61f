"""Fault and hostile-input tests of export and inventory (issue 8 points 7-11 and 21,
issue 9 point 13): real processes, real files, real symlinks and FIFOs.

Future changes must keep these passing: an export never mixes two selections silently,
never loops on a long name, never copies what is not an indexed image of the album, and
an inventory never hands a spreadsheet a live formula.
"""

from __future__ import annotations

import csv
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from export_helpers import listing, make_album
from PIL import Image

import picksel.export as export_mod
from picksel.export import DestHasOtherImages, export_images, fit_bytes, plan_export
from picksel.export_manifest import MANIFEST_NAME
from picksel.inventory import read_inventory
from picksel.state import SavedSelection, load_state, save_state

TIMEOUT = 120  # generous for a busy 2-core machine; a hang is what is being caught


def run(*args: object, timeout: float = TIMEOUT) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200", "PYTHONIOENCODING": "utf-8"}
    return subprocess.run(
        [sys.executable, "-m", "picksel", *map(str, args)],
        capture_output=True, text=True, timeout=timeout, env=env,
    )


def png(seed: int) -> bytes:
    """A small real PNG, different per seed."""
    import io

    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def image_album(root: Path, rels: list[str], captions: bool = True) -> Path:
    files: dict[str, bytes] = {}
    for i, rel in enumerate(rels):
        files[rel] = png(i)
        if captions:
            files[rel.rsplit(".", 1)[0] + ".txt"] = f"caption of {rel}".encode()
    return make_album(root, files)


def index(album: Path) -> list[str]:
    from picksel.index import build_index

    idx, _ = build_index(album)
    return idx.paths


def save_selection(album: Path, consensus: list[str]) -> None:
    sdir = album / ".picksel"
    state, _ = load_state(sdir)
    state.selection = SavedSelection("fps", len(consensus), 5, 1, "fp", list(consensus),
                                     {p: 5 for p in consensus})
    save_state(sdir, state)


def images_in(dest: Path) -> list[str]:
    return sorted(n for n in os.listdir(dest) if n.endswith(".png") and not n.startswith("."))


# ---------------------------------------------------------------- 7: two selections, one folder


@pytest.fixture
def album(tmp_path: Path) -> Path:
    alb = image_album(tmp_path / "album", [f"p/{i:02d}.png" for i in range(8)])
    index(alb)
    return alb


def test_cli_refuses_to_mix_a_new_selection_into_an_earlier_export(album: Path, tmp_path: Path):
    dest = tmp_path / "lora"
    first = [f"p/{i:02d}.png" for i in range(6)]
    save_selection(album, first)
    r = run("export", album, dest)
    assert r.returncode == 0, r.stderr
    assert images_in(dest) == [f"{i:02d}.png" for i in range(6)]
    manifest = json.loads((dest / MANIFEST_NAME).read_text())
    assert manifest["files"]["00.png"]["source"] == "p/00.png"
    assert manifest["files"]["00.png"]["album"] == str(album.resolve())
    assert manifest["files"]["00.txt"]["kind"] == "caption"
    assert (dest / MANIFEST_NAME).stat().st_mode & 0o777 == 0o666 & ~current_umask()

    # Re-exporting the same selection is not a mix: no flag needed.
    r = run("export", album, dest)
    assert r.returncode == 0, r.stderr
    before = listing(dest)

    second = ["p/05.png", "p/06.png", "p/07.png"]  # one image in common
    save_selection(album, second)
    r = run("export", album, dest)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "5 images here are not in this selection" in lines[0]
    assert "--merge" in lines[0] and "--replace" in lines[0]
    assert "Traceback" not in r.stderr
    assert listing(dest) == before  # nothing copied, nothing moved

    r = run("export", album, dest, "--merge", "--replace")
    assert r.returncode == 2  # the two choices exclude each other

    r = run("export", album, dest, "--merge")
    assert r.returncode == 0, r.stderr
    assert images_in(dest) == [f"{i:02d}.png" for i in range(8)]
    assert "added to 5 images not in this selection" in r.stdout


def test_cli_replace_moves_the_earlier_export_aside_and_deletes_nothing(album: Path, tmp_path: Path):
    dest = tmp_path / "lora"
    save_selection(album, [f"p/{i:02d}.png" for i in range(6)])
    assert run("export", album, dest).returncode == 0
    (dest / "notes.md").write_text("the user's notes stay")
    before = {n: b for n, b in listing(dest).items() if n != MANIFEST_NAME}

    save_selection(album, ["p/05.png", "p/06.png", "p/07.png"])
    r = run("export", album, dest, "--replace", "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert images_in(dest) == ["05.png", "06.png", "07.png"]
    assert sorted(n for n in os.listdir(dest) if n.endswith(".txt")) == ["05.txt", "06.txt", "07.txt"]
    aside = [p for p in dest.iterdir() if p.name.startswith(".picksel-replaced-")]
    assert len(aside) == 1 and str(aside[0]) == report["replaced_to"]
    moved = sorted(os.listdir(aside[0]))
    assert moved == sorted([f"{i:02d}.png" for i in range(5)] + [f"{i:02d}.txt" for i in range(5)])
    # nothing deleted: every earlier file is either still in DEST or in the aside folder
    for name, data in before.items():
        where = dest / name if (dest / name).exists() else aside[0] / name
        assert where.read_bytes() == data, name
    assert (dest / "05.png").read_bytes() == (album / "p/05.png").read_bytes()
    manifest = json.loads((dest / MANIFEST_NAME).read_text())
    assert "00.png" not in manifest["files"] and f"{aside[0].name}/00.png" in manifest["files"]


def test_images_picksel_did_not_write_are_counted_and_said(album: Path, tmp_path: Path):
    dest = make_album(tmp_path / "dest", {"holiday.png": png(99), "readme.txt": b"x"})
    save_selection(album, ["p/00.png"])
    r = run("export", album, dest)
    assert r.returncode == 1
    assert "1 image here is not in this selection (it was not written by picksel)" in r.stderr
    # an identical copy of a selected image is this selection, not a stranger
    dest2 = make_album(tmp_path / "dest2", {"00.png": (album / "p/00.png").read_bytes()})
    r = run("export", album, dest2)
    assert r.returncode == 0, r.stderr
    assert "1 already there" in r.stdout


def test_engine_refuses_before_copying_and_survey_counts_foreign(tmp_path: Path):
    alb = make_album(tmp_path / "alb", {"a.png": b"a", "b.png": b"b", "c.png": b"c"})
    dest = tmp_path / "d"
    export_images(alb, ["a.png", "b.png"], dest)
    (dest / "stranger.png").write_bytes(b"s")
    with pytest.raises(DestHasOtherImages) as exc:
        export_images(alb, ["c.png"], dest)
    survey = exc.value.survey
    assert survey.others == ["a.png", "b.png", "stranger.png"] and survey.foreign == ["stranger.png"]
    assert survey.line() == "3 images here are not in this selection (1 of them not written by picksel)"
    assert not (dest / "c.png").exists()


@pytest.mark.parametrize("kind", ["garbage", "fifo", "symlink", "huge-claim"])
def test_hostile_manifest_is_ignored_never_followed_and_kept(tmp_path: Path, kind: str):
    alb = image_album(tmp_path / "alb", ["a.png"], captions=False)
    index(alb)
    save_selection(alb, ["a.png"])
    dest = tmp_path / "d"
    dest.mkdir()
    target = tmp_path / "victim.json"
    target.write_text("do not touch")
    m = dest / MANIFEST_NAME
    if kind == "garbage":
        m.write_bytes(b"\x80not json{{{")
    elif kind == "fifo":
        os.mkfifo(m)
    elif kind == "symlink":
        os.symlink(target, m)
    else:
        m.write_text(json.dumps({"picksel_export": 1, "files": [1] * 10, "exports": "x" * 100}))
    r = run("export", alb, dest, timeout=60)  # a FIFO read would hang: the timeout catches it
    assert r.returncode == 0, r.stderr
    assert target.read_text() == "do not touch"
    assert json.loads(m.read_text())["files"]["a.png"]["source"] == "a.png"
    if kind != "huge-claim":  # the unreadable one is moved aside, never deleted
        aside = [n for n in os.listdir(dest) if n.startswith(f"{MANIFEST_NAME}.unreadable-")]
        assert len(aside) == 1


# ---------------------------------------------------------------- 8: names over 255 bytes

CJK = "写真" * 41  # 82 characters, 246 bytes in UTF-8


def test_long_cjk_name_exported_twice_does_not_loop(tmp_path: Path):
    alb = image_album(tmp_path / "alb", [f"folder/{CJK}.png"])
    (alb / f"folder/{CJK}.caption").write_text("a longer sidecar extension")
    index(alb)
    save_selection(alb, [f"folder/{CJK}.png"])
    dest = tmp_path / "d"
    r = run("export", alb, dest, timeout=60)
    assert r.returncode == 0, r.stderr
    (alb / f"folder/{CJK}.png").write_bytes(png(1234))  # edited: the name is taken now
    index(alb)
    r = run("export", alb, dest, "--merge", timeout=60)  # looped forever at 100% CPU before
    assert r.returncode == 0, r.stderr
    names = os.listdir(dest)
    assert all(len(os.fsencode(n)) <= 255 for n in names)
    new = [n for n in images_in(dest) if n != f"{CJK}.png"]
    assert len(new) == 1 and new[0].startswith("folder_写真") and new[0].endswith("真.png")
    (alb / f"folder/{CJK}.png").write_bytes(png(4321))  # and again: a numbered name
    index(alb)
    r = run("export", alb, dest, "--merge", timeout=60)
    assert r.returncode == 0, r.stderr
    names = os.listdir(dest)
    assert all(len(os.fsencode(n)) <= 255 for n in names)
    third = [n for n in images_in(dest) if n not in new and n != f"{CJK}.png"]
    assert len(third) == 1 and third[0].startswith("folder_写真") and third[0].endswith("_1.png")
    stem = third[0][: -len(".png")]
    assert (dest / f"{stem}.caption").read_text() == "a longer sidecar extension"
    assert (dest / f"{stem}.txt").exists()
    assert (dest / third[0]).read_bytes() == png(4321)


def test_names_fit_a_smaller_limit_and_cut_on_character_boundaries(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(export_mod, "name_max", lambda dest: 40)
    e30 = "é" * 30
    alb = make_album(tmp_path / "alb", {f"x/{e30}.png": b"1", f"y/x/{e30}.png": b"2", f"z/x/{e30}.png": b"3",
                                        f"w/x/{e30}.png": b"4", f"w/x/{e30}.caption": b"c"})
    rels = [f"x/{e30}.png", f"y/x/{e30}.png", f"z/x/{e30}.png", f"w/x/{e30}.png"]
    report = export_images(alb, rels, tmp_path / "d")
    names = [n for _, n in report.copied] + [n for _, n in report.sidecars]
    assert len(set(names)) == 5 and report.errors == []
    for n in names:
        assert len(n.encode()) <= 40 and "\ufffd" not in n
    assert [n for _, n in report.copied][2] == "x_" + "é" * 16 + "_1.png"
    image, caption = report.copied[3][1], report.sidecars[0][1]
    assert caption == image.replace(".png", ".caption")
    assert fit_bytes("写真写真", 7) == "写真" and fit_bytes("ab", 1) == "a"


# ---------------------------------------------------------------- 9: naming is linear


def _clash_album(root: Path, n: int) -> tuple[Path, list[str]]:
    rels = [f"f{i:04d}/p/a.png" for i in range(n)]  # same parent name, same file name
    return make_album(root, {rel: str(i).encode() for i, rel in enumerate(rels)}), rels


def test_naming_work_grows_linearly_with_clashes(tmp_path: Path, monkeypatch):
    calls = {"n": 0}
    real = export_mod._dest_state

    def counting(src, target):
        calls["n"] += 1
        return real(src, target)

    monkeypatch.setattr(export_mod, "_dest_state", counting)
    work = {}
    for n in (100, 400):
        alb, rels = _clash_album(tmp_path / f"alb{n}", n)
        calls["n"] = 0
        items = plan_export(alb, rels, tmp_path / f"d{n}")
        assert len({i.dest_name for i in items}) == n
        work[n] = calls["n"]
    assert work[400] <= 3 * 400  # was ~n²/2 (80,000 name checks for 400 clashes)
    assert work[400] < 5 * work[100]


# ---------------------------------------------------------------- 10: only indexed images


def test_bogus_selection_entries_are_left_out_before_anything_is_copied(album: Path, tmp_path: Path):
    (album / ".hidden.png").write_bytes(png(5))
    bogus = [".", "../../etc/passwd", "p/00.txt", ".picksel/index.npz", ".hidden.png", "p/nope.png"]
    save_selection(album, ["p/00.png", *bogus, "p/01.png"])
    dest = tmp_path / "d"
    r = run("export", album, dest)
    assert r.returncode == 0, r.stderr
    assert "AssertionError" not in r.stderr and "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if "left out" in ln]
    assert lines == ["picksel: 6 entries of the saved selection are not indexed images of this album;"
                     " left out: ., ../../etc/passwd, p/00.txt, .picksel/index.npz, .hidden.png, …"]
    assert sorted(n for n in os.listdir(dest) if not n.startswith(".")) == ["00.png", "00.txt", "01.png", "01.txt"]

    inv = tmp_path / "inv.tsv"
    r = run("inventory", album, inv)
    assert r.returncode == 0, r.stderr
    assert sum("left out" in ln for ln in r.stderr.splitlines()) == 1
    included = [row.rel for row in read_inventory(inv) if row.status == "Included"]
    assert included == ["p/00.png", "p/01.png"]


def test_engine_refuses_dot_and_non_images_without_an_index(tmp_path: Path):
    alb = make_album(tmp_path / "alb", {"a.png": b"a", "a.txt": b"t", ".h.png": b"h"})
    report = export_images(alb, ["a.png", ".", "a.txt", ".h.png", ""], tmp_path / "d")
    assert dict(report.skipped) == {".": "not an image file", "a.txt": "not an image file",
                                    ".h.png": "hidden, not an album image", "": "not an image file"}
    assert report.copied == [("a.png", "a.png")]


# ---------------------------------------------------------------- 11: symlinks inside the album


def test_what_is_indexed_can_be_exported(tmp_path: Path):
    alb = image_album(tmp_path / "alb", ["real/b.png", "c.png"])
    outside = image_album(tmp_path / "outside", ["secret.png"])
    os.symlink(alb / "real" / "b.png", alb / "link.png")  # inside: indexed and exported
    os.symlink("real/b.txt", alb / "link.txt")  # its caption, a relative link
    os.symlink(outside / "secret.png", alb / "leak.png")  # leaves the album: never
    os.symlink(outside / "secret.txt", alb / "c.txt.bak")
    paths = index(alb)
    assert "link.png" in paths and "leak.png" not in paths
    report = export_images(alb, paths + ["leak.png"], tmp_path / "d", indexed=None)
    assert report.errors == []
    assert dict(report.skipped) == {"leak.png": "symlink leaves the album"}
    assert sorted(rel for rel, _ in report.copied) == sorted(paths)
    d = tmp_path / "d"
    copied = dict(report.copied)
    assert (d / copied["link.png"]).read_bytes() == (alb / "real/b.png").read_bytes()
    assert not (d / copied["link.png"]).is_symlink()
    assert (d / copied["link.png"].replace(".png", ".txt")).read_text() == "caption of real/b.png"


# ---------------------------------------------------------------- 21 and issue 9.13: inventory


def current_umask() -> int:
    old = os.umask(0o022)
    os.umask(old)
    return old


def test_inventory_neutralises_formulas_and_raw_keeps_them(tmp_path: Path):
    folder = '=HYPERLINK("evil.example","click")'
    rels = [f"{folder}/a.png", "+1.png", "-x.png", "@at.png", "'quoted.png", "plain.png"]
    alb = image_album(tmp_path / "alb", rels, captions=False)
    index(alb)
    save_selection(alb, rels)
    for fmt, dialect in (("tsv", "excel-tab"), ("csv", "excel")):
        out = tmp_path / f"inv.{fmt}"
        extra = ["--csv"] if fmt == "csv" else []
        r = run("inventory", alb, out, *extra)
        assert r.returncode == 0, r.stderr
        with out.open(encoding="utf-8", newline="") as fh:
            cells = [c for row in csv.reader(fh, dialect=dialect) for c in row[:2]]
        assert all(not c.startswith(("=", "+", "-", "@", "\t", "\r")) for c in cells)
        assert "'" + folder in cells and "'+1.png" in cells and "plain.png" in cells
        rows = read_inventory(out, csv=fmt == "csv")
        assert sorted(r.rel for r in rows) == sorted(rels)
        raw = tmp_path / f"raw.{fmt}"
        r = run("inventory", alb, raw, "--raw", *extra)
        assert r.returncode == 0, r.stderr
        with raw.open(encoding="utf-8", newline="") as fh:
            cells = [c for row in csv.reader(fh, dialect=dialect) for c in row[:2]]
        assert folder in cells and "'quoted.png" in cells
        assert sorted(r.rel for r in read_inventory(raw, csv=fmt == "csv", raw=True)) == sorted(rels)
        assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~current_umask()


def test_inventory_follows_the_umask(tmp_path: Path):
    from picksel.inventory import InventoryRow, write_inventory

    rows = [InventoryRow("a.png", "", 1, 50.0, 0, "Included")]
    old = os.umask(0o027)
    try:
        write_inventory(tmp_path / "a.tsv", rows)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.tsv").stat().st_mode) == 0o640


def test_inventory_without_selection_is_refused_with_the_shared_message(tmp_path: Path):
    from picksel.inventory import NO_SELECTION

    alb = image_album(tmp_path / "alb", ["a.png"])
    index(alb)
    r = run("inventory", alb, tmp_path / "inv.tsv")
    assert r.returncode == 1
    assert r.stderr.strip() == f"picksel: {NO_SELECTION}"
    assert not (tmp_path / "inv.tsv").exists()


def test_inventory_help_shows_a_single_percent():
    r = run("inventory", "--help")
    assert r.returncode == 0
    assert "Frequency(%)" in r.stdout and "%%" not in r.stdout
