"""Per-image quality measures and the flags judged from them (issue 10).

Why pure functions over one decoded image: the measures must come from the decode that
indexing (or ``picksel check``) already does, so a file is read once; everything here
takes a PIL RGB image (plus the file's own pixel size) and returns plain numbers. The
flags are a second, cheap step over the whole album's measures, because sharpness is
judged against the album (a scanned page and a macro photo are not blurred alike).

Every threshold is a named constant below; ``Thresholds`` carries them so the CLI can
override one and the state file can keep it.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass, fields

import numpy as np
from PIL import Image

from picksel.embeddingdups import NEAR_COSINE  # near duplicates by CLIP cosine (documented there)

WORK_SIDE = 256
"""Images are measured at up to 256 px (brightness, entropy, noise, colour)."""
SHARP_SIDE = 128
"""Sharpness is measured with the shorter side scaled to 128 px (smaller images as they
are): the same working scale for every photo, whatever its resolution."""
HASH_SIDE = 32
THUMB_SIDE = 16
"""The 16×16 grey thumbnail that confirms a near-duplicate candidate."""
CENTRE = 0.95
"""Hash and thumbnail are also taken of the central 95 %: a copy cropped by ~5 % matches
its original's centre, where a whole-image hash is off by the change of scale."""

MEASURES = (
    "p05", "p50", "p95", "dark_clip", "bright_clip", "entropy", "std",
    "sharpness", "detail", "noise", "chroma", "width", "height",
)
"""Columns of the measures matrix, in order."""
COL = {name: i for i, name in enumerate(MEASURES)}

FLAGS = ("dark", "bright", "blank", "blurry", "noisy", "small", "grayscale", "odd-aspect")
DEFECT_FLAGS = ("dark", "bright", "blank", "blurry", "noisy", "small")
"""What ``exclude --flagged`` takes without FLAGs: defects, not kinds of content
(a grayscale or panoramic photo may be exactly what the set needs)."""

# Default thresholds. Brightness values are fractions of full scale (0..1).
DARK_P95 = 0.25
"""dark: even the brightest 5 % of pixels are below a quarter of full scale."""
DARK_CLIP = 0.6
"""… or 60 % of the pixels are crushed to black (≤ 4/255)."""
BRIGHT_P05 = 0.7
"""bright: even the darkest 5 % of pixels are above 70 % of full scale."""
BRIGHT_CLIP = 0.5
"""… or half the pixels are blown out (≥ 251/255) and the darkest 5 % are above mid-grey
(paper with ink is not overexposed: its dark strokes stay dark)."""
BLANK_ENTROPY = 1.0
"""blank: the grey histogram holds under 1 bit of information …"""
BLANK_STD = 0.02
"""… or the grey level varies by under 2 % of full scale."""
BLUR_ABS = 0.02
"""blurry: Laplacian energy (relative to contrast, at the 128-px scale) below this is
blurred whatever the album (sharp photos score 0.3–3, the demo's upscaled 8×8 digits
0.03–0.07, a photo blurred to mush 0.02) …"""
BLUR_REL = 0.25
"""… and below a quarter of its peers' sharp end (the 75th percentile over the images
whose shorter side is within a factor of 2 of its own) counts too, capped at
``BLUR_CAP``: a soft photo among sharp photos is caught even when many are soft, while a
folder of small smooth icons is judged against itself."""
PEER_PERCENTILE = 75
BLUR_CAP = 0.2
DETAIL_CAP = 0.42
"""blurry also when the fine-to-coarse detail ratio (Laplacian energy at the working scale
over that at half of it; sharp photos 0.48–1.1, Gaussian-blurred ones 0.3–0.4) is under
this and under ``DETAIL_REL`` × its peers' reference: a blurred texture keeps much energy,
but little of it at the finest scale."""
DETAIL_REL = 0.8
PEER_OCTAVES = 1.0
PEERS_MIN = 8
"""Fewer peers than this: the whole album is the reference."""
NOISE = 0.12
"""noisy: pixel-scale noise (Immerkær's estimate on flat areas) above 12 % of full scale."""
MIN_SIDE = 256
"""small: the shorter side has fewer pixels than this (default; ``--min-side``). Below 256
px an image cannot fill even half of a 512-px LoRA training bucket."""
GRAY_CHROMA = 0.02
"""grayscale: the mean channel spread is under 2 % of full scale."""
MAX_ASPECT = 2.5
"""odd-aspect: the longer side is more than 2.5× the shorter."""


