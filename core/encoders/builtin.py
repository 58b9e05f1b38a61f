"""``builtin:v1``: a deterministic, weight-free image descriptor.

Why hand-made features: picksel must work on a NAS or a GPU box without downloading
anything, and its two selection methods only need distances that reflect what a
curator sees — colour, light, texture/edges and layout. Each block below captures one
of those, is scaled to a comparable size on ordinary photos, weighted, and the whole
vector is L2-normalised (cosine distance is what the selector uses).

Garbage images matter: FPS is often used to spot outliers, so an all-black frame,
pure noise or a heavily blurred shot must land far from normal photos. The statistics
block (sharpness, noise, clipping, entropy) and unclamped edge energy do that.

Changing anything here changes every vector: bump ``ID`` so old indexes re-encode.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Sequence
from concurrent.futures import Executor
from pathlib import Path

import numpy as np
from PIL import Image

from picksel import measuring
from picksel.cpus import usable_cpus
from picksel.encoders.pool import make_pool, terminate_pool, wait_result
from picksel.errors import CancelFn, Cancelled
from picksel.imageio import UnreadableImage, open_image
from picksel.quality import ImageMeasures

ID = "builtin:v1"
DECODE_SIDE = measuring.DECODE_SIDE
"""Images are described at up to 256×256: enough for layout/texture."""
DRAFT_SIDE = measuring.DRAFT_SIDE
"""JPEGs may be decoded down to 128 px (a 2-Mpx photo at 1/8 scale, 204×153): decoding
is most of the cost and 1/8 scale saves ~20% of it (bench/bench_index.py). Both are
defined in ``picksel.measuring``: quality measures share this decode."""

GRID = 4
HOG_BINS = 9
COLOR_SIDE = 32
HOG_SIDE = 128
THUMB = 8

# Block weights (see module docstring). Tuned so no block dominates an ordinary photo
# and the statistics block separates garbage frames.
W_COLOR_GRID = 1.0
W_COLOR_HIST = 1.2
W_GRAY_HIST = 0.5
W_HOG = 1.2
W_THUMB = 0.8
W_STATS = 2.0
W_DEFECT = 3.0

N_STATS = 11
N_DEFECTS = 4
DIM = GRID * GRID * 4 + 52 + 16 + GRID * GRID * (HOG_BINS + 1) + THUMB * THUMB + N_STATS + N_DEFECTS

_HOG_SCALE = 2.5  # sqrt(mean edge energy) * scale: energy block ~0.5 on ordinary photos
_SHAPE_SCALE = 5.0
# Typical values on ordinary photos (measured on the sklearn/skimage sample photos).
_STATS_CENTER = np.array(
    [0.552, 0.085, 0.553, 0.784, 0.583, 0.047, 0.002, 0.533, 0.276, 0.285, 0.568], np.float32
)
_ENERGY_CENTER = 0.28


def _cell_index(side: int, grid: int) -> np.ndarray:
    """Cell number (0..grid²-1) of each pixel of a side×side image."""
    idx = (np.arange(side) * grid) // side
    return (idx[:, None] * grid + idx[None, :]).ravel()


_CELLS_COLOR = _cell_index(COLOR_SIDE, GRID)


@functools.lru_cache(maxsize=64)
def _interior_cells(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Cell number of each interior pixel of an h×w image (gradients skip the border),
    and the pixel count per cell."""
    rows = (np.arange(1, h - 1) * GRID) // h
    cols = (np.arange(1, w - 1) * GRID) // w
    cells = (rows[:, None] * GRID + cols[None, :]).ravel()
    counts = np.bincount(cells, minlength=GRID * GRID).astype(np.float64)
    return cells, np.maximum(counts, 1.0)


def _channel_correlation(rgb: np.ndarray) -> float:
    """Mean correlation between R, G and B. Natural images have strongly correlated
    channels (> 0.3 even for a colour chart); synthetic colour noise has none."""
    std = rgb.std(axis=0)
    if (std < 1.0).any():  # a flat channel: correlation undefined, treat as natural
        return 1.0
    c = np.corrcoef(rgb, rowvar=False)
    return float((c[0, 1] + c[0, 2] + c[1, 2]) / 3.0)


