"""K-Means blocks: exact original-space picks, exactly N distinct images, determinism."""

from __future__ import annotations

import numpy as np
import pytest
from select_helpers import clustered_rows, unit_rows

from picksel.kmeans import assign, kmeans_once, lloyd, pick_images, reduce
from picksel.select import run_selection


def test_reduced_distance_is_the_original_space_distance() -> None:
    emb = clustered_rows(400, 40, 5, seed=1)
    red = reduce(emb, np.arange(400), np.random.default_rng(0), dims=6)
    assert red.coords.shape == (400, 6)
    centre = red.coords[:50].mean(axis=0)
    lifted = red.lift(centre)
    want = ((emb.astype(np.float64) - lifted) ** 2).sum(axis=1)
    diff = red.coords - centre
    got = (diff**2).sum(axis=1) + red.resid
    assert np.allclose(got, want, atol=1e-4)


def test_small_dimension_is_kept_exactly() -> None:
    emb = unit_rows(100, 12)
    red = reduce(emb, np.arange(100), np.random.default_rng(0), dims=16)
    assert np.allclose(red.coords + red.mean, emb, atol=1e-6)
    assert np.allclose(red.resid, 0, atol=1e-6)


def test_pick_is_the_member_nearest_its_centre_in_original_space() -> None:
    emb = clustered_rows(600, 30, 8, seed=2)
    rows = np.arange(600)
    red = reduce(emb, rows, np.random.default_rng(0), dims=5)
    pick = kmeans_once(red, 8, seed=3)
    for c in range(8):
        members = np.flatnonzero(pick.labels == c)
        lifted = red.lift(pick.centres[c])
        d = ((emb[members].astype(np.float64) - lifted) ** 2).sum(axis=1)
        nearest = members[np.argmin(d)]
        assert pick.rows[c] == nearest


def test_lloyd_lowers_inertia_and_assign_is_nearest() -> None:
    x = clustered_rows(800, 10, 6, seed=3)
    init = x[:6].copy()
    labels, centres = lloyd(x, init)
    lab0, d0 = assign(x, init)
    lab1, d1 = assign(x, centres)
    assert d1.sum() < d0.sum()
    brute = ((x[:, None, :] - centres[None]) ** 2).sum(-1)
    assert np.array_equal(lab1, brute.argmin(1))
    assert np.allclose(d1, brute.min(1), atol=1e-5)


def test_exactly_count_distinct_images_with_duplicates() -> None:
    # 25 distinct images, each stored 4 times: 40 clusters cannot all be non-empty
    # distinct points, yet 40 distinct rows must come back.
    base = unit_rows(25, 6, seed=4)
    emb = np.repeat(base, 4, axis=0)
    for seed in range(3):
        r = run_selection(emb, method="kmeans", count=40, iterations=3, seed=seed)
        assert len(set(r.consensus.tolist())) == 40
        assert r.votes.sum() == 3 * 40


def test_empty_cluster_is_filled_from_nearest_unused() -> None:
    emb = unit_rows(50, 4, seed=5)
    red = reduce(emb, np.arange(50), np.random.default_rng(0))
    centres = red.coords[[0, 1, 2]].copy()
    labels = np.zeros(50, dtype=np.int32)  # clusters 1 and 2 are empty
    rows = pick_images(red, labels, centres)
    assert len(set(rows.tolist())) == 3
    assert rows[1] == 1 and rows[2] == 2  # each empty centre sits on its own image


def test_pins_claim_their_nearest_centre() -> None:
    emb = clustered_rows(300, 8, 4, seed=6)
    red = reduce(emb, np.arange(300), np.random.default_rng(0))
    pick = kmeans_once(red, 6, seed=1, pinned=np.array([10, 20]))
    assert pick.rows[:2].tolist() == [10, 20]
    assert len(set(pick.rows.tolist())) == 6


@pytest.mark.parametrize("seed", [0, 1])
def test_kmeans_deterministic_per_seed(seed: int) -> None:
    emb = clustered_rows(500, 20, 7, seed=7)
    a = run_selection(emb, method="kmeans", count=15, iterations=4, seed=seed)
    b = run_selection(emb, method="kmeans", count=15, iterations=4, seed=seed)
    assert np.array_equal(a.votes, b.votes) and np.array_equal(a.consensus, b.consensus)


def test_kmeans_on_reduced_high_dimensional_data(monkeypatch) -> None:
    from picksel import kmeans

    monkeypatch.setattr(kmeans, "PCA_DIMS", 8)
    monkeypatch.setattr(kmeans, "PCA_SAMPLE", 300)
    monkeypatch.setattr(kmeans, "INIT_SAMPLE", 200)
    emb = clustered_rows(900, 40, 6, seed=8)
    r = run_selection(emb, method="kmeans", count=12, iterations=3, seed=2)
    assert len(r.consensus) == 12 and r.votes.sum() == 36


def test_lloyd_checks_cancel() -> None:
    from picksel.errors import Cancelled

    x = clustered_rows(300, 6, 4, seed=9)
    with pytest.raises(Cancelled):
        lloyd(x, x[:4].copy(), cancel=lambda: True)
