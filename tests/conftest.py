"""Shared fixtures: small albums made of real images that ship inside installed packages."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def _sklearn_photos() -> dict[str, Image.Image]:
    from sklearn.datasets import load_sample_images

    data = load_sample_images()
    names = [Path(f).stem for f in data.filenames]
    return {n: Image.fromarray(img) for n, img in zip(names, data.images, strict=True)}


def _digits(n: int) -> list[tuple[int, Image.Image]]:
    from sklearn.datasets import load_digits

    d = load_digits()
    out = []
    for i in range(n):
        arr = (d.images[i] / 16.0 * 255).astype(np.uint8)
        out.append((int(d.target[i]), Image.fromarray(arr).resize((64, 64), Image.NEAREST).convert("RGB")))
    return out


@pytest.fixture(autouse=True)
def _truecolor_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests run as in a truecolor terminal unless they say otherwise: half-cell pictures
    are dithered for 256 and 16 colours (picksel.tui.halfcell), so snapshots would
    otherwise depend on the TERM of whoever runs them."""
    monkeypatch.setenv("COLORTERM", "truecolor")


@pytest.fixture(scope="session")
def demo_images() -> dict[str, Image.Image]:
    """Real photos (sklearn's china/flower, skimage's astronaut/coffee/chelsea...)."""
    images = _sklearn_photos()
    try:
        from skimage import data as skdata

        for name in ("astronaut", "coffee", "chelsea", "rocket", "camera"):
            arr = getattr(skdata, name)()
            images[name] = Image.fromarray(arr).convert("RGB")
    except ImportError:  # pragma: no cover - scikit-image is in the test extra
        pass
    return images


@pytest.fixture
def small_album(tmp_path: Path, demo_images: dict[str, Image.Image]) -> Path:
    """An album with photos in two sub-folders, digits with captions, a name collision
    (``photos/01.png`` and ``digits/01.png``) and one broken file."""
    root = tmp_path / "album"
    (root / "photos").mkdir(parents=True)
    (root / "digits").mkdir()
    for i, (name, img) in enumerate(sorted(demo_images.items())):
        img.resize((160, 120)).save(root / "photos" / f"{i:02d}_{name}.jpg", quality=90)
    demo_images["china"].resize((96, 64)).save(root / "photos" / "01.png")
    for i, (label, img) in enumerate(_digits(6)):
        img.save(root / "digits" / f"{i:02d}.png")
        (root / "digits" / f"{i:02d}.txt").write_text(f"a handwritten digit {label}\n", encoding="utf-8")
    (root / "digits" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return root