def _color_blocks(img: Image.Image) -> tuple[np.ndarray, np.ndarray, float, float, float, float]:
    """Colour layout on a 4×4 grid (chroma vector, value mean/std per cell) and a global
    hue×saturation×value histogram with separate grey bins. HSV because its hue and
    saturation separate "what colour" from "how bright" the way people judge colour."""
    small = img.resize((COLOR_SIDE, COLOR_SIDE), Image.Resampling.BILINEAR, reducing_gap=2.0)
    hsv = np.asarray(small.convert("HSV"), dtype=np.float32).reshape(-1, 3) / 255.0
    rgb = np.asarray(small, dtype=np.float32).reshape(-1, 3)
    rg = rgb[:, 0] - rgb[:, 1]
    yb = (rgb[:, 0] + rgb[:, 1]) * 0.5 - rgb[:, 2]
    # Hasler & Süsstrunk colourfulness: dull/greyish frames vs vivid ones.
    colourfulness = float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))
    channel_corr = _channel_correlation(rgb)
    h, s, v = hsv[:, 0] * (2 * math.pi), hsv[:, 1], hsv[:, 2]
    a, b = s * np.cos(h), s * np.sin(h)
    n_cells = GRID * GRID
    counts = np.bincount(_CELLS_COLOR, minlength=n_cells).astype(np.float32)
    mean_a = np.bincount(_CELLS_COLOR, a, n_cells) / counts
    mean_b = np.bincount(_CELLS_COLOR, b, n_cells) / counts
    mean_v = np.bincount(_CELLS_COLOR, v, n_cells) / counts
    mean_v2 = np.bincount(_CELLS_COLOR, v * v, n_cells) / counts
    std_v = np.sqrt(np.maximum(mean_v2 - mean_v**2, 0.0))
    grid = np.stack([mean_a, mean_b, mean_v, 2.0 * std_v], axis=1).ravel() / math.sqrt(n_cells)

    hue_bin = np.minimum((hsv[:, 0] * 8).astype(np.int64), 7)
    sat_bin = (s >= 0.5).astype(np.int64)
    val_bin = np.minimum((v * 3).astype(np.int64), 2)
    coloured = s >= 0.2
    bins = np.where(coloured, hue_bin * 6 + sat_bin * 3 + val_bin,
                    48 + np.minimum((v * 4).astype(np.int64), 3))
    hist = np.bincount(bins, minlength=52).astype(np.float32)
    hist = np.sqrt(hist / hist.sum())
    return grid.astype(np.float32), hist, float(s.mean()), float(v.mean()), colourfulness, channel_corr


def _gray_features(
    img: Image.Image,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[float, float]]:
    """Edges (HOG-like, 4×4 cells × 9 unsigned orientations), an 8×8 normalised
    thumbnail (coarse layout) and a 16-bin grey histogram, plus the statistics."""
    gray_img = img.convert("L")
    g_full = np.asarray(gray_img, dtype=np.float32) / 255.0
    # Edges on a fixed 128×128 view: comparable across image sizes and 4× cheaper
    # than the full decode (arctan2 dominates the cost).
    g = np.asarray(
        gray_img.resize((HOG_SIDE, HOG_SIDE), Image.Resampling.BOX), dtype=np.float32
    ) / 255.0
    gx = g[1:-1, 2:] - g[1:-1, :-2]
    gy = g[2:, 1:-1] - g[:-2, 1:-1]
    mag = np.sqrt(gx * gx + gy * gy).ravel()
    ang = np.arctan2(gy, gx).ravel() % math.pi
    obin = np.minimum((ang * (HOG_BINS / math.pi)).astype(np.int64), HOG_BINS - 1)
    n_cells = GRID * GRID
    cells, per_cell = _interior_cells(*g.shape)
    hog = np.bincount(cells * HOG_BINS + obin, mag, n_cells * HOG_BINS)
    # Split each cell into edge energy (how much texture) and orientation shape
    # (which directions, as a signed deviation from uniform): noise has energy but no
    # shape, blur has neither, so both stand apart from photos.
    hog = (hog / np.repeat(per_cell, HOG_BINS)).reshape(n_cells, HOG_BINS)
    energy = hog.sum(axis=1)
    shape = hog / np.maximum(energy, 1e-6)[:, None] - 1.0 / HOG_BINS
    shape *= np.minimum(energy / 0.05, 1.0)[:, None]  # flat cells have no direction
    energy_block = (np.sqrt(np.minimum(energy, 1.0)) - _ENERGY_CENTER) * (_HOG_SCALE / math.sqrt(n_cells))
    hog = np.concatenate([shape.ravel() * (_SHAPE_SCALE / math.sqrt(n_cells)), energy_block])

    thumb = np.asarray(
        gray_img.resize((THUMB, THUMB), Image.Resampling.BOX), dtype=np.float32
    ).ravel() / 255.0
    thumb = thumb - thumb.mean()
    thumb /= max(float(np.linalg.norm(thumb)), 0.8)

    ghist = np.bincount(np.minimum((g.ravel() * 16).astype(np.int64), 15), minlength=16)
    ghist = ghist.astype(np.float32) / ghist.size
    ghist = ghist / ghist.sum()
    entropy = float(-(ghist[ghist > 0] * np.log(ghist[ghist > 0])).sum() / math.log(16))
    ghist = np.sqrt(ghist)

    # Sharpness and noise on the larger decode: a 4-neighbour Laplacian.
    lap = (g_full[1:-1, 1:-1] * 4 - g_full[:-2, 1:-1] - g_full[2:, 1:-1]
           - g_full[1:-1, :-2] - g_full[1:-1, 2:])
    lap_var = float(lap.var()) if lap.size else 0.0
    gray_var = float(g_full.var())
    stats = np.array(
        [
            min(math.log1p(lap_var * 1e4) / math.log1p(1e4), 1.0),  # sharpness
            min(lap_var / (gray_var + 1e-3) / 4.0, 1.0),  # high-frequency share: noise
            min(float(np.mean(mag > 0.08)) * 2.0, 1.0),  # edge density
            entropy,
            min(math.sqrt(gray_var) * 3.0, 1.0),  # contrast
            float(np.mean(g_full < 0.06)),  # crushed blacks
            float(np.mean(g_full > 0.94)),  # blown highlights
        ],
        dtype=np.float32,
    )
    extra = (math.sqrt(gray_var), lap_var / (gray_var + 1e-6))
    return hog.astype(np.float32), thumb.astype(np.float32), ghist.astype(np.float32), stats, extra


