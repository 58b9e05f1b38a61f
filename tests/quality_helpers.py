"""Albums of altered copies of real photos (scikit-image / scikit-learn samples), made
by the tests: the ground truth for duplicate precision/recall and the blur/exposure
flags."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

SKIMAGE_NAMES = (
    "astronaut.png", "camera.png", "chelsea.png", "coffee.png", "coins.png", "rocket.jpg",
    "motorcycle_left.png", "hubble_deep_field.jpg", "immunohistochemistry.png", "page.png",
    "moon.png", "retina.jpg", "brick.png", "grass.png", "gravel.png", "text.png", "horse.png",
    "clock_motion.png", "cell.png", "color.png",
)


def originals(max_side: int = 320) -> dict[str, Image.Image]:
    """The sample photos shipped with scikit-image and scikit-learn, RGB, ≤ max_side."""
    import skimage
    from sklearn.datasets import load_sample_images

    out: dict[str, Image.Image] = {}
    data = load_sample_images()
    for f, arr in zip(data.filenames, data.images, strict=True):
        out[Path(f).stem] = Image.fromarray(arr)
    folder = Path(skimage.__file__).parent / "data"
    for name in SKIMAGE_NAMES:
        path = folder / name
        if path.is_file():
            with Image.open(path) as im:
                im.load()
                rgba = im.convert("RGBA")
            bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            out[Path(name).stem] = Image.alpha_composite(bg, rgba).convert("RGB")
    for k, im in out.items():
        if max(im.size) > max_side:
            im = im.copy()
            im.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
            out[k] = im
    return out


def write_quality_album(root: Path) -> Path:
    """Six photos, a mirrored JPEG copy, a same-pixels PNG re-save, a black, a noise and
    a tiny image: flags dark/blank, noisy and small, two duplicate groups."""
    (root / "photos").mkdir(parents=True)
    (root / "bad").mkdir()
    photos = originals()
    for name in ("chelsea", "coffee", "rocket", "astronaut", "china", "coins"):
        photos[name].save(root / "photos" / f"{name}.jpg", quality=90)
    ImageOps.mirror(photos["chelsea"]).save(root / "photos" / "chelsea_mirror.jpg", quality=70)
    with Image.open(root / "photos" / "coffee.jpg") as im:
        im.convert("RGB").save(root / "photos" / "coffee_resaved.png")
    Image.new("RGB", (320, 240)).save(root / "bad" / "black.png")
    rng = np.random.default_rng(3)
    Image.fromarray(rng.integers(0, 256, (300, 300, 3), dtype=np.uint8)).save(root / "bad" / "noise.png")
    photos["astronaut"].resize((40, 40)).save(root / "bad" / "tiny.png")
    return root


def _jpeg(img: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    with Image.open(buf) as im:
        im.load()
        return im.convert("RGB")


def _resize(img: Image.Image, f: float) -> Image.Image:
    w, h = img.size
    return img.resize((max(8, round(w * f)), max(8, round(h * f))), Image.Resampling.LANCZOS)


def _noise(img: Image.Image, sigma: float, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    arr = np.asarray(img, np.float32) + rng.normal(0, sigma, (img.size[1], img.size[0], 3))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def _crop(img: Image.Image, frac: float) -> Image.Image:
    w, h = img.size
    dx, dy = round(w * frac / 2), round(h * frac / 2)
    return img.crop((dx, dy, w - dx, h - dy))


ALTERATIONS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "jpeg30": lambda im: _jpeg(im, 30),
    "jpeg95": lambda im: _jpeg(im, 95),
    "resize30": lambda im: _resize(im, 0.3),
    "resize200": lambda im: _resize(im, 2.0),
    "mirror": ImageOps.mirror,
    "bright20": lambda im: ImageEnhance.Brightness(im).enhance(1.2),
    "dark20": lambda im: ImageEnhance.Brightness(im).enhance(0.8),
    "noise": lambda im: _noise(im, 6.0, 7),
    "crop5": lambda im: _crop(im, 0.05),
}
"""The near-duplicate alterations issue 10 names."""


def write_altered_album(root: Path) -> dict[str, str]:
    """``root/<name>/<alteration>.png`` for every original and alteration (PNG, so the
    alteration is the only change); returns rel path → original name."""
    truth: dict[str, str] = {}
    for name, img in originals().items():
        (root / name).mkdir(parents=True, exist_ok=True)
        img.save(root / name / "original.png")
        truth[f"{name}/original.png"] = name
        for alt, fn in ALTERATIONS.items():
            fn(img).save(root / name / f"{alt}.png")
            truth[f"{name}/{alt}.png"] = name
    return truth


def blurred(img: Image.Image, radius: float) -> Image.Image:
    return img.filter(ImageFilter.GaussianBlur(radius))


def pair_scores(groups: list[list[str]], truth: dict[str, str]) -> tuple[float, float]:
    """Pair precision and recall of duplicate groups against the true originals."""
    found = {tuple(sorted((a, b))) for g in groups for a in g for b in g if a < b}
    by_orig: dict[str, list[str]] = {}
    for rel, orig in truth.items():
        by_orig.setdefault(orig, []).append(rel)
    true = {tuple(sorted((a, b))) for g in by_orig.values() for a in g for b in g if a < b}
    tp = len(found & true)
    precision = tp / len(found) if found else 1.0
    recall = tp / len(true) if true else 1.0
    return precision, recall
