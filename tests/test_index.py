from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from index_helpers import (
    bomb_png,
    bump_mtime,
    exif_rotated_jpeg,
    save_jpeg,
    truncated_copy,
    truncated_png,
)
from PIL import Image

import picksel.index as index_mod
from picksel.encoders.builtin import DIM
from picksel.errors import Cancelled, IndexCorrupt, IndexMissing
from picksel.index import AlbumIndex, build_index, index_path, load_index, save_index


@pytest.fixture
def counting(monkeypatch):
    """Counts files sent to the encoder (proves what was (not) decoded)."""
    seen: list[str] = []
    real = index_mod.encode_paths

    def spy(enc, paths, cancel=None, **kw):
        seen.extend(str(p) for p in paths)
        return real(enc, paths, cancel, **kw)

    monkeypatch.setattr(index_mod, "encode_paths", spy)
    return seen


def test_build_small_album(small_album: Path):
    idx, rep = build_index(small_album)
    assert idx.paths == sorted(idx.paths) and "digits/broken.jpg" not in idx.paths
    assert "photos/01.png" in idx.paths and "digits/01.png" in idx.paths
    assert idx.embeddings.dtype == np.float32 and idx.embeddings.shape == (len(idx), DIM)
    np.testing.assert_allclose(np.linalg.norm(idx.embeddings, axis=1), 1.0, atol=1e-5)
    assert idx.encoder == "builtin:v1" and idx.source == "picksel"
    assert rep.failures == [("digits/broken.jpg", rep.failures[0][1])]
    assert rep.added == len(idx) and rep.unchanged == 0  # the broken file is a failure, not an addition
    assert rep.messages == [f"1 file could not be read: digits/broken.jpg ({rep.failures[0][1]})"]
    loaded = load_index(small_album)
    assert loaded.paths == idx.paths and np.array_equal(loaded.embeddings, idx.embeddings)
    assert loaded.failures == idx.failures and loaded.fingerprint() == idx.fingerprint()
    assert loaded.row_of()["photos/01.png"] == idx.paths.index("photos/01.png")
    for i, rel in enumerate(idx.paths):
        st = (small_album / rel).stat()
        assert idx.sizes[i] == st.st_size and idx.mtimes[i] == st.st_mtime


def test_index_file_has_plain_arrays_only(small_album: Path):
    build_index(small_album)
    path = small_album / ".picksel" / "index.npz"
    with np.load(path, allow_pickle=False) as npz:
        for key in npz.files:
            assert npz[key].dtype.kind != "O", key
        assert npz["embeddings"].dtype == np.float32
        assert npz["paths"].dtype.kind == "U"
        assert npz["mtimes"].dtype == np.float64 and npz["sizes"].dtype == np.int64
        assert npz["encoder"].shape == () and str(npz["encoder"]) == "builtin:v1"
        assert int(npz["version"]) == 1 and str(npz["source"]) == "picksel"
        assert npz["failed_paths"].tolist() == ["digits/broken.jpg"]
        assert len(npz["failed_reasons"]) == 1


def test_unchanged_album_is_not_decoded_and_broken_file_not_retried(small_album: Path, counting):
    first, _ = build_index(small_album)
    assert len(counting) == len(first) + 1
    counting.clear()
    mtime_before = index_path(small_album).stat().st_mtime_ns
    again, rep = build_index(small_album)
    assert counting == []
    assert rep.unchanged == len(first) and rep.added == rep.updated == rep.removed == 0
    assert rep.failures == first.failures  # still reported, not retried
    assert again.fingerprint() == first.fingerprint()
    assert index_path(small_album).stat().st_mtime_ns == mtime_before  # nothing rewritten


def test_broken_file_retried_when_it_changes(small_album: Path, demo_images, counting):
    build_index(small_album)
    counting.clear()
    save_jpeg(demo_images["flower"].resize((80, 60)), small_album / "digits" / "broken.jpg")
    idx, rep = build_index(small_album)
    assert [Path(p).name for p in counting] == ["broken.jpg"]
    assert "digits/broken.jpg" in idx.paths and rep.failures == [] and rep.updated == 1


def test_incremental_add_change_remove(small_album: Path, demo_images, counting):
    first, _ = build_index(small_album)
    counting.clear()
    save_jpeg(demo_images["coffee"].resize((90, 60)), small_album / "photos" / "new.jpg")
    changed = small_album / "digits" / "02.png"
    demo_images["astronaut"].resize((64, 64)).save(changed)
    bump_mtime(changed)
    (small_album / "digits" / "03.png").unlink()
    idx, rep = build_index(small_album)
    assert sorted(Path(p).name for p in counting) == ["02.png", "new.jpg"]
    assert (rep.added, rep.updated, rep.removed) == (1, 1, 1)
    assert rep.unchanged == len(first) - 2
    assert "digits/03.png" not in idx.paths and "photos/new.jpg" in idx.paths
    old_rows, new_rows = first.row_of(), idx.row_of()
    for rel in idx.paths:
        if rel in old_rows and rel != "digits/02.png":
            assert np.array_equal(idx.embeddings[new_rows[rel]], first.embeddings[old_rows[rel]])
    assert not np.allclose(idx.embeddings[new_rows["digits/02.png"]], first.embeddings[old_rows["digits/02.png"]])
    assert idx.fingerprint() != first.fingerprint()


