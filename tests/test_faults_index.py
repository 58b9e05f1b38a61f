"""Fault injection for the index files: symlinked and shared state folders, encoder
switches, killed saves, PhotoMapAI imports from elsewhere, hostile and damaged npz files.

Every test here runs real processes (``python -m picksel``) or reads real files written
to disk; future changes must keep them passing."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from index_helpers import unit_rows, write_photomap

from picksel.errors import IndexCorrupt, IndexMissing, PickselError
from picksel.index import build_index, index_path, load_index, save_index
from picksel.photomap import read_photomap

CLIP = "clip:ViT-B-32/laion2b_s34b_b79k"


def run(*argv: object, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "picksel", *map(str, argv)],
        capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
    )


def one_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "pickle.load" not in proc.stderr
    return lines[0]


def as_clip(album: Path, dim: int = 16, seed: int = 7, state_dir: Path | None = None) -> np.ndarray:
    """Turn the album's builtin index into one that looks made by CLIP (as hours of GPU
    time would have): same files, same stat, other vectors and encoder id."""
    idx = load_index(album, state_dir)
    idx.embeddings = unit_rows(len(idx), dim, seed)
    idx.encoder = CLIP
    idx._fp = None
    save_index(idx, state_dir)
    return idx.embeddings.copy()


# --------------------------------------------------------------------------- point 4


def test_symlinked_state_folder_is_refused_and_its_target_untouched(small_album: Path, tmp_path: Path):
    other = tmp_path / "other-album"
    other.mkdir()
    foreign = other / "index.npz"
    np.savez(foreign, embeddings=unit_rows(3, 8), note=np.array("someone else's"))
    before = foreign.read_bytes()
    (small_album / ".picksel").symlink_to(other, target_is_directory=True)
    for argv in (("index", small_album), ("select", small_album, "--count", "2")):
        proc = run(*argv)
        assert proc.returncode == 1
        assert ".picksel is a symbolic link" in one_line(proc)
    assert foreign.read_bytes() == before
    assert sorted(p.name for p in other.iterdir()) == ["index.npz"]


async def test_tui_shows_the_symlink_refusal_instead_of_crashing(small_album: Path, tmp_path: Path):
    from textual.widgets import Static
    from tui_app_helpers import settle

    from picksel.tui.app import PickselApp

    (tmp_path / "elsewhere").mkdir()
    (small_album / ".picksel").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    app = PickselApp(small_album, graphics="text", seed=1, compute_umap=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        banner = str(app.query_one("#banner", Static).render())
        assert "symbolic link" in banner
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_state_dir_holding_another_albums_index_is_moved_aside(small_album: Path, tmp_path: Path, demo_images):
    other = tmp_path / "other"
    other.mkdir()
    for i, img in enumerate(list(demo_images.values())[:3]):
        img.resize((64, 48)).save(other / f"o{i}.png")
    shared = tmp_path / "shared"
    build_index(other, state_dir=shared)
    before = (shared / "index.npz").read_bytes()

    proc = run("index", small_album, "--state-dir", shared)
    assert proc.returncode == 0, proc.stderr
    assert "another album" in proc.stderr and "moved to index.npz.foreign-" in proc.stderr
    aside = list(shared.glob("index.npz.foreign-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == before
    assert load_index(small_album, shared).paths[0].startswith(("digits/", "photos/"))
    # The other album, pointed at the same folder without re-indexing, is told, not fed ours.
    with pytest.raises(IndexMissing, match="another album"):
        load_index(other, shared)


def test_state_dir_with_a_file_that_is_not_an_index_is_kept(small_album: Path, tmp_path: Path):
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "index.npz").write_bytes(b"my own notes, not a zip")
    proc = run("index", small_album, "--state-dir", shared)
    assert proc.returncode == 0, proc.stderr
    (aside,) = shared.glob("index.npz.foreign-*")
    assert aside.read_bytes() == b"my own notes, not a zip"


def test_renamed_album_keeps_its_index_in_a_state_dir(small_album: Path, tmp_path: Path, monkeypatch):
    shared = tmp_path / "shared"
    first, _ = build_index(small_album, state_dir=shared)
    moved = small_album.rename(tmp_path / "renamed-album")
    import picksel.index as index_mod

    calls: list[int] = []
    real = index_mod.encode_paths
    monkeypatch.setattr(index_mod, "encode_paths", lambda enc, paths, cancel=None, **kw: calls.append(len(paths)) or real(enc, paths, cancel, **kw))
    again, report = build_index(moved, state_dir=shared)
    assert calls == [] and report.unchanged == len(first)
    assert np.array_equal(again.embeddings, first.embeddings)
    assert not list(shared.glob("*.foreign-*"))
    assert len(load_index(moved, shared)) == len(first)


# --------------------------------------------------------------------------- point 5


def test_plain_reindex_keeps_clip_vectors_and_switching_back_is_instant(small_album: Path):
    build_index(small_album)
    clip = as_clip(small_album)
    proc = run("index", small_album)  # no torch here: it must not need to encode anything
    assert proc.returncode == 0, proc.stderr
    idx = load_index(small_album)
    assert idx.encoder == CLIP and np.array_equal(idx.embeddings, clip)

    proc = run("index", small_album, "--encoder", "builtin")
    assert proc.returncode == 0, proc.stderr
    assert "kept in index-clip" in proc.stderr
    builtin = load_index(small_album)
    assert builtin.encoder == "builtin:v1"

    proc = run("index", small_album, "--encoder", CLIP)  # would need torch if it encoded
    assert proc.returncode == 0, proc.stderr
    idx = load_index(small_album)
    assert idx.encoder == CLIP and np.array_equal(idx.embeddings, clip)
    assert "0 new, 0 changed, 0 removed" in proc.stdout

    proc = run("index", small_album, "--encoder", "builtin")  # and back again: no decoding
    assert proc.returncode == 0, proc.stderr
    assert np.array_equal(load_index(small_album).embeddings, builtin.embeddings)
    names = sorted(p.name for p in (small_album / ".picksel").glob("index*.npz"))
    assert names[0] == "index-clip_ViT-B-32_laion2b_s34b_b79k-" + names[0].split("-")[-1]
    assert names[1] == "index.npz" and len(names) == 2


def test_full_reindex_keeps_the_current_encoder(small_album: Path):
    build_index(small_album)
    as_clip(small_album)
    with pytest.raises(PickselError, match="clip"):  # it tries CLIP (not installed), not builtin
        build_index(small_album, full=True)
    assert load_index(small_album).encoder == CLIP


# --------------------------------------------------------------------------- point 13

_WRITER = """
import sys, time
from pathlib import Path
from picksel.fsutil import atomic_write
with atomic_write(Path(sys.argv[1]), "wb") as fh:
    fh.write(b"x" * 100000)
    fh.flush()
    print("writing", flush=True)
    time.sleep(600)