@dataclass
class Thresholds:
    """The bars every flag is judged by; defaults are the constants above."""

    dark_p95: float = DARK_P95
    dark_clip: float = DARK_CLIP
    bright_p05: float = BRIGHT_P05
    bright_clip: float = BRIGHT_CLIP
    blank_entropy: float = BLANK_ENTROPY
    blank_std: float = BLANK_STD
    blur_abs: float = BLUR_ABS
    blur_rel: float = BLUR_REL
    blur_cap: float = BLUR_CAP
    detail_cap: float = DETAIL_CAP
    detail_rel: float = DETAIL_REL
    noise: float = NOISE
    min_side: int = MIN_SIDE
    gray_chroma: float = GRAY_CHROMA
    max_aspect: float = MAX_ASPECT
    near_cosine: float = NEAR_COSINE  # only when the index holds CLIP vectors

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, value: object, problems: list[str] | None = None) -> Thresholds:
        """Tolerant: unknown keys and values of the wrong kind are dropped (and named in
        ``problems``), so a hand-edited state file never stops the album from opening."""
        t = cls()
        if not isinstance(value, dict):
            if value is not None and problems is not None:
                problems.append("quality thresholds are not an object")
            return t
        for f in fields(cls):
            if f.name not in value:
                continue
            v = value[f.name]
            ok = isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v >= 0
            if f.name == "min_side":
                ok = ok and float(v).is_integer()
            if ok:
                setattr(t, f.name, int(v) if f.name == "min_side" else float(v))
            elif problems is not None:
                problems.append(f"quality.{f.name} {v!r}")
        return t


@dataclass
class ImageMeasures:
    """What one decode yields: the measures row and the two hashes plus the thumbnail
    that duplicate search needs."""

    values: np.ndarray  # float32, len(MEASURES)
    pixel_hash: int  # 64 bits of BLAKE2b over the decoded pixels: exact duplicates
    phash: np.ndarray  # uint64 (2,): mirror-invariant perceptual hash of the whole, of the centre
    thumb: np.ndarray  # uint8 (2, THUMB_SIDE, THUMB_SIDE) grey, mirror-canonical: whole, centre


def pixel_hash(img: Image.Image) -> int:
    """Hash of the decoded RGB pixels and their size: a PNG re-save of a JPEG's pixels
    hashes the same, a re-encoded JPEG does not (that is a near duplicate)."""
    rgb = img if img.mode == "RGB" else img.convert("RGB")
    h = hashlib.blake2b(digest_size=8)
    h.update(f"{rgb.size[0]}x{rgb.size[1]}".encode())
    h.update(rgb.tobytes())
    return int.from_bytes(h.digest(), "little") & 0x7FFF_FFFF_FFFF_FFFF


def _dct_matrix(n: int) -> np.ndarray:
    k = np.arange(n)[:, None]
    x = np.arange(n)[None, :]
    m = np.cos(math.pi * (2 * x + 1) * k / (2 * n)) * math.sqrt(2 / n)
    m[0] /= math.sqrt(2)
    return m


_DCT = _dct_matrix(HASH_SIDE)


def perceptual_hash(gray: np.ndarray | Image.Image) -> int:
    """A 64-bit pHash that a left-right mirror leaves unchanged: the low-frequency DCT
    block of the image averaged with its mirror keeps only even horizontal frequencies
    (8 vertical × 8 even horizontal), each bit "above the median"."""
    img = gray if isinstance(gray, Image.Image) else Image.fromarray(gray)
    g = np.asarray(img.resize((HASH_SIDE, HASH_SIDE), Image.Resampling.BOX), np.float64)
    g = (g + g[:, ::-1]) / 2.0
    coeffs = _DCT @ g @ _DCT.T
    block = coeffs[:8, 0:16:2].ravel()
    med = float(np.median(block[1:]))
    bits = block > med
    bits[0] = False  # DC carries brightness only
    return int(np.packbits(bits.astype(np.uint8), bitorder="little").view("<u8")[0]) & (2**64 - 1)


def canonical_thumb(gray: np.ndarray | Image.Image) -> np.ndarray:
    """16×16 grey thumbnail flipped so its heavier half is on the left: an image and its
    mirror give the same thumbnail (up to resampling)."""
    img = gray if isinstance(gray, Image.Image) else Image.fromarray(gray)
    t = np.asarray(img.resize((THUMB_SIDE, THUMB_SIDE), Image.Resampling.BOX), np.uint8)
    half = THUMB_SIDE // 2
    left = int(t[:, :half].astype(np.int64).sum())
    right = int(t[:, half:].astype(np.int64).sum())
    return t[:, ::-1].copy() if right > left else t


