from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from index_helpers import Boom, unit_rows, write_photomap
from PIL import Image

import picksel.index as index_mod
from picksel.errors import PickselError
from picksel.index import build_index, load_index
from picksel.mapping import load_map
from picksel.photomap import LEGACY_MODEL_ID, find_photomap_dir, read_photomap, resolve_photomap


def _album(tmp_path: Path, demo_images, names: list[str]) -> tuple[Path, list[Path]]:
    root = tmp_path / "album"
    files = []
    imgs = list(demo_images.values())
    for i, name in enumerate(names):
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        imgs[i % len(imgs)].resize((40, 30)).save(p)
        files.append(p)
    return root, files


NAMES = ["b/été 🌞.png", "a/日本.png", "a/plain.png", "c/z.png"]


@pytest.fixture
def no_encoding(monkeypatch):
    def fail(*a, **k):
        raise AssertionError("a PhotoMapAI import must not encode images")

    monkeypatch.setattr(index_mod, "encode_paths", fail)


def test_import_unicode_album_with_umap(tmp_path: Path, demo_images, no_encoding):
    root, files = _album(tmp_path, demo_images, NAMES)
    emb = unit_rows(len(files), 512) * 3.0  # not unit: we re-normalise defensively
    coords = np.arange(len(files) * 2, dtype=np.float32).reshape(-1, 2)
    write_photomap(root, files, emb, umap=coords)
    idx, rep = build_index(root)
    assert idx.source == "photomap" and rep.source == "photomap"
    assert idx.encoder == "open-clip:ViT-L-14/dfn2b_s39b"
    assert idx.paths == sorted(n for n in NAMES)
    assert rep.messages[0].startswith("using PhotoMapAI index ")
    assert "(4 images, model open-clip:ViT-L-14/dfn2b_s39b)" in rep.messages[0]
    np.testing.assert_allclose(np.linalg.norm(idx.embeddings, axis=1), 1.0, atol=1e-5)
    # rows follow our sorted order; vectors are PhotoMapAI's
    for i, rel in enumerate(idx.paths):
        j = NAMES.index(rel)
        np.testing.assert_allclose(idx.embeddings[i], emb[j] / np.linalg.norm(emb[j]), atol=1e-6)
    loaded = load_index(root)
    assert loaded.source == "photomap" and loaded.paths == idx.paths
    m = load_map(root / ".picksel", idx.fingerprint())
    assert m is not None and m.kind == "photomap-umap"
    for i, rel in enumerate(idx.paths):
        assert tuple(m.coords[i]) == tuple(coords[NAMES.index(rel)])
    # a second run changes nothing
    again, rep2 = build_index(root)
    assert again.fingerprint() == idx.fingerprint() and rep2.unchanged == 4


def test_metadata_is_never_unpickled(tmp_path: Path, demo_images, no_encoding):
    root, files = _album(tmp_path, demo_images, NAMES[:2])
    write_photomap(root, files, unit_rows(2, 16), metadata=Boom())
    # the trap is armed: unpickling metadata would raise
    with np.load(root / "photomap_index" / "embeddings.npz", allow_pickle=True) as npz, \
            pytest.raises(AssertionError, match="metadata was unpickled"):
        npz["metadata"]
    with np.load(root / "photomap_index" / "embeddings.npz", allow_pickle=False) as npz, \
            pytest.raises(ValueError):
        npz["metadata"]
    real_loads = pickle.loads
    pickle.loads = lambda *a, **k: (_ for _ in ()).throw(AssertionError("pickle used"))  # type: ignore[assignment]
    try:
        pm = read_photomap(root / "photomap_index")
    finally:
        pickle.loads = real_loads
    assert pm.embeddings.shape == (2, 16)
    idx, _ = build_index(root)
    assert len(idx) == 2


def test_legacy_file_without_model_id_and_dim(tmp_path: Path, demo_images, no_encoding):
    root, files = _album(tmp_path, demo_images, NAMES[:3])
    write_photomap(root, files, unit_rows(3, 512), model_id=None, with_dim=False)
    idx, rep = build_index(root)
    assert idx.encoder == LEGACY_MODEL_ID == "openai-clip:ViT-B/32"
    assert "model openai-clip:ViT-B/32" in rep.messages[0]


def test_empty_index_with_float64_filenames(tmp_path: Path, demo_images, no_encoding):
    root, files = _album(tmp_path, demo_images, NAMES[:2])
    write_photomap(root, [], np.zeros((0, 768), np.float32))
    pm = read_photomap(root / "photomap_index")
    assert pm.filenames == [] and pm.embeddings.shape == (0, 768)
    idx, rep = build_index(root)
    assert len(idx) == 0 and idx.embeddings.shape == (0, 768)
    assert any("2 images are not in the PhotoMapAI index" in m and "picksel index --full" in m for m in rep.messages)


