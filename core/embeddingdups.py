"""Near duplicates by embedding cosine, when the album index holds CLIP vectors.

Why only CLIP: the builtin vectors describe colour and layout, not content (a mirrored
photo and its original have cosine ≈ 0.57, below unrelated pairs), so their cosine says
nothing about duplicates. CLIP vectors of a re-framed, recoloured or re-shot copy stay
close, which the perceptual hash cannot see.

Why a projection bound instead of the N×N matrix: 100,000 × 768 vectors are 3.8·10¹²
multiply-adds for every pair, minutes on two cores. For unit vectors, cos(a, b) ≥ t is
‖a − b‖² ≤ 2 − 2t, and for any orthonormal basis P of k directions (plus the length of
what P leaves out, ``e = √(1 − ‖Pa‖²)``) the reduced vectors can only be closer:
‖Pa − Pb‖² + (eₐ − e_b)² ≤ ‖a − b‖². So the pairs within 2 − 2t in k + 1 dimensions are
a superset of the answer (nothing is ever missed), and each is confirmed by its full
cosine. P is the top principal directions of a sample, where embeddings spread most, so
unrelated pairs stay far apart in few dimensions. The reduced matrix is swept in row
blocks (memory linear in N); a block whose bound lets too much through (vectors with no
dominant directions) is computed exactly instead, so the answer is always the brute-force
one and only the time degrades.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

NEAR_COSINE = 0.95
"""CLIP vectors at least this close (cosine) are near duplicates. Re-encoded, resized,
mirrored and lightly edited copies of a photo stay above it; distinct shots of one scene
are usually below (a burst can reach it: raise ``near_cosine`` with ``check --set``, or
set it above 1 to turn the cosine search off)."""
PROJECT_DIMS = 64
"""Principal directions of the bound (vectors of at most this many dimensions are
compared as they are)."""
SAMPLE = 4096
"""Rows the principal directions are estimated from (any basis keeps the bound exact)."""
BLOCK_CELLS = 32 * 1024 * 1024
"""Cells of one row block of the reduced similarity matrix (float32: 128 MB)."""
MAX_CANDIDATES_PER_ROW = 64
"""A block whose bound passes more pairs than this per row is computed exactly."""


def is_semantic(encoder: str) -> bool:
    """True for CLIP indexes (picksel's ``clip:MODEL/WEIGHTS`` ids, PhotoMapAI's model ids)
    with trained weights; randomly initialised test weights are not semantic."""
    enc = (encoder or "").lower()
    return "clip" in enc and not enc.endswith("/random")


def _sorted_pairs(pairs: np.ndarray) -> np.ndarray:
    pairs = np.asarray(pairs, np.int64).reshape(-1, 2)
    return np.unique(pairs, axis=0) if len(pairs) else pairs


def cosine_pairs_brute(vectors: np.ndarray, threshold: float) -> np.ndarray:
    """Every pair (i < j) with cosine ≥ ``threshold``, from the full N×N matrix: the
    reference the fast search is tested against (small N only)."""
    v = np.asarray(vectors, np.float32)
    s = v @ v.T
    i, j = np.nonzero(np.triu(s >= threshold, k=1))
    return _sorted_pairs(np.stack([i, j], axis=1))


def _reduced(v: np.ndarray, dims: int, seed: int) -> np.ndarray:
    """The (k + 1)-column reduced vectors whose distances bound the full ones from below."""
    n, d = v.shape
    if d <= dims:
        return v.copy()
    rng = np.random.default_rng(seed)
    sample = v[rng.choice(n, min(n, SAMPLE), replace=False)].astype(np.float64)
    sample -= sample.mean(axis=0)
    # eigh of the D×D covariance: several times faster than an SVD of the sample
    _, vecs = np.linalg.eigh(sample.T @ sample)
    basis = np.ascontiguousarray(vecs[:, ::-1][:, :dims], dtype=np.float32)
    z = v @ basis
    rest = np.sqrt(np.maximum(0.0, (v * v).sum(axis=1) - (z * z).sum(axis=1)))
    return np.concatenate([z, rest[:, None]], axis=1)


_WORD = 8


def _true_cells(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.nonzero`` of a mostly-False C-contiguous 2-D mask whose rows are whole 8-byte
    words: the words are scanned first, 8 cells at a time (nonzero alone is the slowest
    step of the sweep)."""
    words = np.flatnonzero(mask.view(np.uint64))
    if not len(words):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    cells = mask.reshape(-1, _WORD)[words]
    r, c = np.nonzero(cells)
    flat = words[r] * _WORD + c
    return np.divmod(flat, mask.shape[1])


