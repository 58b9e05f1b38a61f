"""On-disk thumbnail cache: hits, invalidation by mtime, placeholders for bad files."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import picksel.thumbs as thumbs


def _first_jpeg(album: Path) -> str:
    return sorted(p.relative_to(album).as_posix() for p in album.rglob("*.jpg") if p.name != "broken.jpg")[0]


def test_miss_writes_cache_then_hit_does_not_decode(small_album: Path, tmp_path: Path, monkeypatch) -> None:
    state = tmp_path / "state"
    rel = _first_jpeg(small_album)
    img = thumbs.load_thumbnail(small_album, rel, state, 64)
    assert img.mode == "RGB" and max(img.size) == 64 and not thumbs.is_placeholder(img)
    cached = thumbs.thumbnail_path(small_album, rel, state, 64)
    assert cached.is_file() and cached.parent == state / "thumbs" / "64"

    def boom(path: Path, size: int) -> Image.Image:
        raise AssertionError("decoded again despite a cache entry")

    monkeypatch.setattr(thumbs, "thumbnail", boom)
    again = thumbs.load_thumbnail(small_album, rel, state, 64)
    assert again.size == img.size
    assert np.array_equal(np.asarray(again), np.asarray(img))


def test_changed_mtime_gives_a_new_entry(small_album: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    rel = _first_jpeg(small_album)
    first = thumbs.thumbnail_path(small_album, rel, state, 64)
    thumbs.load_thumbnail(small_album, rel, state, 64)
    path = small_album / rel
    Image.new("RGB", (80, 40), (0, 200, 0)).save(path)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    second = thumbs.thumbnail_path(small_album, rel, state, 64)
    assert second != first and not second.exists()
    img = thumbs.load_thumbnail(small_album, rel, state, 64)
    assert second.is_file()
    assert img.size == (64, 32) and img.getpixel((10, 10)) == pytest.approx((0, 200, 0), abs=3)


def test_size_is_part_of_the_key(small_album: Path, tmp_path: Path) -> None:
    rel = _first_jpeg(small_album)
    a = thumbs.thumbnail_path(small_album, rel, tmp_path, 32)
    b = thumbs.thumbnail_path(small_album, rel, tmp_path, 64)
    assert a != b


@pytest.mark.parametrize("rel", ["digits/broken.jpg", "photos/does-not-exist.jpg"])
def test_unreadable_image_gives_placeholder_not_cached(small_album: Path, tmp_path: Path, rel: str) -> None:
    img = thumbs.load_thumbnail(small_album, rel, tmp_path, 64)
    assert thumbs.is_placeholder(img) and img.size == (64, 64)
    assert not thumbs.thumbnail_path(small_album, rel, tmp_path, 64).exists()


def test_corrupt_cache_entry_is_rebuilt(small_album: Path, tmp_path: Path) -> None:
    rel = "digits/00.png"
    cached = thumbs.thumbnail_path(small_album, rel, tmp_path, 64)
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"not a png")
    img = thumbs.load_thumbnail(small_album, rel, tmp_path, 64)
    assert not thumbs.is_placeholder(img)
    with Image.open(cached) as im:
        assert im.size == img.size


def test_read_only_state_dir_still_serves(small_album: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "state"
    blocker.write_text("a file where the state dir should be")
    img = thumbs.load_thumbnail(small_album, "digits/01.png", blocker, 32)
    assert img.size == (32, 32) and not thumbs.is_placeholder(img)


def test_reindex_prunes_thumbnails_of_removed_and_edited_images(small_album: Path) -> None:
    from picksel.index import build_index

    state = small_album / ".picksel"
    idx, _ = build_index(small_album)
    keep, edited, removed = idx.paths[0], idx.paths[1], idx.paths[2]
    for rel in (keep, edited, removed):
        for size in (32, 64):
            thumbs.load_thumbnail(small_album, rel, state, size)
    old_edited = thumbs.thumbnail_path(small_album, edited, state, 64)
    old_removed = thumbs.thumbnail_path(small_album, removed, state, 32)
    kept = [thumbs.thumbnail_path(small_album, keep, state, s) for s in (32, 64)]
    stranger = state / "thumbs" / "64" / "notes.txt"
    stranger.write_text("not ours")
    assert old_edited.is_file() and old_removed.is_file() and all(p.is_file() for p in kept)

    (small_album / removed).unlink()
    path = small_album / edited
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 7_000_000_000))
    build_index(small_album)
    assert not old_edited.exists() and not old_removed.exists()
    assert all(p.is_file() for p in kept) and stranger.is_file()
    # the edited image's new entry is made on demand and survives the next prune
    thumbs.load_thumbnail(small_album, edited, state, 64)
    fresh = thumbs.thumbnail_path(small_album, edited, state, 64)
    assert fresh.is_file()
    assert thumbs.prune_thumbnails(state, *_paths_mtimes(small_album)) == 0
    assert fresh.is_file()


def _paths_mtimes(album: Path) -> tuple[list[str], np.ndarray]:
    from picksel.index import load_index

    idx = load_index(album)
    return idx.paths, idx.mtimes
