"""picksel.quality: the flags on the demo album and on altered real photos (issue 10
acceptance), thresholds that survive a hand-edited state file."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageEnhance
from quality_helpers import blurred, originals

from picksel.check import check_album
from picksel.demo import build_demo_album
from picksel.quality import COL, FLAGS, Thresholds, flags_of, measure
from picksel.scan import scan_album

BAD = {"dark", "bright", "blank", "blurry", "noisy"}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):
    album = tmp_path_factory.mktemp("qdemo") / "album"
    build_demo_album(album)
    rels = [e.rel for e in scan_album(album)]
    return album, check_album(album, rels, album / ".picksel", Thresholds())


def test_demo_garbage_is_flagged_for_what_it_is(demo) -> None:
    _, r = demo
    f = r.flags
    assert {"dark", "blank"} <= set(f["garbage/black.png"])
    assert {"bright", "blank"} <= set(f["garbage/white.png"])
    assert "bright" in f["garbage/overexposed.jpg"]
    assert "blurry" in f["garbage/blurred.jpg"]
    assert "noisy" in f["garbage/noise.png"]
    assert "small" in f["garbage/tiny.png"]


def test_demo_digits_and_photos_are_rarely_flagged_bad(demo) -> None:
    _, r = demo
    digits = [p for p in r.paths if p.startswith("digits/")]
    bad_digits = [p for p in digits if BAD & set(r.flags.get(p, []))]
    assert len(digits) == 1797 and len(bad_digits) <= 0.02 * len(digits), bad_digits[:10]
    originals_ = [p for p in r.paths if p.startswith("photos/")
                  and not re.search(r"_(crop|mirror|bright|dark)\.jpg$", p)]
    bad_photos = [p for p in originals_ if BAD & set(r.flags.get(p, []))]
    assert len(originals_) >= 15 and len(bad_photos) <= 3, bad_photos


def test_demo_variants_are_grouped_with_their_original_and_groups_never_mix(demo) -> None:
    _, r = demo
    group_of = r.group_of()
    variants = [p for p in r.paths if re.search(r"_(mirror|bright|dark)\.jpg$", p)]
    assert len(variants) >= 8
    for v in variants:
        original = re.sub(r"_(mirror|bright|dark)\.jpg$", ".jpg", v)
        assert v in group_of and group_of[v][0] == group_of[original][0], v
    for g in r.groups:
        members = [r.paths[g.keep]] + [r.paths[i] for i in g.copies]
        assert len({m.split("/")[0] for m in members}) == 1, members


def test_a_re_check_of_an_unchanged_album_measures_nothing(demo) -> None:
    album, first = demo
    again = check_album(album, list(first.paths), album / ".picksel", Thresholds())
    assert again.measured == 0 and again.flags == first.flags
    assert [(g.keep, g.copies) for g in again.groups] == [(g.keep, g.copies) for g in first.groups]


def test_a_changed_file_is_measured_again(tmp_path: Path) -> None:
    img = originals()["chelsea"]
    img.save(tmp_path / "a.png")
    first = check_album(tmp_path, ["a.png"], tmp_path / ".picksel", Thresholds())
    assert first.measured == 1 and "dark" not in first.flags.get("a.png", [])
    Image.new("RGB", (300, 300)).save(tmp_path / "a.png")
    second = check_album(tmp_path, ["a.png"], tmp_path / ".picksel", Thresholds())
    assert second.measured == 1 and "dark" in second.flags["a.png"]


def test_a_damaged_cache_is_recomputed(tmp_path: Path) -> None:
    originals()["coffee"].save(tmp_path / "a.png")
    (tmp_path / ".picksel").mkdir()
    (tmp_path / ".picksel" / "quality.npz").write_bytes(b"PK\x03\x04 not a zip")
    r = check_album(tmp_path, ["a.png"], tmp_path / ".picksel", Thresholds())
    assert r.measured == 1 and r.paths == ["a.png"]
    assert check_album(tmp_path, ["a.png"], tmp_path / ".picksel", Thresholds()).measured == 0


def _flags(images: list[Image.Image]) -> list[list[str]]:
    values = np.stack([measure(im).values for im in images])
    return flags_of(values, Thresholds())


def test_blurred_copies_are_flagged_and_sharp_originals_rarely() -> None:
    photos = list(originals().values())
    copies = [blurred(im, 4) for im in photos]
    flags = _flags(photos + copies)
    sharp_flagged = sum("blurry" in f for f in flags[: len(photos)])
    blur_flagged = sum("blurry" in f for f in flags[len(photos):])
    assert sharp_flagged <= len(photos) / 10
    assert blur_flagged >= 0.9 * len(copies), (blur_flagged, len(copies))


def test_strongly_darkened_and_brightened_copies_are_flagged() -> None:
    photos = list(originals().values())
    dark = [ImageEnhance.Brightness(im).enhance(0.2) for im in photos]
    # washed out: the whole range squeezed into the top quarter (like the demo's overexposed.jpg)
    bright = [Image.fromarray((np.asarray(im, np.float32) * 0.27 + 186).astype(np.uint8)) for im in photos]
    flags = _flags(photos + dark + bright)
    n = len(photos)
    assert all("dark" in f for f in flags[n : 2 * n])
    assert all("bright" in f for f in flags[2 * n :])
    assert sum(bool({"dark", "bright"} & set(f)) for f in flags[:n]) <= 2


def test_small_and_odd_aspect_follow_the_pixel_size_of_the_file() -> None:
    img = originals()["coffee"]
    wide = img.resize((900, 200))
    m = measure(img.resize((100, 75)), original_size=(4000, 3000))  # decoded smaller
    assert m.values[COL["width"]] == 4000
    assert "small" not in _flags([m_img := img.resize((300, 300))])[0] and m_img
    assert "odd-aspect" in _flags([wide])[0] and "small" in _flags([wide])[0]
    assert "small" not in flags_of(np.stack([measure(wide).values]), Thresholds(min_side=150))[0]


def test_thresholds_from_a_hand_edited_state_keep_what_is_valid() -> None:
    problems: list[str] = []
    t = Thresholds.from_dict({"min_side": 512, "noise": "high", "blur_abs": -1, "x": 3,
                              "max_aspect": float("nan"), "dark_p95": True}, problems)
    assert t.min_side == 512 and t.noise == Thresholds().noise and t.blur_abs == Thresholds().blur_abs
    assert t.max_aspect == Thresholds().max_aspect and t.dark_p95 == Thresholds().dark_p95
    assert len(problems) == 4
    assert Thresholds.from_dict("nonsense", problems) == Thresholds()
    assert set(FLAGS) >= BAD


def test_index_measures_so_check_decodes_nothing_and_agrees_with_a_cold_check(
    demo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    import picksel.check as check_mod
    from picksel.index import build_index

    album, cold = demo
    copy = tmp_path / "album"
    shutil.copytree(album, copy, ignore=shutil.ignore_patterns(".picksel"))
    index, _ = build_index(copy)
    decoded: list[str] = []
    real = check_mod.measure_file
    monkeypatch.setattr(check_mod, "measure_file", lambda p: decoded.append(str(p)) or real(p))
    monkeypatch.setattr(check_mod, "fill_hashes", lambda rows, *a, **k: decoded.extend(map(str, rows)) or 0)
    after = check_album(copy, index.paths, copy / ".picksel", Thresholds())
    assert after.measured == 0 and decoded == []
    assert after.paths == cold.paths and after.flags == cold.flags
    assert [(g.keep, g.copies, g.kind) for g in after.groups] == [
        (g.keep, g.copies, g.kind) for g in cold.groups
    ]