def _defects(gray_std: float, brightness: float, channel_corr: float, hf_ratio: float, min_side: int) -> np.ndarray:
    """One direction per kind of unusable frame, exactly zero for ordinary photos (the
    thresholds sit well outside what the sample photos span: std ≥ 0.05, channel
    correlation ≥ 0.36, Laplacian/variance ≤ 6, shorter side ≥ 98 px), so they push
    garbage far from everything without moving normal images at all."""
    flat = min(max(1.0 - gray_std / 0.03, 0.0), 1.0)  # blank frame
    noise = max(
        min(max((0.25 - channel_corr) / 0.25, 0.0), 1.0),  # colour noise: channels independent
        min(max((hf_ratio - 10.0) / 10.0, 0.0), 1.0),  # grey noise: energy at the pixel scale
    )
    tiny = min(max((32.0 - min_side) / 24.0, 0.0), 1.0)  # thumbnails, icons, broken exports
    return np.array([flat * (1.0 - brightness), flat * brightness, noise, tiny], np.float32)


def describe(img: Image.Image) -> np.ndarray:
    """The ``builtin:v1`` vector of one RGB image (float32, L2-normalised, ``DIM``)."""
    if img.mode != "RGB":
        img = img.convert("RGB")
    if max(img.size) > DECODE_SIDE:
        img = img.copy()
        img.thumbnail((DECODE_SIDE, DECODE_SIDE), Image.Resampling.BILINEAR)
    w, h = img.size
    grid, chist, sat_mean, val_mean, colourfulness, channel_corr = _color_blocks(img)
    hog, thumb, ghist, gstats, (gray_std, hf_ratio) = _gray_features(img)
    orig_w, orig_h = img.info.get("original_size", (w, h))
    defects = _defects(gray_std, val_mean, channel_corr, hf_ratio, min(orig_w, orig_h))
    stats = np.concatenate(
        [
            gstats,
            np.array(
                [
                    val_mean,
                    sat_mean,
                    min(colourfulness / 120.0, 1.0),
                    0.5 + 0.25 * max(-2.0, min(2.0, math.log(w / h))),  # aspect ratio
                ],
                dtype=np.float32,
            ),
        ]
    )
    # Centred on ordinary photos: the block is near zero for them and large for
    # garbage (black, blown-out, noisy, blurred frames), instead of a constant offset
    # that would make every image look alike.
    stats = (stats - _STATS_CENTER) / math.sqrt(N_STATS) * 2.0
    vec = np.concatenate(
        [
            grid * W_COLOR_GRID,
            chist * W_COLOR_HIST,
            ghist * W_GRAY_HIST,
            hog * W_HOG,
            thumb * W_THUMB,
            stats * W_STATS,
            defects * W_DEFECT,
        ]
    ).astype(np.float32)
    norm = float(np.linalg.norm(vec))
    return vec / norm if norm > 0 else vec


Described = tuple[np.ndarray | None, str, ImageMeasures | None]
"""(vector, "", measures) or (None, reason, None); measures only when asked for."""


