"""Shared helpers for the selection tests: embeddings, brute-force oracles, metrics."""

from __future__ import annotations

import numpy as np


def unit_rows(n: int, d: int, seed: int = 0) -> np.ndarray:
    """Random L2-normalised float32 rows."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def clustered_rows(n: int, d: int, clusters: int, seed: int = 0, spread: float = 0.25) -> np.ndarray:
    """Unit rows around ``clusters`` random centres."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, d)).astype(np.float32)
    x = centres[rng.integers(clusters, size=n)] + spread * rng.standard_normal((n, d)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32)


def brute_fps(emb: np.ndarray, count: int, start: list[int], excluded: np.ndarray | None = None) -> list[int]:
    """Farthest-first in float64 with no tricks at all: the oracle of the oracle."""
    x = emb.astype(np.float64)
    n = len(x)
    allowed = np.ones(n, dtype=bool) if excluded is None else ~excluded
    chosen = list(start)
    while len(chosen) < count:
        rest = [i for i in range(n) if allowed[i] and i not in chosen]
        if not rest:
            break
        dist = 1.0 - x[rest] @ x[chosen].T
        chosen.append(rest[int(np.argmax(dist.min(axis=1)))])
    return chosen


def covering_radius(emb: np.ndarray, picks: np.ndarray) -> float:
    """Largest cosine distance from any row to its nearest picked row."""
    sims = emb.astype(np.float64) @ emb[picks].astype(np.float64).T
    return float((1.0 - sims.max(axis=1)).max())


def class_tvd(labels: np.ndarray, picks: np.ndarray) -> float:
    """Total variation distance between class shares of the picks and of the album."""
    k = int(labels.max()) + 1
    album = np.bincount(labels, minlength=k) / len(labels)
    chosen = np.bincount(labels[picks], minlength=k) / len(picks)
    return float(0.5 * np.abs(album - chosen).sum())


def mask_from_paths(paths: list[str], excluded_paths: set[str]) -> np.ndarray:
    """Exclusion mask over index rows, built from paths the way callers must do it:
    by each path's own row, whatever order ``paths`` is in."""
    row_of = {p: i for i, p in enumerate(paths)}
    mask = np.zeros(len(paths), dtype=bool)
    for p in excluded_paths:
        mask[row_of[p]] = True
    return mask