def test_missing_outside_and_unindexed_files_reported(tmp_path: Path, demo_images, no_encoding):
    root, files = _album(tmp_path, demo_images, NAMES)
    outside = tmp_path / "elsewhere.png"
    demo_images["china"].resize((10, 10)).save(outside)
    listed = files[:3] + [outside]
    coords = np.arange(8, dtype=np.float32).reshape(4, 2)
    write_photomap(root, listed, unit_rows(4, 32), umap=coords)
    files[0].unlink()  # listed but gone
    Image.new("RGB", (9, 9)).save(root / "new.png")  # in the album, not indexed
    idx, rep = build_index(root)
    assert idx.paths == sorted([NAMES[1], NAMES[2]])
    text = "\n".join(rep.messages)
    assert "1 file listed in the PhotoMapAI index no longer exists and was left out" in text and NAMES[0] in text
    assert "1 file in the PhotoMapAI index lies outside the album and was left out" in text
    assert "2 images are not in the PhotoMapAI index; run PhotoMapAI again or `picksel index --full`" in text
    m = load_map(root / ".picksel", idx.fingerprint())
    assert m is not None
    assert [tuple(r) for r in m.coords] == [tuple(coords[listed.index(root / p)]) for p in idx.paths]


@pytest.mark.parametrize(
    "old_root", ["/mnt/nas/photos", "C:\\Users\\me\\Pictures\\album", "//server/share/album"]
)
def test_index_from_another_machine_is_relocated(tmp_path: Path, demo_images, no_encoding, old_root: str):
    # The album (and its photomap_index) was copied from elsewhere: every filename lies
    # under a root that does not exist here. Entries are matched by their paths under it.
    root, files = _album(tmp_path, demo_images, NAMES)
    sep = "\\" if "\\" in old_root else "/"
    listed = [old_root + sep + n.replace("/", sep) for n in NAMES] + [old_root + sep + "gone.png"]
    emb = unit_rows(len(listed), 16)
    write_photomap(root, listed, emb, mtimes=np.zeros(len(listed)))
    idx, rep = build_index(root)
    assert idx.paths == sorted(NAMES)
    for i, rel in enumerate(idx.paths):
        np.testing.assert_allclose(idx.embeddings[i], emb[NAMES.index(rel)], atol=1e-6)
    text = "\n".join(rep.messages)
    assert "the PhotoMapAI index was built for " in text and "5 entries matched to this album" in text
    assert "1 file listed in the PhotoMapAI index no longer exists and was left out: gone.png" in text
    assert "outside the album" not in text


def test_a_few_stray_entries_do_not_relocate_the_index(tmp_path: Path, demo_images, no_encoding):
    # One outside entry whose tail happens to name an album file is not a moved album.
    root, files = _album(tmp_path, demo_images, NAMES)
    stray = ["/somewhere/else/" + NAMES[2], "/other/place/unrelated.png"]
    write_photomap(root, files[:2] + stray, unit_rows(4, 8), mtimes=np.zeros(4))
    idx, rep = build_index(root)
    assert idx.paths == sorted(NAMES[:2])
    text = "\n".join(rep.messages)
    assert "2 files in the PhotoMapAI index lie outside the album" in text
    assert "built for" not in text


def test_stale_umap_is_ignored(tmp_path: Path, demo_images, no_encoding):
    root, files = _album(tmp_path, demo_images, NAMES[:2])
    write_photomap(root, files, unit_rows(2, 8), umap=np.zeros((2, 2), np.float32), umap_stale=True)
    idx, rep = build_index(root)
    assert any("stale" in m for m in rep.messages)
    assert load_map(root / ".picksel", idx.fingerprint()) is None


def test_found_in_first_image_folder_and_explicit_paths(tmp_path: Path, demo_images, no_encoding):
    root, files = _album(tmp_path, demo_images, ["photos/x.png", "photos/y.png"])
    pm = write_photomap(root / "photos", files, unit_rows(2, 8))
    assert find_photomap_dir(root) == pm
    emb = pm / "embeddings.npz"
    assert resolve_photomap(emb) == emb
    assert resolve_photomap(pm) == emb and resolve_photomap(root / "photos") == emb
    with pytest.raises(PickselError, match="no PhotoMapAI index"):
        resolve_photomap(tmp_path)
    other = tmp_path / "elsewhere"
    pm2 = write_photomap(other, files[:1], unit_rows(1, 8), model_id="open-clip:ViT-B-32/x")
    idx, _ = build_index(root, from_photomap=pm2)
    assert idx.paths == ["photos/x.png"] and idx.encoder == "open-clip:ViT-B-32/x"


def test_full_switches_to_builtin_and_stays(tmp_path: Path, demo_images):
    root, files = _album(tmp_path, demo_images, NAMES[:3])
    write_photomap(root, files, unit_rows(3, 8))
    build_index(root)
    idx, _ = build_index(root, full=True)
    assert idx.source == "picksel" and idx.encoder == "builtin:v1"
    idx2, rep = build_index(root)
    assert idx2.source == "picksel"
    assert any("not used" in m and "--from-photomap" in m for m in rep.messages)
    idx3, _ = build_index(root, from_photomap=root)
    assert idx3.source == "photomap"


@pytest.mark.parametrize(
    "arrays",
    [
        {"filenames": np.array(["/x.png"])},
        {"embeddings": np.zeros((2, 4), np.float32), "filenames": np.array(["/a.png"])},
        {"embeddings": np.zeros((1, 4), np.float32), "filenames": np.array([1.0, 2.0])},
    ],
)
def test_unusable_photomap_files(tmp_path: Path, arrays):
    pm = tmp_path / "photomap_index"
    pm.mkdir()
    np.savez(pm / "embeddings.npz", **arrays)
    with pytest.raises(PickselError, match="is not usable"):
        read_photomap(pm)
    (pm / "embeddings.npz").write_bytes(b"nope")
    with pytest.raises(PickselError, match="is not usable"):
        read_photomap(pm)
