from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image

from picksel.errors import Cancelled, PickselError
from picksel.scan import IMAGE_EXTENSIONS, SIDECAR_EXTENSIONS, find_sidecars, scan_album


def _img(path: Path, color=(200, 30, 30)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), color).save(path, format="PNG")
    return path


def test_extensions_listed():
    for ext in (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"):
        assert ext in IMAGE_EXTENSIONS
    assert SIDECAR_EXTENSIONS == (".txt", ".caption", ".json")


def test_small_album_sorted_and_stat(small_album: Path):
    entries = scan_album(small_album)
    rels = [e.rel for e in entries]
    assert rels == sorted(rels)
    assert "digits/00.png" in rels and "photos/01.png" in rels and "digits/broken.jpg" in rels
    assert not any(r.endswith(".txt") for r in rels)
    e = next(e for e in entries if e.rel == "digits/00.png")
    st = (small_album / "digits/00.png").stat()
    assert e.size == st.st_size and e.mtime == st.st_mtime


def test_case_insensitive_extensions_and_skips(tmp_path: Path):
    root = tmp_path / "a"
    _img(root / "UPPER.JPG")
    _img(root / "x.Png")
    _img(root / "deep/er/still.jpeg")
    (root / "notes.txt").write_text("hi")
    (root / "movie.mp4").write_bytes(b"\0")
    _img(root / ".hidden/secret.jpg")
    _img(root / ".picksel/thumb.jpg")
    _img(root / "photomap_index/p.jpg")
    _img(root / "sub/photomap_index/p.jpg")
    rels = [e.rel for e in scan_album(root)]
    assert rels == ["UPPER.JPG", "deep/er/still.jpeg", "x.Png"]


def test_symlinks_outside_album_skipped_inside_kept_and_loops_safe(tmp_path: Path):
    outside = tmp_path / "outside"
    _img(outside / "o.jpg")
    root = tmp_path / "album"
    _img(root / "in/a.jpg")
    os.symlink(outside / "o.jpg", root / "link_out.jpg")
    os.symlink(outside, root / "dir_out")
    os.symlink(root / "in/a.jpg", root / "link_in.jpg")
    os.symlink(root, root / "in/loop")  # a loop back to the album root
    os.symlink(root / "missing.jpg", root / "dangling.jpg")
    rels = [e.rel for e in scan_album(root)]
    assert "link_out.jpg" not in rels
    assert not any(r.startswith("dir_out") for r in rels)
    assert "link_in.jpg" in rels and "in/a.jpg" in rels
    assert not any("loop" in r for r in rels)
    assert "dangling.jpg" not in rels


def test_cancel_and_progress(tmp_path: Path):
    root = tmp_path / "a"
    for i in range(3):
        _img(root / f"d{i}/x.jpg")
    calls = []
    scan_album(root, progress=lambda d, t, m: calls.append((d, t, m)))
    assert calls and calls[-1][0] == 3 and "scanning" in calls[-1][2]
    with pytest.raises(Cancelled):
        scan_album(root, cancel=lambda: True)


def test_missing_album(tmp_path: Path):
    with pytest.raises(PickselError, match="not found"):
        scan_album(tmp_path / "nope")


def test_find_sidecars(tmp_path: Path):
    img = _img(tmp_path / "a.b.jpg")
    (tmp_path / "a.b.json").write_text("{}")
    (tmp_path / "a.b.txt").write_text("cap")
    (tmp_path / "a.caption").write_text("other stem")
    assert find_sidecars(img) == [tmp_path / "a.b.txt", tmp_path / "a.b.json"]
    assert find_sidecars(_img(tmp_path / "lonely.png")) == []
