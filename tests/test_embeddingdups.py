"""Near duplicates by embedding cosine: the bounded search equals brute force, whatever
the vectors look like, and only CLIP indexes use it."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from picksel.embeddingdups import (
    cosine_pairs,
    cosine_pairs_brute,
    embedding_pairs,
    is_semantic,
)


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def clip_like(n: int, d: int, seed: int, planted: int) -> tuple[np.ndarray, set[tuple[int, int]]]:
    """Anisotropic clustered unit vectors (a power-law spectrum and a shared direction,
    like image embeddings) with ``planted`` near copies (cosine ≈ 0.97)."""
    rng = np.random.default_rng(seed)
    scale = np.sqrt(1.0 / np.arange(1, d + 1)).astype(np.float32)
    centres = rng.standard_normal((max(2, n // 20), d)).astype(np.float32) * scale
    x = centres[rng.integers(0, len(centres), n)] + 0.6 * rng.standard_normal((n, d)).astype(np.float32) * scale
    x = unit(unit(x) + unit(rng.standard_normal((1, d)).astype(np.float32)))
    src = rng.choice(n, planted, replace=False)
    dst = rng.choice(np.setdiff1d(np.arange(n), src), planted, replace=False)
    noise = unit(rng.standard_normal((planted, d)).astype(np.float32))
    x[dst] = unit(x[src] + 0.25 * noise)
    return x, {(int(min(a, b)), int(max(a, b))) for a, b in zip(src, dst, strict=True)}


def as_set(pairs: np.ndarray) -> set[tuple[int, int]]:
    return {(int(a), int(b)) for a, b in pairs}


def test_planted_pairs_are_found_exactly_as_brute_force() -> None:
    x, planted = clip_like(2500, 256, seed=1, planted=60)
    # small row blocks: many blocks, the bound path (not the exact fallback) does the work
    fast = cosine_pairs(x, 0.95, dims=32, block_cells=2500 * 100)
    brute = cosine_pairs_brute(x, 0.95)
    assert np.array_equal(fast, brute)
    assert planted <= as_set(fast)  # every planted copy (cos ≈ 0.97) is found
    assert (fast[:, 0] < fast[:, 1]).all()
    cos = np.einsum("ij,ij->i", x[fast[:, 0]], x[fast[:, 1]])
    assert (cos >= 0.95).all()


def test_vectors_without_dominant_directions_fall_back_to_exact_blocks() -> None:
    # isotropic random vectors: the projection bound lets nearly every pair through, so
    # each block is computed exactly instead; the answer is still brute force's
    rng = np.random.default_rng(4)
    x = unit(rng.standard_normal((1200, 512)).astype(np.float32))
    x[7] = unit(x[3:4] + 0.2 * x[9:10])[0]
    fast = cosine_pairs(x, 0.9, dims=8, block_cells=1200 * 64)
    assert np.array_equal(fast, cosine_pairs_brute(x, 0.9))
    assert (3, 7) in as_set(fast)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(0, 80),
    d=st.integers(1, 40),
    threshold=st.floats(0.0, 1.0),
    dims=st.integers(1, 12),
    seed=st.integers(0, 10**6),
)
def test_equals_brute_force_property(n: int, d: int, threshold: float, dims: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    if n > 4:
        x[n // 2] = x[0] * 2.0  # same direction, other length: cosine 1
    x = unit(x) if n else x.reshape(0, d)
    # keep pairs off the knife edge of the threshold, where float32 rounding decides
    if n > 1:
        s = x @ x.T
        if np.any(np.abs(s[np.triu_indices(n, 1)] - threshold) < 1e-4):
            return
    fast = cosine_pairs(x, threshold, dims=dims, block_cells=max(1, n) * 7)
    assert np.array_equal(fast, cosine_pairs_brute(x, threshold) if n > 1 else np.zeros((0, 2)))


def test_rows_are_normalised_and_a_threshold_above_one_turns_it_off() -> None:
    x = np.array([[3.0, 4.0], [0.6, 0.8], [1.0, 0.0]], np.float32)
    assert as_set(cosine_pairs(x, 0.999)) == {(0, 1)}
    assert len(cosine_pairs(x, 1.01)) == 0
    with pytest.raises(ValueError):
        cosine_pairs(np.zeros(5, np.float32))


def test_embedding_pairs_map_index_rows_to_table_rows() -> None:
    index_paths = ["b.jpg", "gone.jpg", "a.jpg", "c.jpg"]
    v = unit(np.array([[1, 0, 0], [1, 0.01, 0], [0.99, 0.05, 0], [0, 1, 0]], np.float32))
    table_paths = ["a.jpg", "b.jpg", "c.jpg"]  # gone.jpg was never measured
    assert as_set(embedding_pairs(table_paths, index_paths, v, 0.99)) == {(0, 1)}
    assert len(embedding_pairs(["a.jpg"], index_paths, v, 0.5)) == 0


@pytest.mark.parametrize(("encoder", "semantic"), [
    ("clip:ViT-B-32/laion2b_s34b_b79k", True),
    ("openai-clip:ViT-B/32", True),  # PhotoMapAI's
    ("clip:ViT-B-32/random", False),  # test weights: no meaning
    ("builtin:v1", False),
    ("", False),
])
def test_only_clip_indexes_are_semantic(encoder: str, semantic: bool) -> None:
    assert is_semantic(encoder) is semantic
