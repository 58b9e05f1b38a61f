"""picksel.demo: deterministic demo album from packaged images; refuses foreign folders."""

from __future__ import annotations

import hashlib
import io
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from picksel import demo
from picksel.demo import FIXED_MTIME, GARBAGE_NAMES, MARKER, DemoReport, build_demo_album
from picksel.errors import PickselError


def _hashes(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DemoReport, list[tuple[int, int, str]]]:
    dest = tmp_path_factory.mktemp("demo") / "album"
    calls: list[tuple[int, int, str]] = []
    report = build_demo_album(dest, progress=lambda d, t, m: calls.append((d, t, m)))
    return dest, report, calls


def test_counts_and_layout(built: tuple[Path, DemoReport, list]) -> None:
    dest, report, _ = built
    assert report.dest == dest
    assert report.digits == 1797
    assert report.garbage == len(GARBAGE_NAMES) == 6
    assert report.photos >= 7  # sklearn's two photos + variants; more with scikit-image
    assert report.total == report.digits + report.photos + report.garbage
    assert report.captions == report.digits + report.photos  # garbage has no captions
    images = [p for p in dest.rglob("*") if p.suffix in (".png", ".jpg")]
    assert len(images) == report.total
    assert len(list(dest.rglob("*.txt"))) == report.captions
    per_digit = [len(list((dest / "digits" / str(k)).glob("*.png"))) for k in range(10)]
    assert sum(per_digit) == 1797 and min(per_digit) > 150
    assert (dest / MARKER).is_file()
    assert {p.name for p in (dest / "garbage").iterdir()} == set(GARBAGE_NAMES)


def test_captions_follow_their_images(built: tuple[Path, DemoReport, list]) -> None:
    dest, _, _ = built
    for png in (dest / "digits").rglob("*.png"):
        caption = png.with_suffix(".txt").read_text(encoding="utf-8")
        assert caption == f"a handwritten digit {png.parent.name}\n"
    for jpg in (dest / "photos").glob("*.jpg"):
        assert jpg.with_suffix(".txt").read_text(encoding="utf-8").strip()
    assert "crop" in (dest / "photos" / "china_crop.txt").read_text(encoding="utf-8")


def test_images_are_real_and_garbage_is_bad(built: tuple[Path, DemoReport, list]) -> None:
    dest, _, _ = built
    digit = Image.open(next((dest / "digits" / "3").glob("*.png")))
    assert digit.mode == "RGB" and digit.size == (64, 64)
    d = np.asarray(digit)
    assert d.min() < 60 and d.max() > 200  # dark ink on light paper
    china = np.asarray(Image.open(dest / "photos" / "china.jpg"))
    assert max(china.shape[:2]) <= demo.PHOTO_MAX_SIDE and china.std() > 30
    g = {name: np.asarray(Image.open(dest / "garbage" / name).convert("RGB"), dtype=np.float64) for name in GARBAGE_NAMES}
    assert g["black.png"].max() == 0
    assert g["white.png"].min() == 255
    assert g["overexposed.jpg"].mean() > 220
    assert g["noise.png"].std() > 60
    blurred = g["blurred.jpg"]
    assert np.abs(np.diff(blurred, axis=1)).mean() < 1.0 < np.abs(np.diff(np.asarray(Image.open(dest / "photos" / "china.jpg"), dtype=np.float64), axis=1)).mean()
    assert max(g["tiny.png"].shape[:2]) < 16


def test_fixed_mtimes_and_progress(built: tuple[Path, DemoReport, list]) -> None:
    dest, report, calls = built
    assert all(p.stat().st_mtime == FIXED_MTIME for p in dest.rglob("*") if p.is_file())
    batches = [c for c in calls if c[1] > 1]
    assert batches and batches[-1][0] == batches[-1][1] == report.total + report.captions
    assert [c[0] for c in batches] == sorted(c[0] for c in batches)


def test_build_is_byte_identical_and_rerun_reuses(built: tuple[Path, DemoReport, list], tmp_path: Path) -> None:
    dest, first, _ = built
    other = build_demo_album(tmp_path / "second")
    assert _hashes(dest) == _hashes(tmp_path / "second")
    assert (other.digits, other.photos, other.garbage, other.captions) == (
        first.digits,
        first.photos,
        first.garbage,
        first.captions,
    )
    # Re-running on a demo build adds only what is missing; a changed file is the user's.
    victim = tmp_path / "second" / "digits" / "5" / "5_0005.png"
    victim.unlink()
    edited = tmp_path / "second" / "digits" / "5" / "5_0005.txt"
    edited.write_bytes(b"my caption")
    again = build_demo_album(tmp_path / "second")
    assert again.written == 1 and again.kept == first.total + first.captions - 1
    assert edited.read_bytes() == b"my caption"
    rebuilt = _hashes(tmp_path / "second")
    assert rebuilt.pop("digits/5/5_0005.txt") != _hashes(dest).pop("digits/5/5_0005.txt")
    assert rebuilt == {k: v for k, v in _hashes(dest).items() if k != "digits/5/5_0005.txt"}
    assert victim.stat().st_mtime == FIXED_MTIME


def test_refuses_foreign_folder(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "holiday.jpg").write_bytes(b"precious")
    with pytest.raises(PickselError, match="not a picksel demo album"):
        build_demo_album(tmp_path / "mine")
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["holiday.jpg"]
    (tmp_path / "afile").write_text("x")
    with pytest.raises(PickselError, match="not a folder"):
        build_demo_album(tmp_path / "afile")


def test_without_scikit_image_only_sklearn_photos(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "skimage", None)  # `import skimage` now raises ImportError
    assert demo._skimage_data_dir() is None
    rels = [rel for rel, _ in demo._sample_photo_items()]
    images = [r for r in rels if r.endswith(".jpg")]
    assert images and all(Path(r).stem.split("_")[0] in ("china", "flower") for r in images)
    assert len(rels) == 2 * len(images)
    first = dict(demo._sample_photo_items())["photos/flower.jpg"]()
    assert Image.open(io.BytesIO(first)).size[0] <= demo.PHOTO_MAX_SIDE
