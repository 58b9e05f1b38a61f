"""Selection quality on real images: scikit-learn's handwritten digits (8x8 scans).

The album is the digits set with one class cut to a fifth, so proportions matter.
FPS is meant to *cover* the album (small covering radius); K-Means is meant to keep
its *proportions* (class shares close to the album's). Each is compared with the other
method and with a uniform random pick, averaged over 10 seeds, count 100.

Embeddings: the builtin encoder (picksel.encoders) on a 920-image subset when it is
importable - that is what users get - and the L2-normalised raw pixels of the whole
set, which need no encoder at all.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
from select_helpers import class_tvd, covering_radius

from picksel.select import run_selection

COUNT = 100
SEEDS = range(10)
RARE_CLASS = 3
BUILTIN_PER_CLASS = 100
"""The builtin encoder costs ~5-10 ms an image, so its album is a 920-image subset."""


def _album(per_class: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Digit images and labels: ``per_class`` of each class (all when None), the rare
    class cut to a fifth of that."""
    from sklearn.datasets import load_digits

    d = load_digits()
    rng = np.random.default_rng(0)
    keep: list[int] = []
    for c in range(10):
        rows = np.flatnonzero(d.target == c)
        n = len(rows) if per_class is None else per_class
        if c == RARE_CLASS:
            n //= 5
        keep.extend(rng.choice(rows, n, replace=False).tolist())
    keep_arr = np.array(sorted(keep))
    return d.images[keep_arr], d.target[keep_arr]


@functools.cache
def _embedded(kind: str) -> tuple[np.ndarray, np.ndarray]:
    if kind == "pixels":
        images, labels = _album(None)
        x = images.reshape(len(images), -1).astype(np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        return x, labels
    from PIL import Image

    encoders = pytest.importorskip("picksel.encoders")
    images, labels = _album(BUILTIN_PER_CLASS)
    # Rendered like the test albums' digit files: 64 x 64 grey scans.
    pil = [
        Image.fromarray((im / 16.0 * 255).astype(np.uint8)).resize((64, 64), Image.NEAREST).convert("RGB")
        for im in images
    ]
    return encoders.get_encoder("builtin").encode_images(pil).astype(np.float32), labels


@functools.cache
def _scores(kind: str) -> dict[str, tuple[float, float]]:
    """Mean (covering radius, class TVD) over the seeds for fps, kmeans and random."""
    emb, labels = _embedded(kind)
    out: dict[str, list[tuple[float, float]]] = {"fps": [], "kmeans": [], "random": []}
    for seed in SEEDS:
        for method in ("fps", "kmeans"):
            picks = run_selection(emb, method=method, count=COUNT, iterations=1, seed=seed).consensus
            out[method].append((covering_radius(emb, picks), class_tvd(labels, picks)))
        picks = np.random.default_rng(seed).choice(len(emb), COUNT, replace=False)
        out["random"].append((covering_radius(emb, picks), class_tvd(labels, picks)))
    return {m: tuple(np.mean(v, axis=0)) for m, v in out.items()}


@pytest.mark.parametrize("kind", ["pixels", "builtin"])
def test_fps_covers_best(kind: str) -> None:
    s = _scores(kind)
    assert s["fps"][0] < s["kmeans"][0], s
    assert s["fps"][0] < s["random"][0], s


@pytest.mark.parametrize("kind", ["pixels", "builtin"])
def test_kmeans_keeps_proportions_best(kind: str) -> None:
    s = _scores(kind)
    assert s["kmeans"][1] < s["fps"][1], s
    assert s["kmeans"][1] < s["random"][1], s
