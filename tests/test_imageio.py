from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from index_helpers import bomb_png, exif_rotated_jpeg, save_jpeg, truncated_copy, truncated_png
from PIL import Image

from picksel.imageio import UnreadableImage, open_image, thumbnail


@pytest.fixture
def photo(demo_images) -> Image.Image:
    return demo_images["china"]


def test_jpeg_draft_reduces_and_keeps_aspect(tmp_path: Path, photo: Image.Image):
    path = save_jpeg(photo.resize((1600, 1200)), tmp_path / "big.jpg")
    im = open_image(path, max_side=256)
    assert im.mode == "RGB" and max(im.size) == 256
    assert im.size == (256, 192)
    full = open_image(path)
    assert full.size == (1600, 1200)
    assert im.info["original_size"] == (1600, 1200)


def test_exif_orientation_applied(tmp_path: Path, photo: Image.Image):
    upright = photo.resize((200, 100))
    path = exif_rotated_jpeg(upright, tmp_path / "rot.jpg")
    with Image.open(path) as raw:
        assert raw.size == (100, 200)  # stored sideways
    im = open_image(path)
    assert im.size == (200, 100)
    diff = np.abs(np.asarray(im, np.int16) - np.asarray(upright, np.int16)).mean()
    assert diff < 12  # JPEG noise only, not a rotated picture


def test_transparency_on_white_and_modes(tmp_path: Path):
    rgba = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    rgba.save(tmp_path / "t.png")
    im = open_image(tmp_path / "t.png")
    assert im.mode == "RGB" and im.getpixel((0, 0)) == (255, 255, 255)
    Image.new("L", (12, 6), 77).save(tmp_path / "g.bmp")
    assert open_image(tmp_path / "g.bmp").getpixel((0, 0)) == (77, 77, 77)
    Image.fromarray(np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000).save(tmp_path / "i16.png")
    im16 = open_image(tmp_path / "i16.png")
    assert im16.mode == "RGB" and im16.getpixel((7, 7))[0] == 255


@pytest.mark.parametrize(
    ("maker", "reason"),
    [
        (lambda d, p: _write(d / "zero.jpg", b""), "zero-byte file"),
        (lambda d, p: truncated_copy(save_jpeg(p, d / "ok.jpg"), d / "cut.jpg"), "truncated file"),
        (lambda d, p: truncated_png(p, d / "cut.png"), "truncated file"),
        (lambda d, p: _write(d / "rand.jpg", np.random.default_rng(1).bytes(5000)), "not an image"),
        (lambda d, p: bomb_png(d / "bomb.png"), "too large to decode safely"),
    ],
)
def test_bad_files_give_reasons(tmp_path: Path, photo: Image.Image, maker, reason: str):
    path = maker(tmp_path, photo.resize((320, 240)))
    with pytest.raises(UnreadableImage) as exc:
        open_image(path, max_side=128)
    assert str(exc.value).startswith(reason)


@pytest.mark.parametrize(
    ("pillow_limit", "reason"),
    [
        (None, "too large to decode safely: 20000×10000 (200 Mpx) > 100 Mpx"),
        ("default", "too large to decode safely: 200 Mpx > 100 Mpx"),  # Pillow refused it
    ],
)
def test_bomb_checked_before_decoding(tmp_path: Path, monkeypatch, pillow_limit, reason: str):
    # Our own header check holds even when an application disabled Pillow's limit.
    if pillow_limit is None:
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    path = bomb_png(tmp_path / "b.png", width=20_000, height=10_000)
    with pytest.raises(UnreadableImage) as exc:
        open_image(path)
    assert str(exc.value) == reason


def test_missing_file(tmp_path: Path):
    with pytest.raises(UnreadableImage, match="file vanished"):
        open_image(tmp_path / "nope.jpg")


def test_thumbnail(tmp_path: Path, photo: Image.Image):
    path = tmp_path / "p.png"
    photo.save(path)
    th = thumbnail(path, 64)
    assert max(th.size) == 64 and th.mode == "RGB"


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
