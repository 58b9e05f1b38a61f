"""``picksel demo``: a real-image album built from data that ships inside installed packages.

Nobody should have to download anything to try picksel, and the tests and screenshots need
an album with structure worth looking at: ten clear clusters (scikit-learn's 1,797
handwritten digits), a spread of unrelated photos with small groups of crops/variants
(scikit-learn's and scikit-image's sample pictures), captions to carry along on export,
and a few obviously bad images for the exclusion workflow to find.

The build is deterministic down to the bytes (fixed seeds, PNG without timestamps, fixed
file mtimes) so the index fingerprint of a demo album is the same on every run.

Building again into an existing demo album only creates the files that are missing: a
file that exists is the user's now (an edited caption, a replaced image) and is left
exactly as it is, and nothing is ever written through a symlink (a planted
``.NAME.tmp -> ~/.bashrc`` must not become a way to overwrite another file).

Layout::

    digits/<0-9>/<d>_<iiii>.png + .txt   "a handwritten digit 7"
    photos/<name>[_variant].jpg + .txt   sample photos; some have 1-3 variants (a group)
    garbage/*.png|jpg                    no captions: black, white, overexposed, blurred,
                                         noise, tiny
    .picksel-demo                        marker: this folder is a demo build
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

from picksel.errors import PickselError, ProgressFn, no_progress

MARKER = ".picksel-demo"
MARKER_TEXT = (
    "picksel demo album v1\n"
    "Built by `picksel demo` from images shipped with scikit-learn / scikit-image.\n"
    "garbage/ holds deliberately bad images (black, white, overexposed, blurred, noise, tiny).\n"
)
FIXED_MTIME = 1_704_067_200.0  # 2024-01-01T00:00:00Z: stable mtimes keep the index fingerprint stable
DIGIT_SIZE = 64
PHOTO_MAX_SIDE = 480
JPEG_QUALITY = 88
_BATCH = 100

# (file in skimage/data, caption, variants)
_SKIMAGE_PHOTOS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("astronaut.png", "a portrait of an astronaut in a spacesuit in front of a flag", ("crop", "mirror")),
    ("camera.png", "a black and white photo of a man with a camera on a tripod", ("crop",)),
    ("chelsea.png", "a tabby cat looking at the camera", ("crop", "mirror", "bright")),
    ("coffee.png", "a cup of coffee on a saucer", ("crop", "dark")),
    ("coins.png", "old coins on a grey background", ()),
    ("horse.png", "a black silhouette of a horse", ()),
    ("moon.png", "the cratered surface of the moon", ()),
    ("rocket.jpg", "a rocket on its launch pad", ("crop", "mirror")),
    ("hubble_deep_field.jpg", "distant galaxies in the Hubble deep field", ("crop",)),
    ("retina.jpg", "a photograph of a human retina", ()),
    ("brick.png", "a brick wall texture", ()),
    ("grass.png", "a grass texture", ()),
    ("gravel.png", "a gravel texture", ()),
    ("motorcycle_left.png", "a motorcycle in a studio", ()),
    ("motorcycle_right.png", "a motorcycle in a studio, seen from slightly to the right", ()),
    ("cell.png", "cells under a microscope", ()),
    ("ihc.png", "a stained tissue sample under a microscope", ()),
    ("clock_motion.png", "a wall clock blurred by motion", ()),
    ("page.png", "a scanned page of printed text", ()),
    ("text.png", "printed text on a textured surface", ()),
    ("color.png", "a colour test chart", ()),
    ("logo.png", "the scikit-image logo", ()),
    ("chessboard_RGB.png", "a chessboard pattern", ()),
)

_SKLEARN_PHOTOS: dict[str, tuple[str, tuple[str, ...]]] = {
    "china": ("a Chinese temple among trees", ("crop", "mirror", "dark")),
    "flower": ("a close-up of a pink flower", ("crop", "bright")),
}

_VARIANT_CAPTION = {
    "crop": "close-up crop of {}",
    "mirror": "{}, mirrored",
    "bright": "{}, brightened",
    "dark": "{}, darkened",
}

GARBAGE_NAMES = (
    "black.png",
    "white.png",
    "overexposed.jpg",
    "blurred.jpg",
    "noise.png",
    "tiny.png",
)


@dataclass
class DemoReport:
    """What a demo build contains (counts are of images, captions are the .txt files)."""

    dest: Path
    digits: int
    photos: int
    garbage: int
    captions: int
    total: int  # images in the album (digits + photos + garbage)
    written: int = 0  # files created by this run (0 when every file was there already)
    kept: int = 0  # files that existed and were left as they are, whatever their content
    refused: list[str] = field(default_factory=list)  # paths under a symlinked folder: not written


# --------------------------------------------------------------------------- encoding


def _png(img: Image.Image) -> bytes:
    """PNG bytes with no timestamp or other run-dependent chunks."""
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def _jpeg(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=JPEG_QUALITY, optimize=False, progressive=False)
    return buf.getvalue()


def _caption(text: str) -> bytes:
    return (text.strip() + "\n").encode("utf-8")


def _to_rgb(img: Image.Image) -> Image.Image:
    """RGB on white: transparent logos/silhouettes must not turn black."""
    if img.mode in ("RGBA", "LA", "P"):
        img = img.convert("RGBA")
        bg = Image.new("RGBA", img.size, (255, 255, 255, 255))
        return Image.alpha_composite(bg, img).convert("RGB")
    return img.convert("RGB")


def _fit(img: Image.Image, max_side: int = PHOTO_MAX_SIDE) -> Image.Image:
    w, h = img.size
    scale = max_side / max(w, h)
    if scale >= 1:
        return img
    return img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.LANCZOS)


def _variant(img: Image.Image, kind: str) -> Image.Image:
    w, h = img.size
    if kind == "crop":
        cw, ch = round(w * 0.6), round(h * 0.6)
        left, top = (w - cw) // 2, (h - ch) // 3
        return img.crop((left, top, left + cw, top + ch)).resize((w, h), Image.LANCZOS)
    if kind == "mirror":
        return ImageOps.mirror(img)
    if kind == "bright":
        return ImageEnhance.Brightness(img).enhance(1.35)
    if kind == "dark":
        return ImageEnhance.Brightness(img).enhance(0.65)
    raise ValueError(kind)


# --------------------------------------------------------------------------- sources

_Item = tuple[str, Callable[[], bytes]]  # (relative path, producer of the file's bytes)


def _digit_items() -> Iterator[_Item]:
    from sklearn.datasets import load_digits

    d = load_digits()
    for i, (pixels, label) in enumerate(zip(d.images, d.target, strict=True)):
        label = int(label)
        stem = f"digits/{label}/{label}_{i:04d}"

        def make(pixels: np.ndarray = pixels) -> bytes:
            # 0..16 ink intensity -> dark ink on white paper, smoothly upscaled
            arr = (255 - np.clip(pixels, 0, 16) * (255 / 16)).round().astype(np.uint8)
            img = Image.fromarray(arr, mode="L").resize((DIGIT_SIZE, DIGIT_SIZE), Image.BICUBIC)
            return _png(img.convert("RGB"))

        yield f"{stem}.png", make
        yield f"{stem}.txt", lambda label=label: _caption(f"a handwritten digit {label}")


def _photo_items(name: str, load: Callable[[], Image.Image], caption: str, variants: tuple[str, ...]) -> list[_Item]:
    cache: dict[str, Image.Image] = {}

    def base() -> Image.Image:
        if "img" not in cache:
            cache["img"] = _fit(_to_rgb(load()))
        return cache["img"]

    items: list[_Item] = [
        (f"photos/{name}.jpg", lambda: _jpeg(base())),
        (f"photos/{name}.txt", lambda: _caption(caption)),
    ]
    for kind in variants:
        items.append((f"photos/{name}_{kind}.jpg", lambda kind=kind: _jpeg(_variant(base(), kind))))
        items.append(
            (f"photos/{name}_{kind}.txt", lambda kind=kind: _caption(_VARIANT_CAPTION[kind].format(caption)))
        )
    return items


def _skimage_data_dir() -> Path | None:
    """scikit-image's bundled sample folder, or None when scikit-image is not installed."""
    try:
        import skimage
    except ImportError:
        return None
    path = Path(skimage.__file__).parent / "data"
    return path if path.is_dir() else None


