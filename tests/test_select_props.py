"""Property tests of the consensus over random small albums, exclusions and pins."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from picksel.fps import as_unit_float32, fps_reference
from picksel.select import METHODS, run_selection


@st.composite
def albums(draw):
    n = draw(st.integers(1, 40))
    d = draw(st.integers(2, 6))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    emb = rng.standard_normal((n, d)).astype(np.float32)
    if draw(st.booleans()):  # duplicates and ties
        emb = np.round(emb)
        emb[np.all(emb == 0, axis=1), 0] = 1.0
    if draw(st.booleans()):  # exact copies of a few rows: counts beyond the distinct rows
        emb = emb[rng.integers(draw(st.integers(1, n)), size=n)]
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    excluded = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    if excluded.all():
        excluded[draw(st.integers(0, n - 1))] = False
    count = draw(st.integers(1, n + 3))
    pin_pool = draw(st.lists(st.integers(0, n - 1), max_size=3, unique=True))
    return emb, excluded, count, pin_pool[:count]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    album=albums(),
    method=st.sampled_from(METHODS),
    iterations=st.integers(1, 5),
    seed=st.integers(0, 2**40),
)
def test_consensus_properties(album, method, iterations, seed) -> None:
    emb, excluded, count, pins = album
    available = int((~excluded).sum())
    kept_pins = [p for p in pins if not excluded[p]]
    r = run_selection(
        emb, method=method, count=count, iterations=iterations, seed=seed, excluded=excluded, pinned=pins
    )
    size = min(count, available)
    assert len(r.consensus) == size
    assert len(set(r.consensus.tolist())) == size
    assert not excluded[r.consensus].any()
    assert (r.votes[excluded] == 0).all()
    assert (r.votes >= 0).all() and (r.votes <= iterations).all()
    assert int(r.votes.sum()) == iterations * size
    assert set(kept_pins) <= set(r.consensus.tolist())
    assert (r.votes[kept_pins] == iterations).all()
    # consensus is ordered by votes, and every voted row outside it has no more votes
    assert (np.diff(r.votes[r.consensus]) <= 0).all()
    outside = np.setdiff1d(np.flatnonzero(r.votes), r.consensus)
    if outside.size:
        assert r.votes[outside].max() <= r.votes[r.consensus].min()
    tiers = r.tiers
    assert set(tiers[r.votes > 0].tolist()) <= {"core", "stable", "variable"}
    assert (tiers[r.votes == 0] == "").all()
    again = run_selection(
        emb, method=method, count=count, iterations=iterations, seed=seed, excluded=excluded, pinned=pins
    )
    assert np.array_equal(r.votes, again.votes)
    assert np.array_equal(r.consensus, again.consensus)


@st.composite
def fps_regimes(draw):
    """Albums in the shapes where batched FPS changes strategy: exact copies, a count
    near the number of distinct images, a count of at least half the album, small
    albums with many iterations (two batches of runs)."""
    regime = draw(st.sampled_from(["copies", "near distinct", "half the album", "many iterations"]))
    n = draw(st.integers(8, 90))
    d = draw(st.integers(2, 12))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    emb = rng.standard_normal((n, d)).astype(np.float32)
    if draw(st.booleans()):  # coarse grid: near-ties everywhere
        emb = np.round(emb)
        emb[np.all(emb == 0, axis=1), 0] = 1.0
    distinct = n
    if regime in ("copies", "near distinct"):
        distinct = draw(st.integers(1, max(1, n // 3)))
        emb = emb[rng.integers(distinct, size=n)]
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    excluded = rng.random(n) < draw(st.sampled_from([0.0, 0.2]))
    if excluded.all():
        excluded[0] = False
    if regime == "near distinct":
        count = max(1, distinct + draw(st.integers(-2, 2)))
    elif regime == "half the album":
        count = draw(st.integers(max(1, n // 2), n))
    else:
        count = draw(st.integers(1, max(1, n // 4)))
    iterations = draw(st.integers(51, 100)) if regime == "many iterations" else draw(st.integers(1, 8))
    pins = [int(p) for p in draw(st.lists(st.integers(0, n - 1), max_size=2, unique=True))]
    return emb, excluded, count, iterations, pins[:count] if draw(st.booleans()) else []


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=fps_regimes(), seed=st.integers(0, 2**40))
def test_fps_votes_equal_the_plain_loop_in_every_regime(case, seed) -> None:
    # The votes of run_selection are those of the plain per-iteration loop run from the
    # same start rows (same seed children), whichever strategy batched FPS took.
    emb, excluded, count, iterations, pins = case
    r = run_selection(emb, method="fps", count=count, iterations=iterations, seed=seed,
                      excluded=excluded, pinned=pins)
    unit = as_unit_float32(emb)
    mask = excluded if excluded.any() else None
    avail = np.flatnonzero(~excluded)
    kept = [p for p in pins if not excluded[p]]
    size = min(count, avail.size)
    votes = np.zeros(len(emb), dtype=np.int64)
    if size == avail.size:
        votes[avail] = iterations
    elif kept:
        votes[fps_reference(unit, size, kept, excluded=mask)] = iterations
    else:
        for child in np.random.SeedSequence(seed).spawn(iterations):
            start = int(avail[np.random.default_rng(child).integers(avail.size)])
            votes[fps_reference(unit, size, start, excluded=mask)] += 1
    assert np.array_equal(r.votes, votes)