"""


def _start_writer(target: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(target)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "writing"
    return proc


def test_temp_of_a_killed_save_is_swept_but_a_live_writers_is_not(small_album: Path):
    build_index(small_album)
    sdir = small_album / ".picksel"
    dead = _start_writer(sdir / "index.npz")
    dead.send_signal(signal.SIGKILL)
    dead.wait(timeout=30)
    (left,) = sdir.glob(".index.npz.*.tmp")
    live = _start_writer(sdir / "index-clip_x-12345678.npz")
    try:
        (busy,) = sdir.glob(".index-clip_x-12345678.npz.*.tmp")
        mine = sdir / ".state.json.abcdefgh.tmp"  # not an index temp: not ours to take
        mine.write_bytes(b"{}")
        proc = run("index", small_album)
        assert proc.returncode == 0, proc.stderr
        assert not left.exists()
        assert busy.exists() and mine.exists()
        assert len(load_index(small_album)) > 0
    finally:
        live.kill()
        live.wait(timeout=30)
    load_index(small_album)  # a plain load sweeps too
    assert not busy.exists()


# --------------------------------------------------------------------------- point 16


def _flat_album(tmp_path: Path, demo_images, n: int = 4) -> tuple[Path, list[Path]]:
    root = tmp_path / "flat"
    root.mkdir()
    files = []
    for i, img in enumerate(list(demo_images.values())[:n]):
        files.append(root / f"img{i}.png")
        img.resize((64, 48)).save(files[-1])
    return root, files


def test_flat_album_indexed_on_another_machine_is_imported(tmp_path: Path, demo_images):
    root, files = _flat_album(tmp_path, demo_images)
    foreign = [Path("/home/someone/Pictures/lora-set") / f.name for f in files]
    pm = write_photomap(tmp_path / "copy", foreign, unit_rows(len(files), 8), mtimes=np.zeros(len(files)))
    proc = run("index", root, "--from-photomap", pm)
    assert proc.returncode == 0, proc.stderr
    idx = load_index(root)
    assert idx.paths == sorted(f.name for f in files) and idx.source == "photomap"


def test_importing_none_of_the_photomap_paths_is_an_error(tmp_path: Path, demo_images):
    root, files = _flat_album(tmp_path, demo_images)
    names = [Path("/x/y") / f"other{i}.png" for i in range(3)]
    pm = write_photomap(tmp_path / "copy", names, unit_rows(3, 8), mtimes=np.zeros(3))
    proc = run("index", root, "--from-photomap", pm)
    assert proc.returncode == 1
    assert "none of the 3 paths" in one_line(proc)
    assert not index_path(root).exists()


def test_from_photomap_reads_the_file_it_was_given(tmp_path: Path, demo_images):
    root, files = _flat_album(tmp_path, demo_images, 3)
    pm = write_photomap(root, files, unit_rows(3, 8, seed=1), umap=np.ones((3, 2)))
    chosen = unit_rows(3, 8, seed=2)
    write_photomap(tmp_path / "tmp", files, chosen, model_id="open-clip:chosen")
    other = pm / "older.npz"
    (tmp_path / "tmp" / "photomap_index" / "embeddings.npz").rename(other)
    proc = run("index", root, "--from-photomap", other)
    assert proc.returncode == 0, proc.stderr
    idx = load_index(root)
    assert idx.encoder == "open-clip:chosen" and np.allclose(idx.embeddings, chosen)
    assert "umap.npz belongs to" in proc.stderr  # the sibling map is embeddings.npz's


# --------------------------------------------------------------------------- points 17, 18


def _npy(shape: tuple[int, ...], dtype: str, data: bytes) -> bytes:
    """A .npy member whose header says ``shape`` whatever ``data`` holds."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buf.getvalue() + data