def _laplacian(g: np.ndarray) -> np.ndarray:
    return g[1:-1, 1:-1] * 4 - g[:-2, 1:-1] - g[2:, 1:-1] - g[1:-1, :-2] - g[1:-1, 2:]


def _energy(gray_img: Image.Image, side: float) -> float:
    w, h = gray_img.size
    scale = side / min(w, h)
    if scale < 1:
        gray_img = gray_img.resize(
            (max(3, round(w * scale)), max(3, round(h * scale))), Image.Resampling.BOX
        )
    g = np.asarray(gray_img, np.float32) * np.float32(1 / 255)
    std = float(g.std(dtype=np.float64))
    if min(g.shape) < 3 or std < 1e-3:
        return float("nan")
    return float(_laplacian(g).std(dtype=np.float64)) / std


def sharpness(gray_img: Image.Image) -> tuple[float, float]:
    """(energy, detail): Laplacian energy relative to contrast at the fixed
    ``SHARP_SIDE`` scale (contrast does not count: a dim sharp photo is sharp), and its
    ratio to the energy at half that scale (how much of the detail is at the finest
    scale). NaN for flat or tiny images."""
    side = min(SHARP_SIDE, *gray_img.size)
    fine = _energy(gray_img, side)
    coarse = _energy(gray_img, side / 2)
    detail = fine / coarse if math.isfinite(fine) and math.isfinite(coarse) and coarse > 0 else math.nan
    return fine, detail


def noise_level(g: np.ndarray) -> float:
    """Immerkær's fast noise estimate (σ, 0..1) over the flatter 80 % of the image:
    the 3×3 mask cancels smooth shading and straight edges, and skipping the strongest
    gradients keeps real texture and edges from counting as noise."""
    if min(g.shape) < 4:
        return 0.0
    # In place where possible: every fresh temporary of a 256-px image is a page-faulted
    # allocation, which cost more than the arithmetic (3× the time of this version).
    g = np.asarray(g, np.float32)
    m = g[:-2, :-2] + g[:-2, 2:]
    m += g[2:, :-2]
    m += g[2:, 2:]
    cross = g[:-2, 1:-1] + g[2:, 1:-1]
    cross += g[1:-1, :-2]
    cross += g[1:-1, 2:]
    cross *= 2
    m -= cross
    m += 4 * g[1:-1, 1:-1]
    np.abs(m, out=m)
    gx = g[1:-1, 2:] - g[1:-1, :-2]
    gy = g[2:, 1:-1] - g[:-2, 1:-1]
    gx *= gx
    gy *= gy
    gx += gy
    grad2 = gx.ravel()
    # The 80th percentile by selection, not a sort; on squared gradients (same order).
    k = int(0.8 * (grad2.size - 1))
    vals = m.ravel()[grad2 <= np.partition(grad2, k)[k]]
    return float(vals.mean(dtype=np.float64) * math.sqrt(math.pi / 2) / 6.0)


UNHASHED = 1 << 63
"""``pixel_hash`` of an image decoded smaller than its file: not known yet (real hashes
have the top bit clear); see ``picksel.measuring``."""


_LEVELS = np.arange(256, dtype=np.float64) / 255.0


def measure(img: Image.Image, original_size: tuple[int, int] | None = None,
            exact_hash: int | None = None) -> ImageMeasures:
    """All measures of one decoded image, at ``WORK_SIDE``. ``original_size`` is the
    file's pixel size when ``img`` was decoded smaller; ``exact_hash`` the pixel hash
    when the caller has it (``picksel.measuring``), else it is taken of ``img``."""
    rgb = img if img.mode == "RGB" else img.convert("RGB")
    w, h = original_size or rgb.size
    if exact_hash is None:
        exact_hash = pixel_hash(rgb)
    if max(rgb.size) > WORK_SIDE:
        rgb = rgb.copy()
        rgb.thumbnail((WORK_SIDE, WORK_SIDE), Image.Resampling.BOX)
    gray_img = rgb.convert("L")
    gray8 = np.asarray(gray_img, np.uint8)
    # Everything about grey levels from one histogram (no pass over the pixels each).
    hist = np.bincount(gray8.ravel(), minlength=256).astype(np.float64)
    count = hist.sum()
    cdf = np.cumsum(hist) / count
    p05, p50, p95 = (float(v) / 255.0 for v in np.searchsorted(cdf, [0.05, 0.5, 0.95]))
    p = hist[hist > 0] / count
    entropy = float(-(p * np.log2(p)).sum())
    mean = float(_LEVELS @ hist) / count
    std = math.sqrt(max(float(_LEVELS**2 @ hist) / count - mean * mean, 0.0))
    arr = np.asarray(rgb, np.uint8)
    r, g_, b = arr[..., 0], arr[..., 1], arr[..., 2]
    spread = np.maximum(np.maximum(r, g_), b) - np.minimum(np.minimum(r, g_), b)
    chroma = float(spread.mean(dtype=np.float64)) / 255.0
    values = np.array(
        [
            p05, p50, p95,
            float(hist[:5].sum() / count), float(hist[251:].sum() / count),
            entropy, std,
            *sharpness(gray_img), noise_level(gray8 * np.float32(1 / 255)), chroma,
            float(w), float(h),
        ],
        np.float32,
    )
    centre = _centre(gray_img)
    hashes = np.array([perceptual_hash(gray_img), perceptual_hash(centre)], np.uint64)
    thumbs = np.stack([canonical_thumb(gray_img), canonical_thumb(centre)])
    return ImageMeasures(values, exact_hash, hashes, thumbs)


