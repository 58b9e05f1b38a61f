"""picksel.export: reference naming, sidecars, never overwriting, clear errors."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

import pytest
from export_helpers import listing, make_album, stem
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import picksel.export as export_mod
from picksel.errors import Cancelled
from picksel.export import ExportReport, export_images, place_no_replace, plan_export

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def test_small_album_export_with_collision_and_captions(small_album: Path, tmp_path: Path):
    rels = ["photos/01.png", "digits/01.png", "digits/00.png", "photos/00_astronaut.jpg"]
    dest = tmp_path / "out" / "nested"
    report = export_images(small_album, rels, dest)
    assert report.errors == [] and report.skipped == []
    assert report.copied == [
        ("photos/01.png", "01.png"),
        ("digits/01.png", "digits_01.png"),
        ("digits/00.png", "00.png"),
        ("photos/00_astronaut.jpg", "00_astronaut.jpg"),
    ]
    assert report.sidecars == [("digits/01.txt", "digits_01.txt"), ("digits/00.txt", "00.txt")]
    files = listing(dest)
    assert sorted(files) == ["00.png", "00.txt", "00_astronaut.jpg", "01.png", "digits_01.png", "digits_01.txt"]
    assert files["digits_01.png"] == (small_album / "digits/01.png").read_bytes()
    assert files["digits_01.txt"] == (small_album / "digits/01.txt").read_bytes()
    src_m = os.stat(small_album / "photos/01.png").st_mtime_ns
    assert os.stat(dest / "01.png").st_mtime_ns == src_m  # copy2 semantics
    assert report.summary() == f"4 images and 2 captions copied to {dest}"

    again = export_images(small_album, rels, dest)
    assert listing(dest) == files  # nothing new, nothing duplicated
    assert again.copied == [] and again.sidecars == [] and again.errors == []
    assert again.identical_skipped == rels
    assert again.summary() == f"0 images copied to {dest}; 4 already there"


def test_reference_naming_order_against_existing_different_files(tmp_path: Path):
    album = make_album(tmp_path / "alb", {"sub/a.png": b"new", "sub/a.txt": b"cap"})
    dest = make_album(tmp_path / "dest", {"a.png": b"other", "sub_a.png": b"other2"})
    report = export_images(album, ["sub/a.png"], dest, others="merge")
    assert report.copied == [("sub/a.png", "sub_a_1.png")]
    assert report.sidecars == [("sub/a.txt", "sub_a_1.txt")]
    files = listing(dest)
    assert files["a.png"] == b"other" and files["sub_a.png"] == b"other2"
    assert files["sub_a_1.png"] == b"new" and files["sub_a_1.txt"] == b"cap"


def test_top_level_image_uses_album_folder_name(tmp_path: Path):
    album = make_album(tmp_path / "myalbum", {"x.png": b"1", "d/x.png": b"2", "e/x.png": b"3"})
    dest = make_album(tmp_path / "dest", {"x.png": b"unrelated"})
    report = export_images(album, ["x.png", "d/x.png", "e/x.png"], dest, others="merge")
    assert [n for _, n in report.copied] == ["myalbum_x.png", "d_x.png", "e_x.png"]


def test_foreign_caption_in_dest_moves_the_image_on(tmp_path: Path):
    album = make_album(tmp_path / "alb", {"p/a.png": b"img", "p/a.txt": b"mine"})
    dest = make_album(tmp_path / "dest", {"a.txt": b"someone else's caption"})
    report = export_images(album, ["p/a.png"], dest)
    assert report.copied == [("p/a.png", "p_a.png")]
    assert listing(dest)["a.txt"] == b"someone else's caption"
    assert listing(dest)["p_a.txt"] == b"mine"


def test_edited_caption_is_kept_and_image_not_duplicated(tmp_path: Path):
    album = make_album(tmp_path / "alb", {"p/a.png": b"img", "p/a.txt": b"original"})
    dest = tmp_path / "dest"
    export_images(album, ["p/a.png"], dest)
    (dest / "a.txt").write_bytes(b"edited by the user")
    report = export_images(album, ["p/a.png"], dest)
    assert report.identical_skipped == ["p/a.png"]
    assert report.skipped == [("p/a.txt", f"a different a.txt is already in {dest}; kept it")]
    assert listing(dest) == {"a.png": b"img", "a.txt": b"edited by the user"}


def test_images_sharing_a_stem_do_not_share_captions(tmp_path: Path):
    album = make_album(
        tmp_path / "alb", {"x/a.png": b"1", "y/a.jpg": b"2", "y/a.txt": b"cap y", "z/a.webp": b"3"}
    )
    report = export_images(album, ["x/a.png", "y/a.jpg", "z/a.webp"], tmp_path / "d")
    assert [n for _, n in report.copied] == ["a.png", "y_a.jpg", "a.webp"]
    assert report.sidecars == [("y/a.txt", "y_a.txt")]


def test_case_insensitive_collisions(tmp_path: Path):
    album = make_album(tmp_path / "alb", {"p/A.png": b"1", "q/a.png": b"2"})
    report = export_images(album, ["p/A.png", "q/a.png"], tmp_path / "d")
    assert [n for _, n in report.copied] == ["A.png", "q_a.png"]


def test_refusals_are_reported_and_the_rest_continue(tmp_path: Path):
    album = make_album(tmp_path / "alb", {"ok.png": b"ok", "real/b.png": b"b", "c.png": b"c"})
    outside = make_album(tmp_path / "outside", {"secret.png": b"s"})
    os.symlink(outside / "secret.png", album / "link.png")
    os.symlink(album / "real", album / "linkdir")
    os.symlink(outside / "secret.png", album / "c.txt")  # symlinked sidecar
    (album / "folder.png").mkdir()
    rels = ["link.png", "linkdir/b.png", "../outside/secret.png", "/etc/passwd", "gone.png",
            "folder.png", "ok.png", "c.png"]
    report = export_images(album, rels, tmp_path / "d")
    assert dict(report.skipped) == {
        "link.png": "symlink leaves the album",
        "../outside/secret.png": "outside the album",
        "/etc/passwd": "outside the album",
        "gone.png": "missing",
        "folder.png": "not a regular file",
        "c.txt": "symlink leaves the album",
    }
    # a link that stays inside the album is what the scanner indexes: its content is copied
    assert report.copied == [("linkdir/b.png", "b.png"), ("ok.png", "ok.png"), ("c.png", "c.png")]
    assert sorted(listing(tmp_path / "d")) == ["b.png", "c.png", "ok.png"]
    assert "6 skipped" in report.summary()


def test_dest_is_a_regular_file(tmp_path: Path):
    album = make_album(tmp_path / "alb", {"a.png": b"a"})
    dest = tmp_path / "file"
    dest.write_bytes(b"x")
    report = export_images(album, ["a.png"], dest)
    assert report.errors == [(str(dest), "exists and is not a folder")]
    assert report.copied == [] and dest.read_bytes() == b"x"
    assert report.summary().endswith("; 1 error")


def test_dest_inside_the_album_is_refused(tmp_path: Path):
    album = make_album(tmp_path / "alb", {"a.png": b"a", "sub/b.png": b"b"})
    for dest in (album / "lora", album / "sub" / "out", album):
        report = export_images(album, ["a.png", "sub/b.png"], dest)
        assert report.copied == [] and len(report.errors) == 1
        assert "inside the album" in report.errors[0][1]
    assert not (album / "lora").exists() and not (album / "sub" / "out").exists()


def test_dest_under_a_regular_file(tmp_path: Path):
    album = make_album(tmp_path / "alb", {"a.png": b"a"})
    (tmp_path / "file").write_bytes(b"x")
    report = export_images(album, ["a.png"], tmp_path / "file" / "sub")
    assert len(report.errors) == 1 and "cannot write there" in report.errors[0][1]


@pytest.mark.skipif(IS_ROOT, reason="root ignores file permissions")
def test_unwritable_dest_chmod(tmp_path: Path):
    album = make_album(tmp_path / "alb", {"a.png": b"a"})
    dest = tmp_path / "ro"
    dest.mkdir()
    dest.chmod(0o500)
    try:
        report = export_images(album, ["a.png"], dest)
    finally:
        dest.chmod(0o700)
    assert report.errors == [(str(dest), "cannot write there: permission denied")]


def test_unwritable_dest_simulated(tmp_path: Path, monkeypatch):
    album = make_album(tmp_path / "alb", {"a.png": b"a"})

    def denied(*a, **k):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(export_mod.tempfile, "mkstemp", denied)
    report = export_images(album, ["a.png"], tmp_path / "d")
    assert report.errors == [(str(tmp_path / "d"), "cannot write there: permission denied")]


@pytest.mark.skipif(IS_ROOT, reason="root ignores file permissions")
def test_unreadable_source_chmod(tmp_path: Path):
    album = make_album(tmp_path / "alb", {"a.png": b"a", "b.png": b"b"})
    (album / "a.png").chmod(0)
    report = export_images(album, ["a.png", "b.png"], tmp_path / "d")
    assert report.errors == [("a.png", "permission denied")]
    assert report.copied == [("b.png", "b.png")]
    assert sorted(listing(tmp_path / "d")) == ["b.png"]


def test_unreadable_source_simulated(tmp_path: Path, monkeypatch):
    album = make_album(tmp_path / "alb", {"a.png": b"a", "b.png": b"b"})
    real_open = open

    def fake_open(path, mode="r", *a, **k):
        if str(path).endswith("a.png") and "r" in mode and Path(path).parent == album:
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_open(path, mode, *a, **k)

    monkeypatch.setattr("builtins.open", fake_open)
    report = export_images(album, ["a.png", "b.png"], tmp_path / "d")
    assert report.errors == [("a.png", "permission denied")]
    assert sorted(listing(tmp_path / "d")) == ["b.png"]  # no temp file left behind


def test_disk_full_stops_with_a_clear_error(tmp_path: Path, monkeypatch):
    album = make_album(tmp_path / "alb", {f"{i}.png": b"x" * 10 for i in range(4)})
    calls = {"n": 0}
    real_fsync = os.fsync

    def fsync(fd):
        calls["n"] += 1
        if calls["n"] >= 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(export_mod.os, "fsync", fsync)
    report = export_images(album, [f"{i}.png" for i in range(4)], tmp_path / "d")
    assert report.copied == [("0.png", "0.png")]
    assert report.errors[0] == ("1.png", "no space left on device")
    assert "export stopped (2 images not tried)" in report.errors[1][1]
    assert sorted(listing(tmp_path / "d")) == ["0.png"]


def test_cancel_between_files_keeps_placed_files(tmp_path: Path):
    album = make_album(tmp_path / "alb", {f"{i}.png": bytes([i]) for i in range(5)})
    dest = tmp_path / "d"
    with pytest.raises(Cancelled):
        export_images(album, [f"{i}.png" for i in range(5)], dest,
                      cancel=lambda: (dest / "1.png").exists())
    assert listing(dest) == {"0.png": b"\x00", "1.png": b"\x01"}


def test_cancel_inside_a_copy_removes_the_temp_file(tmp_path: Path):
    album = make_album(tmp_path / "alb", {"big.png": os.urandom(3 * (1 << 20)), "a.png": b"a"})
    checks = {"n": 0}

    def cancel():
        checks["n"] += 1
        return checks["n"] > 5  # a.png done (3 checks), then big.png: top, chunk 1, chunk 2

    with pytest.raises(Cancelled):
        export_images(album, ["a.png", "big.png"], tmp_path / "d", cancel=cancel)
    assert listing(tmp_path / "d") == {"a.png": b"a"}


def test_next_export_sweeps_temp_files_of_a_killed_one(tmp_path: Path, monkeypatch):
    # A kill -9 mid-copy leaves ".NAME.picksel-tmp-XXXX" behind. The next export into
    # the folder removes it once it is old, never a fresh one (another export may be
    # writing it) and never a user's file that merely looks similar.
    album = make_album(tmp_path / "alb", {"a.png": b"a"})
    dest = tmp_path / "d"
    dest.mkdir()
    stale = dest / ".big.png.picksel-tmp-k3j2h1"
    fresh = dest / ".other.png.picksel-tmp-zz9"
    mine = dest / "notes.picksel-tmp-keep.txt"
    for p in (stale, fresh, mine):
        p.write_bytes(b"partial")
    assert export_mod.sweep_leftovers(dest) == 0  # all just written
    old = stale.stat().st_ctime + export_mod.LEFTOVER_AGE + 1
    assert export_mod.sweep_leftovers(dest, now=old) == 2 and not stale.exists() and not fresh.exists()
    assert mine.exists()
    stale.write_bytes(b"partial")
    report = export_images(album, ["a.png"], dest)
    assert stale.exists() and report.leftovers_removed == 0  # fresh: left alone
    monkeypatch.setattr(export_mod, "LEFTOVER_AGE", -1.0)  # now everything counts as old
    report = export_images(album, ["a.png"], dest)
    assert not stale.exists() and report.leftovers_removed == 1
    assert "removed 1 temporary file left by an interrupted export" in report.summary()
    assert listing(dest) == {"a.png": b"a", "notes.picksel-tmp-keep.txt": b"partial"}


def test_progress_reports_every_file(tmp_path: Path):
    album = make_album(tmp_path / "alb", {"a.png": b"a", "b.png": b"b"})
    seen = []
    export_images(album, ["a.png", "b.png"], tmp_path / "d", progress=lambda d, t, m: seen.append((d, t, m)))
    assert seen == [(0, 2, "a.png"), (1, 2, "b.png"), (2, 2, "done")]


def test_no_hard_links_fallback_never_overwrites(tmp_path: Path, monkeypatch):
    album = make_album(tmp_path / "alb", {"p/a.png": b"new"})
    dest = make_album(tmp_path / "d", {"a.png": b"old"})

    def nolink(src, dst):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(export_mod.os, "link", nolink)
    report = export_images(album, ["p/a.png"], dest, others="merge")
    assert report.copied == [("p/a.png", "p_a.png")]
    assert listing(dest) == {"a.png": b"old", "p_a.png": b"new"}
    tmp = dest / "t"
    tmp.write_bytes(b"t")
    with pytest.raises(FileExistsError):
        place_no_replace(tmp, dest / "a.png")
    assert (dest / "a.png").read_bytes() == b"old"


def test_place_no_replace_refuses_existing(tmp_path: Path):
    (tmp_path / "final").write_bytes(b"keep")
    (tmp_path / "tmp").write_bytes(b"new")
    with pytest.raises(FileExistsError):
        place_no_replace(tmp_path / "tmp", tmp_path / "final")
    assert (tmp_path / "final").read_bytes() == b"keep"
    place_no_replace(tmp_path / "tmp", tmp_path / "other")
    assert not (tmp_path / "tmp").exists() and (tmp_path / "other").read_bytes() == b"new"


def test_race_a_different_file_appears_meanwhile(tmp_path: Path, monkeypatch):
    album = make_album(tmp_path / "alb", {"a.png": b"mine"})
    dest = tmp_path / "d"
    real_place = export_mod.place_no_replace

    def racing(tmp, final):
        Path(final).write_bytes(b"theirs")
        return real_place(tmp, final)

    monkeypatch.setattr(export_mod, "place_no_replace", racing)
    report = export_images(album, ["a.png"], dest)
    assert report.errors == [("a.png", f"a.png appeared in {dest} during the export; not overwritten")]
    assert listing(dest) == {"a.png": b"theirs"}


def test_plan_matches_export(small_album: Path, tmp_path: Path):
    rels = ["photos/01.png", "digits/01.png", "digits/02.png", "missing.png", "digits/01.png"]
    dest = tmp_path / "d"
    plan = plan_export(small_album, rels, dest)
    assert not dest.exists()  # planning writes nothing
    assert [(i.rel, i.dest_name, i.problem) for i in plan] == [
        ("photos/01.png", "01.png", None),
        ("digits/01.png", "digits_01.png", None),
        ("digits/02.png", "02.png", None),
        ("missing.png", "", "missing"),
    ]
    assert [n for _, n in plan[1].sidecars] == ["digits_01.txt"]
    report = export_images(small_album, rels, dest)
    assert report.copied == [(i.rel, i.dest_name) for i in plan if i.problem is None]
    assert report.planned == 4
    replan = plan_export(small_album, rels, dest)
    assert [i.already_there for i in replan] == [True, True, True, False]
    assert all(i.sidecars == [] for i in replan)  # captions already there too


def test_odd_filenames(tmp_path: Path):
    raw = os.fsdecode(b"\xff\xfe.png")
    album = make_album(tmp_path / "alb", {"日本/写真.jpg": b"1", raw: b"2", "a b/#x,y.png": b"3"})
    report = export_images(album, ["日本/写真.jpg", raw, "a b/#x,y.png"], tmp_path / "d")
    assert report.errors == []
    assert sorted(listing(tmp_path / "d")) == sorted(["写真.jpg", raw, "#x,y.png"])


def test_summary_singular_and_plural():
    r = ExportReport(dest=Path("/x"), copied=[("a", "a")], sidecars=[("b", "b")],
                     identical_skipped=["c", "d"], errors=[("e", "f")])
    assert r.summary() == "1 image and 1 caption copied to /x; 2 already there; 1 error"


# ---------------------------------------------------------------------------- properties

DIRS = ["", "a", "b", "a_b", "a/b", "b/a", "x/a"]
NAMES = ["b.png", "a_b.png", "b_1.png", "a_b_1.png", "B.png", "c.jpg", "b.jpg", "x.tar.png"]
entries = st.lists(
    st.tuples(st.sampled_from(DIRS), st.sampled_from(NAMES), st.booleans(), st.booleans()),
    min_size=1, max_size=14, unique_by=lambda t: (t[0], t[1]),
)
existing = st.lists(st.tuples(st.sampled_from(NAMES + ["b.txt", "a_b.txt", "album_b.png"]), st.booleans()),
                    max_size=4, unique_by=lambda t: t[0])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(entries=entries, existing=existing)
def test_naming_properties(entries, existing):
    with tempfile.TemporaryDirectory() as tmp:
        files: dict[str, bytes] = {}
        rels = []
        for d, name, txt, caption in entries:
            rel = f"{d}/{name}" if d else name
            rels.append(rel)
            files[rel] = f"image {rel}".encode()
            s = rel[: -len(Path(name).suffix)] if Path(name).suffix else rel
            if txt:
                files[s + ".txt"] = f"txt {rel}".encode()
            if caption:
                files[s + ".caption"] = f"caption {rel}".encode()
        album = make_album(Path(tmp) / "album", files)
        dest = Path(tmp) / "dest"
        pre = {name: (f"image {name}".encode() if same else b"foreign") for name, same in existing}
        make_album(dest, pre)

        plan = plan_export(album, rels, dest)
        report = export_images(album, rels, dest, others="merge")
        assert report.errors == []
        # the only refusal possible here: an image already exported next to a caption
        # that differs from ours (the user's edit is kept, nothing duplicated)
        assert all(reason.endswith("kept it") for _, reason in report.skipped)
        names = [n for _, n in report.copied] + [i.dest_name for i in plan if i.already_there]
        assert sorted(n for _, n in report.copied) == sorted(i.dest_name for i in plan if not i.already_there)
        keys = [n.casefold() for n in names]
        assert len(set(keys)) == len(keys)  # unique, even case-insensitively
        after = listing(dest)
        for item in plan:
            assert Path(item.dest_name).suffix == Path(item.rel).suffix  # extension kept
            assert after[item.dest_name] == files[item.rel]  # right bytes under the name
            for side_src, side_name in item.sidecars:
                assert stem(side_name) == stem(item.dest_name)  # captions follow the stem
                assert after[side_name] == side_src.read_bytes()
        for name, data in pre.items():
            assert after[name] == data  # nothing pre-existing was overwritten
        assert not any(n.startswith(".") and "picksel-tmp" in n for n in after)

        again = export_images(album, rels, dest, others="merge")
        assert listing(dest) == after  # exporting twice adds nothing
        assert again.copied == [] and again.sidecars == [] and sorted(again.identical_skipped) == sorted(rels)