def _rezip(path: Path, members: dict[str, bytes], compress: int = zipfile.ZIP_STORED) -> None:
    """Rewrite an npz with some members replaced by raw .npy bytes."""
    with zipfile.ZipFile(path) as zf:
        old = {n: zf.read(n) for n in zf.namelist()}
    old.update({k + ".npy": v for k, v in members.items()})
    with zipfile.ZipFile(path, "w", compression=compress) as zf:
        for name, data in old.items():
            zf.writestr(name, data)


HOSTILE_PM = {
    "dim_word": lambda d: {"embedding_dim": np.array("eight")},
    "dim_nan": lambda d: {"embedding_dim": np.array(np.nan)},
    "dim_huge_empty": lambda d: "empty-1e300",
    "rows_1e10": lambda d: {"embeddings": _npy((10**10, 8), "<f4", b"\0" * 64)},
    "rows_1e10_deflated": lambda d: ("deflate", {"embeddings": _npy((10**10, 8), "<f4", b"\0" * 64)}),
    "names_1e10": lambda d: {"filenames": _npy((10**10,), "<U40", b"\0" * 160)},
    "negative_shape": lambda d: {"embeddings": _npy((-4, 8), "<f4", b"")},
    "object_names": lambda d: {"filenames": np.array([{"a": 1}], dtype=object)},
    "flipped_byte": lambda d: "flip",
    "not_a_zip": lambda d: "garbage",
}


def _hostile_photomap(tmp_path: Path, demo_images, case: str) -> tuple[Path, Path]:
    root, files = _flat_album(tmp_path, demo_images, 3)
    pm = write_photomap(root, files, unit_rows(3, 8))
    path = pm / "embeddings.npz"
    what = HOSTILE_PM[case](None)
    if what == "empty-1e300":
        np.savez(path, embeddings=np.zeros((0, 8), np.float32), filenames=np.array([], np.float64),
                 embedding_dim=np.array(1e300))
    elif what == "flip":
        data = bytearray(path.read_bytes())
        at = data.index(np.float32(unit_rows(3, 8)[1, 3]).tobytes())
        data[at] ^= 0x40
        path.write_bytes(bytes(data))
    elif what == "garbage":
        path.write_bytes(b"\x80\x04garbage that np.load would take for a pickle")
    elif isinstance(what, tuple):
        members = {k: v for k, v in what[1].items()}
        _rezip(path, members, zipfile.ZIP_DEFLATED)
    else:
        raw = {}
        for key, value in what.items():
            if isinstance(value, bytes):
                raw[key] = value
            else:
                buf = io.BytesIO()
                np.lib.format.write_array(buf, value, allow_pickle=True)
                raw[key] = buf.getvalue()
        _rezip(path, raw)
    return root, path


