"""Flags and duplicate groups in the outputs that list images (inventory, ``select
--json``, ``export --json``), and CLIP cosine near duplicates through ``picksel check``,
end to end on a small album the tests make from real sample photos."""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import picksel
from PIL import Image, ImageOps
from quality_helpers import originals

PHOTOS = ("chelsea", "coffee", "rocket", "coins", "astronaut")




@pytest.fixture(scope="module")
def made_album(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("outputs") / "album"
    (root / "photos").mkdir(parents=True)
    (root / "bad").mkdir()
    photos = originals()
    for name in PHOTOS:
        photos[name].save(root / "photos" / f"{name}.jpg", quality=90)
    ImageOps.mirror(photos["chelsea"]).save(root / "photos" / "chelsea_mirror.jpg", quality=70)
    Image.new("RGB", (320, 240)).save(root / "bad" / "black.png")
    from tui_app_helpers import index_album

    index_album(root)  # the builtin index plus a cached map, so the app computes no UMAP
    return root


@pytest.fixture
def album(made_album: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "album"
    shutil.copytree(made_album, dest)
    return dest


def inventory(capsys: pytest.CaptureFixture[str], album: Path, file: Path) -> tuple[dict[str, list[str]], str]:
    code, _, err = picksel(capsys, "inventory", album, file, "--force")
    assert code == 0, err
    with file.open(encoding="utf-8", newline="") as fh:
        records = list(csv.reader(fh, dialect="excel-tab"))
    assert records[0][6:] == ["Flags", "DupGroup", "DupRole"]
    return {(f"{r[1]}/{r[0]}" if r[1] else r[0]): r[6:] for r in records[1:]}, err


def test_inventory_is_unchecked_until_check_and_never_measures(
    album: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Indexing measures as it decodes; an index that did not (a PhotoMapAI import, an
    # older picksel) has no quality.npz: the inventory must say so, not measure.
    (album / ".picksel" / "quality.npz").unlink()
    assert picksel(capsys, "select", album, "--count", "7", "--iterations", "3")[0] == 0
    rows, err = inventory(capsys, album, tmp_path / "inv.tsv")
    assert len(rows) == 7 and all(cells == ["unchecked", "", ""] for cells in rows.values())
    assert "7 images have no quality measures yet" in err and "picksel check" in err
    assert not (album / ".picksel" / "quality.npz").exists()  # nothing decoded behind our back
    # a refusal stays one line: the note about measures comes only with a written file
    code, _, err = picksel(capsys, "inventory", album, tmp_path / "inv.tsv")
    assert code == 1 and err.strip().splitlines() == [
        f"picksel: {tmp_path / 'inv.tsv'} already exists; not overwriting it"]


def test_inventory_is_checked_right_after_indexing(
    album: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert picksel(capsys, "select", album, "--count", "7", "--iterations", "3")[0] == 0
    rows, err = inventory(capsys, album, tmp_path / "inv.tsv")
    assert len(rows) == 7 and not any(cells[0] == "unchecked" for cells in rows.values())
    assert "no quality measures" not in err


def test_inventory_and_json_carry_flags_and_the_groups_check_lists(
    album: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = picksel(capsys, "check", album, "--json")
    assert code == 0
    doc = json.loads(out)
    number = {}
    for n, g in enumerate(doc["duplicates"], 1):
        number[g["keep"]] = (n, "keep")
        number.update({c: (n, "copy") for c in g["copies"]})
    assert number["photos/chelsea.jpg"][0] == number["photos/chelsea_mirror.jpg"][0]

    code, out, err = picksel(capsys, "select", album, "--count", "7", "--iterations", "3", "--json")
    assert code == 0 and "no quality measures" not in err
    selected = {s["path"]: s for s in json.loads(out)["selected"]}
    assert len(selected) == 7
    for rel, s in selected.items():
        assert s["flags"] == doc["flags"].get(rel, [])
        if rel in number:
            assert s["duplicate"] == {"group": number[rel][0], "role": number[rel][1], "kind": "near"}
        else:
            assert s["duplicate"] is None
    assert {"dark", "blank"} <= set(selected["bad/black.png"]["flags"])

    rows, err = inventory(capsys, album, tmp_path / "inv.tsv")
    assert "no quality measures" not in err
    for rel, (flags, group, role) in rows.items():
        assert flags == ",".join(doc["flags"].get(rel, []))
        assert (int(group), role) == number[rel] if rel in number else (group, role) == ("", "")

    code, out, _ = picksel(capsys, "export", album, tmp_path / "out", "--json")
    files = json.loads(out)["files"]
    assert code == 0 and len(files) == 7
    assert all(f["flags"] == doc["flags"].get(f["path"], []) for f in files)

    # a file changed since it was measured is not judged from stale measures
    changed = album / "photos" / "coins.jpg"
    Image.new("RGB", (300, 300), "white").save(changed)
    os.utime(changed, (1e9, 1e9))
    rows, err = inventory(capsys, album, tmp_path / "inv.tsv")
    assert rows["photos/coins.jpg"] == ["unchecked", "", ""]
    assert "1 image has no quality measures yet" in err


def fake_clip_index(album: Path, encoder: str, twins: tuple[str, str]) -> None:
    """Give the album index crafted vectors under ``encoder``: ``twins`` nearly equal
    (cosine ≈ 0.99), everything else far apart, as CLIP would for two shots of one scene
    that no perceptual hash links."""
    from picksel.index import load_index, save_index

    index = load_index(album)
    rng = np.random.default_rng(0)
    v = rng.standard_normal((len(index), 64)).astype(np.float32)
    a, b = (index.paths.index(t) for t in twins)
    v[b] = v[a] + 0.1 * v[b]
    index.embeddings = (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)
    index.encoder = encoder
    save_index(index)


def groups_of(capsys: pytest.CaptureFixture[str], album: Path, *extra: str) -> set[frozenset[str]]:
    code, out, err = picksel(capsys, "check", album, "--json", *extra)
    assert code == 0, err
    return {frozenset([g["keep"], *g["copies"]]) for g in json.loads(out)["duplicates"]}


def test_clip_vectors_add_near_duplicates_the_hash_cannot_see(
    album: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    twins = frozenset({"photos/coffee.jpg", "photos/rocket.jpg"})
    mirror = frozenset({"photos/chelsea.jpg", "photos/chelsea_mirror.jpg"})
    assert groups_of(capsys, album) == {mirror}  # builtin vectors: hash pairs only

    fake_clip_index(album, "builtin:v1", tuple(sorted(twins)))
    assert groups_of(capsys, album) == {mirror}  # builtin vectors are never compared

    fake_clip_index(album, "clip:ViT-B-32/laion2b_s34b_b79k", tuple(sorted(twins)))
    assert groups_of(capsys, album) == {mirror, twins}
    code, out, _ = picksel(capsys, "check", album, "--json")
    kinds = {frozenset([g["keep"], *g["copies"]]): g["kind"] for g in json.loads(out)["duplicates"]}
    assert kinds[twins] == "near"
    # the inventory shows the same group (same vectors, same numbering)
    assert picksel(capsys, "select", album, "--count", "7", "--iterations", "3")[0] == 0
    rows, _ = inventory(capsys, album, tmp_path / "inv.tsv")
    assert rows["photos/coffee.jpg"][1] == rows["photos/rocket.jpg"][1] != ""

    # the threshold is documented, overridable and kept: above 1 turns the search off
    assert groups_of(capsys, album, "--set", "near_cosine=1.01") == {mirror}
    assert groups_of(capsys, album) == {mirror}
    assert groups_of(capsys, album, "--reset-thresholds") == {mirror, twins}


async def test_tui_inventory_writes_the_same_columns(album: Path, tmp_path: Path, capsys) -> None:
    from textual.widgets import Input
    from tui_app_helpers import make_app, run_selection, wait_until

    from picksel.tui.screens.inventory import InventoryScreen

    code, out, _ = picksel(capsys, "check", album, "--json")
    flags = json.loads(out)["flags"]
    target = tmp_path / "inv.tsv"
    app = make_app(album)
    async with app.run_test(size=(120, 40)) as pilot:
        await run_selection(app, pilot, count=4, iterations=4)
        await pilot.press("i")
        assert await wait_until(pilot, lambda: isinstance(app.screen, InventoryScreen))
        app.screen.query_one("#inv-path", Input).value = str(target)
        await pilot.press("enter")
        assert await wait_until(pilot, target.exists)
    with target.open(encoding="utf-8", newline="") as fh:
        records = list(csv.reader(fh, dialect="excel-tab"))
    assert records[0][6:] == ["Flags", "DupGroup", "DupRole"] and len(records) >= 5
    for r in records[1:]:
        rel = f"{r[1]}/{r[0]}"
        assert r[6] == ",".join(flags.get(rel, []))  # measured: never "unchecked"