def test_encoder_change_and_full_reencode_everything(small_album: Path, counting):
    first, _ = build_index(small_album)
    old = load_index(small_album)
    old.encoder = "builtin:v0"  # as if written by an older picksel
    save_index(old)
    counting.clear()
    idx, rep = build_index(small_album)
    assert len(counting) == len(first) + 1  # every image, the broken one included
    assert idx.encoder == "builtin:v1"
    assert (rep.updated, rep.added, rep.removed, rep.unchanged) == (len(first), 0, 0, 0)
    assert any("encoder changed (builtin:v0 → builtin:v1)" in m for m in rep.messages)
    counting.clear()
    build_index(small_album, full=True)
    assert len(counting) == len(first) + 1


def test_cancel_mid_run_leaves_old_index(small_album: Path, demo_images, monkeypatch):
    build_index(small_album)
    before = index_path(small_album).read_bytes()
    for i in range(6):
        save_jpeg(demo_images["rocket"].rotate(i * 20).resize((60, 40)), small_album / f"n{i}.jpg")
    monkeypatch.setattr(index_mod, "BATCH_SIZE", 2)
    calls: list[tuple[int, int]] = []

    def progress(done, total, msg):
        calls.append((done, total))

    with pytest.raises(Cancelled):
        build_index(small_album, progress=progress, cancel=lambda: any(d >= 2 and t for d, t in calls))
    assert index_path(small_album).read_bytes() == before
    assert not [p for p in index_path(small_album).parent.iterdir() if p.name.endswith(".tmp")]
    calls.clear()
    idx, rep = build_index(small_album, progress=progress)
    assert rep.added == 6
    enc_calls = [(d, t) for d, t in calls if t == 6]
    assert enc_calls[-1] == (6, 6) and [d for d, _ in enc_calls] == sorted(d for d, _ in enc_calls)


def test_bad_inputs_reported_never_crash(tmp_path: Path, demo_images):
    album = tmp_path / "album"
    good = save_jpeg(demo_images["china"].resize((200, 150)), album / "good.jpg")
    (album / "zero.jpg").write_bytes(b"")
    truncated_copy(good, album / "cut.jpg")
    truncated_png(demo_images["flower"].resize((200, 150)), album / "cut.png")
    (album / "random.jpg").write_bytes(np.random.default_rng(3).bytes(4096))
    bomb_png(album / "bomb.png")
    (album / ".hidden").mkdir()
    save_jpeg(demo_images["china"], album / ".hidden" / "h.jpg")
    outside = save_jpeg(demo_images["coffee"], tmp_path / "outside.jpg")
    (album / "link.jpg").symlink_to(outside)
    idx, rep = build_index(album)
    assert idx.paths == ["good.jpg"]
    reasons = dict(rep.failures)
    assert reasons == {
        "bomb.png": reasons["bomb.png"],
        "cut.jpg": "truncated file",
        "cut.png": "truncated file",
        "random.jpg": "not an image",
        "zero.jpg": "zero-byte file",
    }
    assert reasons["bomb.png"].startswith("too large to decode safely")
    assert rep.messages[-1].startswith("5 files could not be read: bomb.png (too large to decode")


def test_exif_orientation_in_index(tmp_path: Path, demo_images):
    album = tmp_path / "a"
    upright = demo_images["coffee"].resize((240, 160))
    save_jpeg(upright, album / "upright.jpg")
    exif_rotated_jpeg(upright, album / "exif.jpg")
    save_jpeg(upright.transpose(Image.Transpose.ROTATE_90), album / "sideways.jpg")
    idx, _ = build_index(album)
    r = idx.row_of()
    e = idx.embeddings
    assert float(e[r["upright.jpg"]] @ e[r["exif.jpg"]]) > 0.98
    assert float(e[r["upright.jpg"]] @ e[r["exif.jpg"]]) > float(e[r["upright.jpg"]] @ e[r["sideways.jpg"]]) + 0.05


def test_missing_and_corrupt_index(tmp_path: Path, small_album: Path):
    with pytest.raises(IndexMissing):
        load_index(small_album)
    build_index(small_album)
    path = index_path(small_album)
    path.write_bytes(b"PK\x03\x04 definitely not a zip")
    with pytest.raises(IndexCorrupt) as exc:
        load_index(small_album)
    msg = str(exc.value)
    assert str(path) in msg and f"run `picksel index {small_album} --full`" in msg
    idx, rep = build_index(small_album)  # an incremental build recovers
    assert len(idx) > 0 and any("rebuilding it from scratch" in m for m in rep.messages)