def _describe_path(path: str, with_measures: bool = False) -> Described:
    try:
        if with_measures:  # one decode for both (picksel.measuring)
            img = measuring.decode(Path(path))
            return describe(img), "", img.info["inspected"]
        return describe(open_image(Path(path), max_side=DECODE_SIDE, draft_side=DRAFT_SIDE)), "", None
    except UnreadableImage as exc:
        return None, str(exc), None
    except Exception as exc:  # noqa: BLE001 - one odd file must never stop an index run
        return None, f"unreadable ({type(exc).__name__}: {exc})", None


def _describe_chunk(paths: list[str], with_measures: bool = False) -> list[Described]:
    return [_describe_path(p, with_measures) for p in paths]


def _describe_here(paths: list[str], cancel: CancelFn | None, with_measures: bool) -> list[Described]:
    out = []
    for p in paths:
        if cancel is not None and cancel():
            raise Cancelled()
        out.append(_describe_path(p, with_measures))
    return out



PARALLEL_MIN = 32
"""Below this many files a worker pool costs more than it saves."""

_CHUNK = 4


class BuiltinEncoder:
    """The default encoder. ``encode_paths`` decodes and describes files in worker
    processes (one per core), because decoding plus features is ~9 ms per 2-Mpx JPEG:
    the numpy feature code holds the GIL, so threads do not scale (measured: 1 thread
    82 img/s, 2 threads 76)."""

    id = ID
    dim = DIM
    input_size = DECODE_SIDE

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or _default_workers()
        self._pool: Executor | None = None
        self._pool_failed = False

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        if not images:
            return np.zeros((0, DIM), np.float32)
        return np.stack([describe(im) for im in images]).astype(np.float32, copy=False)

    def encode_paths(
        self, paths: Sequence[Path], cancel: CancelFn | None = None,
        measures: dict[str, ImageMeasures] | None = None,
    ) -> list[tuple[np.ndarray | None, str]]:
        """(vector, "") or (None, reason) per path, in input order; with ``measures``,
        each decoded file's quality measures are put there too (by ``str(path)``),
        from the same decode.

        ``cancel`` is polled while the workers run (every ``CANCEL_POLL`` s) and between
        files when decoding here: quitting the TUI mid-batch kills the workers at once
        and raises ``Cancelled`` instead of finishing the batch first."""
        items = [str(p) for p in paths]
        results = self._run(items, cancel, measures is not None)
        if measures is not None:
            measures.update((p, m) for p, (_, _, m) in zip(items, results, strict=True) if m is not None)
        return [(vec, reason) for vec, reason, _ in results]

    def _run(self, items: list[str], cancel: CancelFn | None, with_measures: bool) -> list[Described]:
        if self.workers <= 1 or len(items) < PARALLEL_MIN or self._pool_failed:
            return _describe_here(items, cancel, with_measures)
        if self._pool is None:
            self._pool = make_pool(self.workers, ["picksel.encoders.builtin"])
            if self._pool is None:
                self._pool_failed = True
                return _describe_here(items, cancel, with_measures)
        try:
            chunks = [items[i : i + _CHUNK] for i in range(0, len(items), _CHUNK)]
            futures = [self._pool.submit(_describe_chunk, chunk, with_measures) for chunk in chunks]
            return [result for fut in futures for result in wait_result(fut, cancel)]
        except Cancelled:
            self.abort()
            raise
        except Exception:  # noqa: BLE001 - a broken pool (killed worker): finish serially
            self.abort()
            self._pool_failed = True
            return _describe_here(items, cancel, with_measures)
        except BaseException:  # Ctrl-C, SIGTERM: stop the workers now, not after their task
            self.abort()
            raise

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                pool.shutdown(wait=True, cancel_futures=True)
            except BaseException:  # interrupted while waiting: do not wait any longer
                terminate_pool(pool)
                raise

    def abort(self) -> None:
        """Kill the workers without waiting for their current task."""
        pool, self._pool = self._pool, None
        if pool is not None:
            terminate_pool(pool)


WORKERS_ENV = "PICKSEL_WORKERS"
"""Environment variable setting the number of decode processes (default: one per usable
core, at most 8), e.g. ``PICKSEL_WORKERS=1`` on a NAS shared with other services."""


def _default_workers() -> int:
    try:
        wanted = int(os.environ.get(WORKERS_ENV, "0"))
    except ValueError:
        wanted = 0
    if wanted > 0:
        return min(wanted, 64)
    return max(1, min(usable_cpus(), 8))