def _sample_photo_items() -> list[_Item]:
    from sklearn.datasets import load_sample_images

    items: list[_Item] = []
    data = load_sample_images()
    by_name = {Path(f).stem: img for f, img in zip(data.filenames, data.images, strict=True)}
    for name, (caption, variants) in _SKLEARN_PHOTOS.items():
        if name in by_name:
            arr = by_name[name]
            items += _photo_items(name, lambda arr=arr: Image.fromarray(arr), caption, variants)
    folder = _skimage_data_dir()
    if folder is not None:
        for filename, caption, variants in _SKIMAGE_PHOTOS:
            path = folder / filename
            if not path.is_file():
                continue  # another scikit-image version: use what it has

            def load(path: Path = path) -> Image.Image:
                with Image.open(path) as im:
                    im.load()
                    return im.copy()

            items += _photo_items(Path(filename).stem, load, caption, variants)
    return items


def _garbage_items(photo: Callable[[], Image.Image]) -> list[_Item]:
    """Images a curator wants out of a training set; ``photo`` is a real picture to spoil."""

    def noise() -> bytes:
        rng = np.random.default_rng(20240101)
        return _png(Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8), mode="RGB"))

    def overexposed() -> bytes:
        arr = np.asarray(photo(), dtype=np.float32) * 3.0 + 120
        return _jpeg(Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), mode="RGB"))

    def tiny() -> bytes:
        return _png(photo().resize((12, 8), Image.BOX))

    makers: dict[str, Callable[[], bytes]] = {
        "black.png": lambda: _png(Image.new("RGB", (320, 240), (0, 0, 0))),
        "white.png": lambda: _png(Image.new("RGB", (320, 240), (255, 255, 255))),
        "overexposed.jpg": overexposed,
        "blurred.jpg": lambda: _jpeg(photo().filter(ImageFilter.GaussianBlur(radius=24))),
        "noise.png": noise,
        "tiny.png": tiny,
    }
    return [(f"garbage/{name}", makers[name]) for name in GARBAGE_NAMES]