def _rewrite(path: Path, **changes) -> None:
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays.update(changes)
    for k, v in list(arrays.items()):
        if v is None:
            del arrays[k]
    np.savez(path, **arrays)


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"embeddings": "float64"}, "expected float32"),
        ({"sizes": "float32"}, "sizes are float32"),
        ({"version": 99}, "version 99"),
        ({"paths": "object"}, "pickled objects"),  # refused, not unpickled
        ({"mtimes": "short"}, "mtimes are"),
        ({"encoder": None}, "missing encoder"),
        ({"embeddings": "nan"}, "NaN"),
        ({"paths": "unsorted"}, "sorted"),
    ],
)
def test_validation_on_load(small_album: Path, change, needle):
    build_index(small_album)
    path = index_path(small_album)
    with np.load(path, allow_pickle=False) as npz:
        emb, paths, mtimes = npz["embeddings"], npz["paths"], npz["mtimes"]
    key, what = next(iter(change.items()))
    value = {
        "float64": emb.astype(np.float64) if key == "embeddings" else None,
        "float32": np.zeros(len(paths), np.float32),
        99: np.array(99),
        "object": np.array(paths.tolist(), dtype=object),
        "short": mtimes[:-1],
        None: None,
        "nan": np.where(np.arange(emb.size).reshape(emb.shape) == 0, np.nan, emb).astype(np.float32),
        "unsorted": paths[::-1].copy(),
    }[what]
    _rewrite(path, **{key: value})
    with pytest.raises(IndexCorrupt, match=needle):
        load_index(small_album)


def test_state_dir_override_leaves_album_untouched(small_album: Path, tmp_path: Path):
    sd = tmp_path / "state"
    idx, _ = build_index(small_album, state_dir=sd)
    assert (sd / "index.npz").is_file() and not (small_album / ".picksel").exists()
    assert load_index(small_album, sd).paths == idx.paths
    with pytest.raises(IndexMissing):
        load_index(small_album)


def test_empty_album_and_fingerprint(tmp_path: Path, demo_images):
    album = tmp_path / "empty"
    album.mkdir()
    idx, rep = build_index(album)
    assert len(idx) == 0 and idx.embeddings.shape == (0, DIM) and rep.failures == []
    assert load_index(album).embeddings.shape == (0, DIM)
    save_jpeg(demo_images["china"].resize((50, 40)), album / "a.jpg")
    one, _ = build_index(album)
    fp = one.fingerprint()
    assert fp != idx.fingerprint() and load_index(album).fingerprint() == fp
    copy = AlbumIndex(
        root=album, paths=list(one.paths), embeddings=one.embeddings * -1, mtimes=one.mtimes,
        sizes=one.sizes, encoder=one.encoder,
    )
    assert copy.fingerprint() != fp  # same files, different vectors


def test_zip_member_listing_has_no_metadata(small_album: Path):
    build_index(small_album)
    with zipfile.ZipFile(index_path(small_album)) as zf:
        assert all(n.endswith(".npy") for n in zf.namelist())


def test_album_moved_keeps_index(small_album: Path, tmp_path: Path, counting):
    build_index(small_album)
    moved = tmp_path / "moved"
    shutil.copytree(small_album, moved, copy_function=shutil.copy2)
    counting.clear()
    idx, rep = build_index(moved)  # relative paths + preserved mtimes: nothing re-encoded
    assert counting == [] and rep.unchanged == len(idx)


def test_read_npz_array_fast_path_matches_numpy(tmp_path: Path):
    from picksel.npzio import read_npz_array

    a = np.arange(24, dtype=np.float32).reshape(4, 6)
    f = np.asfortranarray(np.arange(6, dtype=np.int64).reshape(2, 3))
    np.savez(tmp_path / "s.npz", a=a, f=f, o=np.array([{"x": 1}], dtype=object))
    np.savez_compressed(tmp_path / "c.npz", a=a)
    assert np.array_equal(read_npz_array(tmp_path / "s.npz", "a"), a)
    assert np.array_equal(read_npz_array(tmp_path / "s.npz", "f"), f)
    assert np.array_equal(read_npz_array(tmp_path / "c.npz", "a"), a)  # compressed: numpy path
    with pytest.raises(ValueError, match="pickled objects"):
        read_npz_array(tmp_path / "s.npz", "o")
    with pytest.raises(KeyError):
        read_npz_array(tmp_path / "s.npz", "missing")


def test_indexed_file_that_breaks_leaves_the_index(small_album: Path):
    first, _ = build_index(small_album)
    target = small_album / "digits" / "04.png"
    target.write_bytes(target.read_bytes()[:40])
    bump_mtime(target)
    idx, rep = build_index(small_album)
    assert "digits/04.png" not in idx.paths and len(idx) == len(first) - 1
    assert (rep.added, rep.updated, rep.removed) == (0, 0, 1)
    assert dict(rep.failures)["digits/04.png"] in ("truncated file", "not an image")


def test_index_with_another_width_is_reencoded(small_album: Path, counting):
    first, _ = build_index(small_album)
    old = load_index(small_album)
    old.embeddings = np.ascontiguousarray(old.embeddings[:, :-4])  # as written by an older build
    save_index(old)
    counting.clear()
    idx, rep = build_index(small_album)
    assert len(counting) == len(first) + 1 and idx.embeddings.shape == first.embeddings.shape
