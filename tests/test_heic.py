"""HEIC albums (what iPhones shoot): scanned, encoded, thumbnailed and exported for real.

pillow-heif is in the test extra, so these run in CI; without it HEIC files are simply
not album images (scan lists them only when they can be decoded)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pillow_heif = pytest.importorskip("pillow_heif")

from picksel.export import export_images  # noqa: E402
from picksel.index import build_index  # noqa: E402
from picksel.scan import HEIF_SUPPORTED, scan_album  # noqa: E402
from picksel.thumbs import is_placeholder, load_thumbnail  # noqa: E402


@pytest.fixture
def heic_album(tmp_path: Path, demo_images: dict[str, Image.Image]) -> Path:
    root = tmp_path / "album"
    (root / "iphone").mkdir(parents=True)
    demo_images["astronaut"].resize((160, 160)).save(root / "iphone" / "IMG_0001.HEIC", quality=80)
    demo_images["coffee"].resize((160, 120)).save(root / "iphone" / "IMG_0002.heic", quality=80)
    (root / "iphone" / "IMG_0001.txt").write_text("an astronaut\n", encoding="utf-8")
    demo_images["china"].resize((120, 90)).save(root / "china.jpg", quality=90)
    (root / "iphone" / "IMG_0003.heic").write_bytes(b"ftypheic but nothing else")  # broken
    return root


def test_heic_files_are_album_images(heic_album: Path) -> None:
    assert HEIF_SUPPORTED
    rels = sorted(e.rel for e in scan_album(heic_album))
    assert rels == ["china.jpg", "iphone/IMG_0001.HEIC", "iphone/IMG_0002.heic", "iphone/IMG_0003.heic"]


def test_heic_index_thumbnail_and_export(heic_album: Path, tmp_path: Path) -> None:
    idx, rep = build_index(heic_album)
    assert idx.paths == ["china.jpg", "iphone/IMG_0001.HEIC", "iphone/IMG_0002.heic"]
    assert [p for p, _ in rep.failures] == ["iphone/IMG_0003.heic"]
    assert np.allclose(np.linalg.norm(idx.embeddings, axis=1), 1.0, atol=1e-5)
    # the astronaut and the coffee cup are different pictures, and look it
    assert float(idx.embeddings[1] @ idx.embeddings[2]) < 0.99

    thumb = load_thumbnail(heic_album, "iphone/IMG_0001.HEIC", heic_album / ".picksel", 32)
    assert not is_placeholder(thumb) and max(thumb.size) == 32
    r, g, b = np.asarray(thumb.convert("RGB"), dtype=float).reshape(-1, 3).mean(axis=0)
    assert abs(r - g) + abs(g - b) > 5  # real colour came through the decoder
    assert is_placeholder(load_thumbnail(heic_album, "iphone/IMG_0003.heic", heic_album / ".picksel", 32))

    dest = tmp_path / "set"
    report = export_images(heic_album, ["iphone/IMG_0001.HEIC", "iphone/IMG_0002.heic"], dest)
    assert not report.errors
    assert sorted(p.name for p in dest.iterdir() if p.name[0] != ".") == ["IMG_0001.HEIC", "IMG_0001.txt", "IMG_0002.heic"]
    assert (dest / "IMG_0001.HEIC").read_bytes() == (heic_album / "iphone" / "IMG_0001.HEIC").read_bytes()


def test_heic_orientation_is_applied_once(tmp_path: Path) -> None:
    # iPhones store portrait shots rotated with an orientation flag. pillow-heif turns
    # it into the container's rotation and resets the EXIF tag, so our EXIF transpose
    # must not rotate a second time: the HEIC and the JPEG come out the same way up.
    from picksel.imageio import open_image

    img = Image.new("RGB", (80, 40), (200, 0, 0))
    img.paste((0, 0, 200), (0, 0, 20, 40))  # blue band on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    img.save(tmp_path / "p.heic", exif=exif.tobytes(), quality=95)
    img.save(tmp_path / "p.jpg", exif=exif.tobytes(), quality=95)
    heic, jpeg = open_image(tmp_path / "p.heic"), open_image(tmp_path / "p.jpg")
    assert heic.size == jpeg.size == (40, 80)
    top_heic = np.asarray(heic.convert("RGB"))[:10].mean(axis=(0, 1))
    top_jpeg = np.asarray(jpeg.convert("RGB"))[:10].mean(axis=(0, 1))
    assert top_heic[2] > 150 and top_jpeg[2] > 150  # the blue band is on top in both