def _garbage_source() -> Image.Image:
    from sklearn.datasets import load_sample_images

    data = load_sample_images()
    return _fit(Image.fromarray(data.images[0]).convert("RGB"), 320)


# --------------------------------------------------------------------------- build


def _check_dest(dest: Path) -> None:
    """Refuse to write into a folder that holds anything but a previous demo build."""
    if dest.exists() and not dest.is_dir():
        raise PickselError(f"{dest} exists and is not a folder")
    marker = dest / MARKER
    if not dest.is_dir() or (marker.is_file() and not marker.is_symlink()):
        return
    if any(dest.iterdir()):
        raise PickselError(
            f"{dest} is not empty and is not a picksel demo album; choose an empty or new folder"
        )


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _real_folder(dest: Path, rel: str) -> Path | None:
    """The folder for ``rel`` inside ``dest``, created as needed; None when a component
    is a symlink or not a folder (writing there could land anywhere)."""
    folder = dest
    for part in Path(rel).parent.parts:
        folder = folder / part
        with contextlib.suppress(FileExistsError):
            os.mkdir(folder)
        if not stat.S_ISDIR(os.lstat(folder).st_mode):
            return None
    return folder


def _create(path: Path, data: bytes, mode: int) -> bool:
    """Create ``path`` holding ``data``; False (and nothing touched) when anything already
    has that name, be it a file, a folder or a symlink.

    The bytes go to a fresh temp file (``mkstemp``: O_CREAT|O_EXCL|O_NOFOLLOW, a random
    name, so no planted file or link is ever opened) and are hard-linked to the final name,
    which fails instead of replacing anything that appeared there meanwhile.
    """
    if os.path.lexists(path):
        return False
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:40]}.", suffix=".picksel-tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            os.fchmod(fh.fileno(), mode)
        os.utime(tmp, (FIXED_MTIME, FIXED_MTIME))
        try:
            os.link(tmp, path, follow_symlinks=False)
        except FileExistsError:
            return False
        except OSError:  # no hard links here (FAT, some network file systems)
            if os.path.lexists(path):
                return False
            os.rename(tmp, path)
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def build_demo_album(dest: Path, *, progress: ProgressFn | None = None) -> DemoReport:
    """Build (or refresh) the demo album in ``dest``; identical bytes on every run.

    Raises PickselError when ``dest`` contains files that are not a previous demo build.
    """
    progress = progress or no_progress
    dest = Path(dest).expanduser()
    _check_dest(dest)
    dest.mkdir(parents=True, exist_ok=True)
    mode = 0o666 & ~_umask()
    _create(dest / MARKER, MARKER_TEXT.encode("utf-8"), mode)

    progress(0, 1, "collecting demo images")
    garbage_cache: dict[str, Image.Image] = {}

    def garbage_photo() -> Image.Image:
        if "img" not in garbage_cache:
            garbage_cache["img"] = _garbage_source()
        return garbage_cache["img"]

    items = list(_digit_items()) + _sample_photo_items() + _garbage_items(garbage_photo)
    total = len(items)
    written = kept = 0
    refused: list[str] = []
    for done, (rel, make) in enumerate(items, start=1):
        folder = _real_folder(dest, rel)
        if folder is None:
            refused.append(rel)
        elif os.path.lexists(folder / Path(rel).name):
            kept += 1
        elif _create(folder / Path(rel).name, make(), mode):
            written += 1
        else:
            kept += 1
        if done % _BATCH == 0 or done == total:
            progress(done, total, f"demo album: {done}/{total} files")

    def count(prefix: str, suffix: str | None = None) -> int:
        return sum(
            1
            for rel, _ in items
            if rel.startswith(prefix) and (rel.endswith(suffix) if suffix else not rel.endswith(".txt"))
        )

    digits, photos, garbage = count("digits/"), count("photos/"), count("garbage/")
    return DemoReport(
        dest=dest,
        digits=digits,
        photos=photos,
        garbage=garbage,
        captions=sum(1 for rel, _ in items if rel.endswith(".txt")),
        total=digits + photos + garbage,
        written=written,
        kept=kept,
        refused=refused,
    )