def _centre(gray: Image.Image) -> Image.Image:
    w, h = gray.size
    dy, dx = round(h * (1 - CENTRE) / 2), round(w * (1 - CENTRE) / 2)
    if h - 2 * dy <= 0 or w - 2 * dx <= 0:
        return gray
    return gray.crop((dx, dy, w - dx, h - dy))


def peer_reference(values: np.ndarray, column: str) -> np.ndarray:
    """For each row, the ``PEER_PERCENTILE`` of ``column`` over its peers: the rows whose shorter side
    is within ``PEER_OCTAVES`` of its own (the whole album when fewer than ``PEERS_MIN``).
    Computed once per distinct size (rounded to 1/8 octave), never N × N."""
    n = len(values)
    col = values[:, COL[column]].astype(np.float64)
    short = np.minimum(values[:, COL["width"]], values[:, COL["height"]]).astype(np.float64)
    octave = np.log2(np.maximum(short, 1.0))
    ok = np.isfinite(col)
    overall = float(np.percentile(col[ok], PEER_PERCENTILE)) if ok.any() else math.nan
    out = np.full(n, overall)
    if not ok.any():
        return out
    key = np.round(octave * 8) / 8
    order = np.argsort(octave[ok])
    oct_sorted, col_sorted = octave[ok][order], col[ok][order]
    for k in np.unique(key):
        lo = np.searchsorted(oct_sorted, k - PEER_OCTAVES, side="left")
        hi = np.searchsorted(oct_sorted, k + PEER_OCTAVES, side="right")
        if hi - lo >= PEERS_MIN:
            out[key == k] = float(np.percentile(col_sorted[lo:hi], PEER_PERCENTILE))
    return out


def blurry(values: np.ndarray, t: Thresholds) -> np.ndarray:
    """Which rows are blurred, judged against their peers (see ``BLUR_*``, ``DETAIL_*``)."""
    if not len(values):
        return np.zeros(0, bool)
    energy = values[:, COL["sharpness"]].astype(np.float64)
    detail = values[:, COL["detail"]].astype(np.float64)
    bar = np.maximum(t.blur_abs, np.minimum(t.blur_rel * peer_reference(values, "sharpness"), t.blur_cap))
    dbar = np.minimum(t.detail_cap, t.detail_rel * peer_reference(values, "detail"))
    with np.errstate(invalid="ignore"):
        return (np.isfinite(energy) & (energy < bar)) | (np.isfinite(detail) & (detail < dbar))


def flags_of(values: np.ndarray, t: Thresholds) -> list[list[str]]:
    """The flag names of each row of the measures matrix (``MEASURES`` columns), in
    ``FLAGS`` order."""
    blurred = blurry(values, t)
    out: list[list[str]] = []
    for row, is_blurred in zip(values, blurred, strict=True):
        v = {name: float(row[i]) for name, i in COL.items()}
        blank = v["entropy"] < t.blank_entropy or v["std"] < t.blank_std
        found: set[str] = set()
        if v["p95"] < t.dark_p95 or (v["dark_clip"] > t.dark_clip and v["p50"] < 0.5):
            found.add("dark")
        if v["p05"] > t.bright_p05 or (v["bright_clip"] > t.bright_clip and v["p05"] > 0.5):
            found.add("bright")
        if blank:
            found.add("blank")
        elif is_blurred:
            found.add("blurry")
        if v["noise"] > t.noise:
            found.add("noisy")
        short, long_ = sorted((v["width"], v["height"]))
        if short < t.min_side:
            found.add("small")
        if v["chroma"] < t.gray_chroma and not blank:
            found.add("grayscale")
        if short > 0 and long_ / short > t.max_aspect:
            found.add("odd-aspect")
        out.append([f for f in FLAGS if f in found])
    return out