@pytest.mark.parametrize("case", sorted(HOSTILE_PM))
def test_hostile_photomap_files_give_one_line(tmp_path: Path, demo_images, case: str):
    root, path = _hostile_photomap(tmp_path, demo_images, case)
    with pytest.raises(PickselError) as exc:
        read_photomap(path.parent)
    msg = str(exc.value)
    assert "\n" not in msg and "pickle.load" not in msg and str(path) in msg


@pytest.mark.parametrize("case", ["rows_1e10", "dim_word", "flipped_byte", "not_a_zip"])
def test_hostile_photomap_through_the_cli(tmp_path: Path, demo_images, case: str):
    root, path = _hostile_photomap(tmp_path, demo_images, case)
    proc = run("index", root, "--from-photomap", path)
    assert proc.returncode == 1
    assert "is not usable" in one_line(proc)


def _index_file(album: Path) -> Path:
    build_index(album)
    return index_path(album)


HOSTILE_INDEX = {
    "rows_1e10": ({"embeddings": _npy((10**10, 4), "<f4", b"\0" * 64)}, "header claims"),
    "paths_1e10": ({"paths": _npy((10**10,), "<U30", b"\0" * 120)}, "header claims"),
    "version_word": ({"version": np.array("one")}, "bad version"),
    "encoder_number": ({"encoder": np.array(3.5)}, "encoder is not a string"),
    "object_paths": ({"paths": np.array([{"x": 1}], dtype=object)}, "pickled objects"),
    "bad_header": ({"mtimes": b"\x93NUMPY\x01\x00\x10\x00{'descr': 1}   \n"}, "bad .npy header"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_INDEX))
def test_hostile_index_fields_give_one_line(small_album: Path, case: str):
    path = _index_file(small_album)
    members, needle = HOSTILE_INDEX[case]
    raw = {}
    for key, value in members.items():
        if isinstance(value, bytes):
            raw[key] = value
        else:
            buf = io.BytesIO()
            np.lib.format.write_array(buf, value, allow_pickle=True)
            raw[key] = buf.getvalue()
    _rezip(path, raw)
    with pytest.raises(IndexCorrupt, match=needle) as exc:
        load_index(small_album)
    assert "\n" not in str(exc.value) and "pickle.load" not in str(exc.value)


def test_flipped_byte_in_our_vectors_is_caught(small_album: Path):
    path = _index_file(small_album)
    emb = load_index(small_album).embeddings
    data = bytearray(path.read_bytes())
    at = data.index(emb[3, 5:9].tobytes())
    data[at + 1] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(IndexCorrupt, match="checksum"):
        load_index(small_album)
    proc = run("select", small_album, "--count", "2")
    assert proc.returncode == 1
    line = one_line(proc)
    assert "corrupt" in line and "--full" in line


def test_garbage_index_message_does_not_suggest_pickle(small_album: Path):
    path = _index_file(small_album)
    path.write_bytes(b"\x80\x04\x95garbage")
    proc = run("select", small_album, "--count", "2")
    assert proc.returncode == 1
    assert "not an npz" in one_line(proc)


def test_compressed_index_still_loads_and_is_checked(small_album: Path):
    path = _index_file(small_album)
    first = load_index(small_album)
    _rezip(path, {}, zipfile.ZIP_DEFLATED)
    assert np.array_equal(load_index(small_album).embeddings, first.embeddings)


def test_many_random_byte_flips_never_pass_silently_or_crash(small_album: Path):
    """A flipped byte anywhere is caught (corrupt) or harmless to the data (zip
    bookkeeping numpy does not read); never a traceback of another kind."""
    path = _index_file(small_album)
    good = path.read_bytes()
    ref = load_index(small_album)
    rng = np.random.default_rng(0)
    started = time.monotonic()
    for at in rng.integers(0, len(good), size=150):
        data = bytearray(good)
        data[int(at)] ^= 1 << int(rng.integers(0, 8))
        path.write_bytes(bytes(data))
        try:
            idx = load_index(small_album)
        except IndexCorrupt as exc:
            assert "\n" not in str(exc)
            continue
        assert idx.paths == ref.paths and np.array_equal(idx.embeddings, ref.embeddings)
        assert np.array_equal(idx.mtimes, ref.mtimes) and idx.encoder == ref.encoder
    assert time.monotonic() - started < 120
    os.utime(path)