def cosine_pairs(
    vectors: np.ndarray,
    threshold: float = NEAR_COSINE,
    *,
    dims: int = PROJECT_DIMS,
    block_cells: int = BLOCK_CELLS,
    seed: int = 0,
) -> np.ndarray:
    """Every pair (i < j, sorted rows) of unit rows of ``vectors`` (N × D float32) with
    cosine ≥ ``threshold``: exactly the brute-force answer, in memory linear in N (see the
    module docstring). Rows that are not unit length are normalised first."""
    v = np.asarray(vectors, np.float32)
    if v.ndim != 2:
        raise ValueError(f"vectors must be N × D (got shape {v.shape})")
    n = len(v)
    if n < 2 or threshold > 1.0:
        return np.zeros((0, 2), np.int64)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    if not np.allclose(norms, 1.0, atol=1e-4):  # index vectors are unit already: no copy
        v = (v / np.where(norms > 0, norms, 1)).astype(np.float32)
    reach = max(0.0, 2.0 - 2.0 * float(threshold)) + 1e-5  # float32 slack: the check is exact
    z = _reduced(v, dims, seed)
    sq = (z * z).sum(axis=1)
    # ‖zᵢ − zⱼ‖² ≤ reach  ⟺  zᵢ·zⱼ − ‖zⱼ‖²/2 ≥ (‖zᵢ‖² − reach)/2: one product, one compare.
    left = np.concatenate([z, np.ones((n, 1), np.float32)], axis=1)
    right = np.concatenate([z, -sq[:, None] / 2], axis=1).astype(np.float32)
    # 8 padding columns that never pass, so every block is a whole number of 8-byte words
    pad = np.zeros((_WORD, right.shape[1]), np.float32)
    pad[:, -1] = -np.inf
    right = np.concatenate([right, pad])
    row_bar = ((sq - reach) / 2).astype(np.float32)
    rows = max(16, min(4096, block_cells // n))
    found: list[np.ndarray] = []
    for i0 in range(0, n, rows):
        i1 = min(n, i0 + rows)
        width = -(-(n - i0) // _WORD) * _WORD
        g = left[i0:i1] @ right[i0 : i0 + width].T
        bi, bj = _true_cells(g >= row_bar[i0:i1, None])
        del g
        upper = bj > bi  # columns start at i0: the pair (i, j) with j > i, once
        bi, bj = bi[upper] + i0, bj[upper] + i0
        if len(bi) > MAX_CANDIDATES_PER_ROW * (i1 - i0):
            s = v[i0:i1] @ v[i0:].T
            si, sj = np.nonzero(s >= threshold)
            del s
            upper = sj > si
            found.append(np.stack([si[upper] + i0, sj[upper] + i0], axis=1))
            continue
        cos = np.einsum("ij,ij->i", v[bi], v[bj])
        close = cos >= threshold
        found.append(np.stack([bi[close], bj[close]], axis=1))
    if not found:
        return np.zeros((0, 2), np.int64)
    return _sorted_pairs(np.concatenate(found))


def embedding_pairs(
    table_paths: Sequence[str],
    index_paths: Sequence[str],
    vectors: np.ndarray,
    threshold: float = NEAR_COSINE,
) -> np.ndarray:
    """``cosine_pairs`` of the index rows, as pairs of rows of the quality table (whose
    order is its own); images in only one of the two are left out."""
    row_in_table = {p: i for i, p in enumerate(table_paths)}
    keep = [(r, row_in_table[p]) for r, p in enumerate(index_paths) if p in row_in_table]
    if len(keep) < 2:
        return np.zeros((0, 2), np.int64)
    index_rows = np.array([k[0] for k in keep], np.int64)
    table_rows = np.array([k[1] for k in keep], np.int64)
    pairs = cosine_pairs(np.asarray(vectors)[index_rows], threshold)
    if not len(pairs):
        return pairs
    return _sorted_pairs(np.sort(table_rows[pairs], axis=1))


def semantic_vectors(index) -> tuple[list[str], np.ndarray] | None:
    """(paths, vectors) of an album index whose encoder is semantic (CLIP), else None."""
    if index is None or not is_semantic(getattr(index, "encoder", "")):
        return None
    return list(index.paths), index.embeddings