# --------------------------------------------------------------------------- vectors read later


def _flip_vector_byte(album: Path) -> None:
    path = index_path(album)
    emb = load_index(album).embeddings
    data = bytearray(path.read_bytes())
    at = data.index(emb[3, 5:9].tobytes())
    data[at + 1] ^= 0x01
    path.write_bytes(bytes(data))


def test_vectors_read_later_are_still_checked(small_album: Path):
    """``verify=False`` (the curator at open) leaves the vectors unread; reading them
    later still refuses a damaged file, every time it is asked."""
    build_index(small_album)
    _flip_vector_byte(small_album)
    index = load_index(small_album, verify=False)
    assert not index.verified and index.dim > 0 and len(index) > 0
    for _ in range(2):
        with pytest.raises(IndexCorrupt, match="checksum") as exc:
            index.verify()
        assert "--full" in str(exc.value) and "\n" not in str(exc.value)
    with pytest.raises(IndexCorrupt, match="checksum"):
        _ = index.embeddings
    assert not index.verified


def test_vectors_read_later_are_checked_for_nan(small_album: Path):
    index, _report = build_index(small_album)
    emb = np.array(index.embeddings)
    emb[2, 7] = np.nan
    index.embeddings = emb
    save_index(index)
    with pytest.raises(IndexCorrupt, match="NaN"):
        load_index(small_album)
    lazy = load_index(small_album, verify=False)
    with pytest.raises(IndexCorrupt, match="NaN"):
        lazy.verify()


def test_vectors_read_later_come_from_the_file_that_was_opened(small_album: Path):
    """A re-index replaces index.npz (atomic rename) while the curator still has to read
    its vectors: it reads the file it opened, whose rows match its paths."""
    build_index(small_album)
    before = np.array(load_index(small_album).embeddings)
    old = load_index(small_album, verify=False)
    index = load_index(small_album)
    index.embeddings = np.ascontiguousarray(index.embeddings[::-1])
    save_index(index)
    old.verify()
    assert old.verified and np.array_equal(old.embeddings, before)
    assert not np.array_equal(load_index(small_album).embeddings, before)


def test_index_rewritten_in_place_before_the_read_is_caught_not_a_crash(small_album: Path):
    """``cp other.npz index.npz`` rewrites the open file in place (a memory map of it
    would die with SIGBUS): the later read sees the new bytes and refuses them."""
    path = _index_file(small_album)
    lazy = load_index(small_album, verify=False)
    good = path.read_bytes()
    path.write_bytes(b"")
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(IndexCorrupt):
        lazy.verify()


def test_saved_fingerprint_is_used_only_when_well_formed(small_album: Path):
    path = _index_file(small_album)
    index = load_index(small_album)
    fresh = type(index)(
        root=index.root, paths=list(index.paths), embeddings=np.array(index.embeddings),
        mtimes=np.array(index.mtimes), sizes=np.array(index.sizes), encoder=index.encoder,
    )
    assert index.fingerprint() == fresh.fingerprint()
    _rezip(path, {"fingerprint": _npy_array(np.array("0123456789abcdef"))})
    assert load_index(small_album).fingerprint() == "0123456789abcdef"  # picksel wrote it: trusted
    for bad in (np.array("not a fingerprint"), np.array(7), np.array(["0123456789abcdef"])):
        _rezip(path, {"fingerprint": _npy_array(bad)})
        assert load_index(small_album).fingerprint() == fresh.fingerprint()


def _npy_array(value: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, value, allow_pickle=False)
    return buf.getvalue()



@pytest.mark.parametrize("change", ["swap", "duplicate", "trailing_nul_twin"])
def test_paths_out_of_order_or_repeated_are_refused(small_album: Path, change: str):
    path = _index_file(small_album)
    paths = list(load_index(small_album).paths)
    assert len(paths) >= 3
    if change == "swap":
        paths[0], paths[1] = paths[1], paths[0]
    elif change == "duplicate":
        paths[2] = paths[1]
    else:  # "a" then "a\0": a file cannot hold this, numpy sees one name twice
        paths[1] = paths[0] + "\0"
    _rezip(path, {"paths": _npy_array(np.array(paths))})
    with pytest.raises(IndexCorrupt, match="sorted and unique"):
        load_index(small_album)
    with pytest.raises(IndexCorrupt, match="sorted and unique"):
        load_index(small_album, verify=False)
