"""Farthest-point sampling: batched == plain loop == brute force, exclusions, near-ties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from select_helpers import brute_fps, clustered_rows, unit_rows

from picksel import fps
from picksel.errors import Cancelled
from picksel.fps import as_unit_float32, exact_min_distance, fps_batched, fps_reference


def test_reference_matches_brute_force_float64() -> None:
    emb = unit_rows(120, 7, seed=1)
    for start in (0, 33, 119):
        assert fps_reference(emb, 15, start).tolist() == brute_fps(emb, 15, [start])


def test_reference_with_start_set_and_exclusions_matches_brute_force() -> None:
    emb = clustered_rows(150, 6, 4, seed=2)
    excluded = np.zeros(150, bool)
    excluded[[1, 2, 3, 50, 60]] = True
    got = fps_reference(emb, 12, [10, 20], excluded=excluded)
    assert got.tolist() == brute_fps(emb, 12, [10, 20], excluded)
    assert not excluded[got].any()


@pytest.mark.parametrize("seed", range(4))
def test_batched_equals_reference_for_the_same_starts(seed: int) -> None:
    emb = clustered_rows(2000, 48, 12, seed=seed)
    rng = np.random.default_rng(seed)
    starts = rng.integers(len(emb), size=9)
    excluded = np.zeros(len(emb), bool)
    excluded[rng.choice(len(emb), 200, replace=False)] = True
    starts = np.where(excluded[starts], np.flatnonzero(~excluded)[0], starts)
    got = fps_batched(emb, 40, starts, excluded=excluded)
    assert got.shape == (9, 40)
    for k, s in enumerate(starts):
        assert got[k].tolist() == fps_reference(emb, 40, int(s), excluded=excluded).tolist()
    assert not excluded[got].any()
    assert all(len(set(row.tolist())) == 40 for row in got)


def test_batched_equals_reference_with_near_ties_and_duplicates() -> None:
    # Many exact duplicates and a coarse grid of directions: lots of equal distances,
    # so the float32 screen alone would let the two implementations disagree.
    base = unit_rows(40, 5, seed=3)
    emb = np.repeat(base, 6, axis=0)
    emb = np.round(emb * 8) / 8
    emb = as_unit_float32(emb.astype(np.float32))
    starts = np.array([0, 7, 100, 239])
    got = fps_batched(emb, 60, starts)
    for k, s in enumerate(starts):
        ref = fps_reference(emb, 60, int(s))
        assert got[k].tolist() == ref.tolist()
        assert len(set(ref.tolist())) == 60  # duplicates are still distinct rows


def test_ties_go_to_the_lowest_row() -> None:
    # Rows 1 and 2 are identical and equally far from row 0: row 1 must win.
    emb = np.array([[1, 0], [0, 1], [0, 1], [-1, 0]], np.float32)
    assert fps_reference(emb, 2, 0).tolist() == [0, 3]
    assert fps_reference(emb, 3, 0).tolist() == [0, 3, 1]
    assert fps_batched(emb, 4, np.array([0])).tolist() == [[0, 3, 1, 2]]


def test_batched_start_sets() -> None:
    emb = clustered_rows(500, 16, 5, seed=5)
    pins = np.array([[3, 400, 77]])
    got = fps_batched(emb, 10, pins)
    assert got[0].tolist() == fps_reference(emb, 10, [3, 400, 77]).tolist()
    assert got[0, :3].tolist() == [3, 400, 77]


def test_batched_stops_at_available() -> None:
    emb = unit_rows(10, 3)
    excluded = np.zeros(10, bool)
    excluded[:6] = True
    got = fps_batched(emb, 8, np.array([7, 9]), excluded=excluded)
    assert got.shape == (2, 4)
    assert sorted(got[0].tolist()) == [6, 7, 8, 9]


def test_exact_min_distance_does_not_depend_on_batch() -> None:
    emb = unit_rows(300, 33, seed=6)
    chosen = np.array([4, 8, 15, 16, 23, 42])
    rows = np.arange(300)
    whole = exact_min_distance(emb, rows, chosen)
    parts = np.concatenate([exact_min_distance(emb, rows[i : i + 7], chosen) for i in range(0, 300, 7)])
    assert np.array_equal(whole, parts)
    assert np.allclose(whole, 1 - (emb.astype(np.float64) @ emb[chosen].astype(np.float64).T).max(1))


@pytest.mark.parametrize("d", [3, 64, 1024])
def test_exact_min_distance_equals_summing_every_pair(d: int) -> None:
    # The float32 screen only skips pairs; the answer must be bit for bit the float64
    # sum over every (row, centre) pair, also among near-identical centres.
    rng = np.random.default_rng(d)
    emb = unit_rows(400, d, seed=d)
    emb[200:260] = emb[0]  # exact duplicates
    emb[260:300] = as_unit_float32(emb[1] + 1e-4 * rng.standard_normal((40, d)).astype(np.float32))
    rows = rng.permutation(400)[:150]
    chosen = np.concatenate([[0, 1], rng.choice(400, 60, replace=False)])
    a = emb[rows].astype(np.float64)
    b = emb[chosen].astype(np.float64)
    full = 1.0 - (a[:, None, :] * b[None, :, :]).sum(axis=-1).max(axis=1)
    assert np.array_equal(exact_min_distance(emb, rows, chosen), full)


@pytest.mark.parametrize("centres", [40, 1500])
def test_exact_min_distance_in_centre_blocks_equals_summing_every_pair(centres: int) -> None:
    # 1,500 centres exceed the work budget of a 3,000 x 96 matrix (85 centres a block):
    # they are screened block by block against the running best screen, yet the answer
    # is the float64 sum over every pair, as with 40 centres in one block.
    rng = np.random.default_rng(centres)
    emb = unit_rows(3000, 96, seed=centres)
    emb[2000:2100] = emb[7]  # exact copies of a centre
    rows = rng.choice(3000, 80, replace=False)
    chosen = np.concatenate([[7], rng.choice(3000, centres, replace=False)])
    a = emb[rows].astype(np.float64)
    b = emb[chosen].astype(np.float64)
    full = 1.0 - np.array([(a[i] * b).sum(axis=-1).max() for i in range(len(rows))])
    assert np.array_equal(exact_min_distance(emb, rows, chosen), full)


def test_distance_rows_table_matches_products_and_keeps_the_step_rows() -> None:
    emb = unit_rows(500, 16, seed=13)
    sub = emb[::3]
    table = fps._DistanceRows(emb, sub, slots=4)
    rng = np.random.default_rng(13)
    for _ in range(30):
        centres = rng.integers(500, size=4)  # up to 4 distinct: every slot may turn over
        where = table.slots_for(centres)
        expect = 1.0 - emb[centres] @ sub.T
        assert np.allclose(table.table[where], expect, atol=1e-6)
        assert np.array_equal(table.row_at[where], centres)


def test_no_copy_for_normalised_float32() -> None:
    emb = unit_rows(50, 8)
    assert as_unit_float32(emb) is emb
    other = as_unit_float32(emb * 2)
    assert other is not emb and np.allclose(np.linalg.norm(other, axis=1), 1, atol=1e-6)


def test_batched_cancel_and_step_reports() -> None:
    emb = unit_rows(100, 4)
    steps: list[tuple[int, int]] = []
    fps_batched(emb, 6, np.array([0, 1]), on_step=lambda d, t: steps.append((d, t)))
    assert steps == [(i, 5) for i in range(1, 6)]
    calls = []

    def cancel() -> bool:
        calls.append(1)
        return len(calls) > 3

    with pytest.raises(Cancelled):
        fps_batched(emb, 20, np.array([0, 1]), cancel=cancel)


def test_exact_path_is_used_on_ties(monkeypatch) -> None:
    calls = []
    real = fps.exact_min_distance

    def spy(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(fps, "exact_min_distance", spy)
    emb = np.array([[1, 0], [0, 1], [0, 1], [-1, 0]], np.float32)
    fps_reference(emb, 3, 0)
    assert calls


def test_run_selection_fps_memory_stays_within_half_the_matrix() -> None:
    import tracemalloc

    from picksel.select import run_selection

    emb = unit_rows(20_000, 768, seed=11)
    excluded = np.zeros(len(emb), bool)
    excluded[::17] = True
    tracemalloc.start()
    try:
        run_selection(emb, method="fps", count=30, iterations=20, seed=2, excluded=excluded)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert 1.0 + peak / emb.nbytes <= 1.5


def test_split_refresh_matches_plain_product(monkeypatch) -> None:
    # Small thresholds so the two-thread, multi-block refresh pass runs on a small album.
    monkeypatch.setattr(fps, "SPLIT_ROWS", 100)
    monkeypatch.setattr(fps, "REFRESH_BLOCK", 64)
    emb = unit_rows(1000, 24, seed=12)
    centres = np.array([[3, 500], [999, 3]])
    mins = np.full((2, 1000), np.inf, np.float32)
    fps._absorb(emb, mins, centres)
    expect = 1.0 - np.stack([(emb @ emb[c].T).max(axis=1) for c in centres])
    assert np.allclose(mins, expect, atol=1e-6)
    starts = np.array([1, 700, 999])
    got = fps_batched(emb, 25, starts)
    for k, s in enumerate(starts):
        assert got[k].tolist() == fps_reference(emb, 25, int(s)).tolist()


@pytest.mark.parametrize("candidates", [1, 2, 5, 40])
def test_batched_equals_reference_whatever_the_candidate_count(monkeypatch, candidates: int) -> None:
    # Few candidates force a pass over the matrix almost every step; many let runs go
    # long stretches on their candidates alone. Both must pick what the plain loop picks.
    monkeypatch.setattr(fps, "CANDIDATES", candidates)
    emb = clustered_rows(600, 32, 8, seed=candidates)
    excluded = np.zeros(600, bool)
    excluded[::13] = True
    starts = np.array([[0, 5], [100, 250], [599, 1]])
    got = fps_batched(emb, 50, starts, excluded=excluded)
    for k, pins in enumerate(starts):
        assert got[k].tolist() == fps_reference(emb, 50, pins, excluded=excluded).tolist()


def test_batched_on_few_rows_returns_them_all() -> None:
    # Candidates cover every row: the bound is -inf and runs never need another pass.
    emb = unit_rows(7, 3, seed=13)
    got = fps_batched(emb, 50, np.array([0, 3, 6]))
    assert got.shape == (3, 7)
    for k, s in enumerate([0, 3, 6]):
        assert got[k].tolist() == fps_reference(emb, 50, s).tolist()


def test_batched_passes_over_the_matrix_only_now_and_then(monkeypatch) -> None:
    # The point of the candidate sets: far fewer full passes than greedy steps.
    passes = []
    real = fps._absorb
    monkeypatch.setattr(fps, "_absorb", lambda *a: (passes.append(1), real(*a)))
    emb = clustered_rows(5000, 64, 20, seed=14)
    got = fps_batched(emb, 100, np.array([1, 2, 3, 4]))
    assert got[0].tolist() == fps_reference(emb, 100, 1).tolist()
    assert len(passes) < 30


def test_exact_copies_finds_copies_of_available_rows_only() -> None:
    emb = unit_rows(50, 6, seed=21)
    emb[[10, 30, 45]] = emb[3]  # three copies of row 3
    emb[[20, 40]] = emb[7]
    emb[41] = emb[7] + np.float32(1e-7)  # nearly, not exactly, a copy: never masked
    got = fps.exact_copies(emb)
    assert got is not None
    assert np.flatnonzero(got.mask).tolist() == [10, 20, 30, 40, 45]
    assert got.group[[3, 10, 30, 45, 7, 20, 40, 41, 0]].tolist() == [3, 3, 3, 3, 7, 7, 7, 41, 0]
    assert abs(got.self_distance) < 1e-6
    excluded = np.zeros(50, bool)
    excluded[3] = True  # the first of a group excluded: the next copy becomes the one kept
    got = fps.exact_copies(emb, excluded)
    assert np.flatnonzero(got.mask).tolist() == [20, 30, 40, 45]
    assert got.group[[10, 30, 45]].tolist() == [10, 10, 10]
    assert fps.exact_copies(unit_rows(50, 6, seed=22)) is None


def test_album_of_many_copies_masked_runs_and_fallback(monkeypatch) -> None:
    # 40 distinct images, 25 copies each, scattered. Count 30: the copies never compete
    # and stay masked. Count 60 (more than the distinct images): the masked runs cannot
    # be that long, so the unmasked runs give the answer. Both equal the plain loop.
    rng = np.random.default_rng(23)
    base = clustered_rows(40, 16, 5, seed=23)
    emb = np.ascontiguousarray(base[rng.permutation(np.repeat(np.arange(40), 25))])
    calls = []
    real = fps._fps_batched
    monkeypatch.setattr(fps, "_fps_batched", lambda *a: (calls.append(a[3] is not None), real(*a))[1])
    starts = np.array([0, 17, 999])
    for count, runs in ((30, [True]), (60, [True, False])):
        calls.clear()
        got = fps_batched(emb, count, starts)
        assert calls == runs
        for k, s0 in enumerate(starts):
            assert got[k].tolist() == fps_reference(emb, count, int(s0)).tolist()


@st.composite
def fps_cases(draw):
    n = draw(st.integers(2, 60))
    d = draw(st.integers(2, 8))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    emb = rng.standard_normal((n, d)).astype(np.float32)
    if draw(st.booleans()):  # coarse grid: duplicates and exact ties everywhere
        emb = np.round(emb)
        emb[np.all(emb == 0, axis=1), 0] = 1.0
    distinct = draw(st.integers(1, n))
    if distinct < n and draw(st.booleans()):  # exact copies, scattered: few distinct rows
        emb = emb[rng.integers(distinct, size=n)]
    emb = np.ascontiguousarray(as_unit_float32(emb))
    excluded = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    free = np.flatnonzero(~excluded)
    if free.size == 0:
        excluded[0] = False
        free = np.array([0])
    k = draw(st.integers(1, 4))
    s = draw(st.integers(1, min(2, free.size)))
    starts = np.stack([rng.choice(free, s, replace=False) for _ in range(k)])
    return emb, excluded, starts, draw(st.integers(1, n + 2)), draw(st.integers(1, n))


# How the runs are advanced: lazy only; plain batched steps from the start; lazy, then
# plain batched steps from the first pass that comes soon after another.
STRATEGIES = {
    "lazy": {"DENSE_ROWS": 0, "DENSE_AFTER": 10**9},
    "dense": {"DENSE_ROWS": 10**9},
    "switch": {"DENSE_ROWS": 0, "DENSE_AFTER": 1, "DENSE_GAP": 2},
    # plain steps with a table of one distance row per run (evictions every step) and
    # one run per block of the fused update
    "dense-evicting": {"DENSE_ROWS": 10**9, "DISTANCE_ROWS": 0.0, "RUN_BLOCK": 1},
}


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=fps_cases(), strategy=st.sampled_from(sorted(STRATEGIES)))
def test_batched_equals_reference_property(monkeypatch, case, strategy) -> None:
    # Whatever the candidate count (1 = a pass almost every step, n = never a second
    # pass) and the way the runs advance, the batched runs pick exactly what the plain
    # loop picks, also with more picks than distinct rows.
    emb, excluded, starts, count, candidates = case
    monkeypatch.setattr(fps, "CANDIDATES", candidates)
    for name, value in STRATEGIES[strategy].items():
        monkeypatch.setattr(fps, name, value)
    mask = excluded if excluded.any() else None
    got = fps_batched(emb, count, starts, excluded=mask)
    for k, pins in enumerate(starts):
        assert got[k].tolist() == fps_reference(emb, count, pins, excluded=mask).tolist()


def _spy_dense(monkeypatch) -> list[int]:
    starts_at: list[int] = []
    real = fps._dense_steps
    monkeypatch.setattr(fps, "_dense_steps", lambda emb, picks, mins, start, *a: (
        starts_at.append(start), real(emb, picks, mins, start, *a))[1])
    return starts_at


@pytest.mark.parametrize("distinct", [10, 60])
def test_more_picks_than_distinct_rows_switches_to_plain_steps(monkeypatch, distinct: int) -> None:
    # 2,000 rows holding `distinct` vectors, count 80: the masked runs run out of
    # distinct rows, go on unmasked from their common prefix, and the lazy passes would
    # come every step, so the runs switch to plain batched steps. Same picks as the loop.
    # (Below MAX_EXACT rows: with more near-ties than that, both sides fall back to a
    # float32 argmax, which depends on how BLAS rounded each product.)
    rng = np.random.default_rng(distinct)
    base = clustered_rows(distinct, 24, 4, seed=distinct)
    emb = np.ascontiguousarray(base[rng.integers(distinct, size=2000)])
    starts = rng.integers(2000, size=4)
    monkeypatch.setattr(fps, "DENSE_ROWS", 0)  # start lazy, whatever the album size
    dense = _spy_dense(monkeypatch)
    got = fps_batched(emb, 80, starts)
    assert dense, "the runs never switched to plain batched steps"
    for k, s0 in enumerate(starts):
        assert got[k].tolist() == fps_reference(emb, 80, int(s0)).tolist()


def test_small_album_large_count_runs_plain_steps_and_matches(monkeypatch) -> None:
    # Count near the album size: candidate sets would cover most rows, so the runs are
    # plain batched steps from the start, near-ties decided exactly from each row's
    # nearest pick (clustered rows: many ties late in the runs).
    emb = clustered_rows(400, 32, 6, seed=31, spread=0.05)
    excluded = np.zeros(400, bool)
    excluded[::11] = True
    starts = np.array([[0, 399], [5, 6], [200, 17]])
    dense = _spy_dense(monkeypatch)
    got = fps_batched(emb, 300, starts, excluded=excluded)
    assert dense == [2]  # from the start rows on
    for k, pins in enumerate(starts):
        assert got[k].tolist() == fps_reference(emb, 300, pins, excluded=excluded).tolist()


def _clip_like(n: int, d: int, clusters: int = 300) -> np.ndarray:
    """Unit vectors shaped like CLIP's on a photo collection (as bench_select builds
    them): a shared direction, uneven clusters on a 96-d subspace, full-width noise."""
    rng = np.random.default_rng(0)
    basis = rng.standard_normal((96, d)).astype(np.float32) / np.sqrt(d)
    common = rng.standard_normal(d).astype(np.float32)
    centres = rng.standard_normal((clusters, 96)).astype(np.float32) @ basis
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    centres += common / np.linalg.norm(common)
    labels = rng.choice(clusters, size=n, p=rng.dirichlet(np.full(clusters, 0.7)))
    spread = rng.uniform(0.5, 1.5, clusters).astype(np.float32) * 0.8
    noise = rng.standard_normal((n, d), dtype=np.float32) / np.sqrt(d)
    return as_unit_float32(centres[labels] + noise * spread[labels, None])


def test_lazy_runs_do_not_go_plain_on_the_first_steps(monkeypatch) -> None:
    # Early picks move every row's distance a lot, so the first passes come a step or
    # two apart in every regime; switching to plain steps then (it did at step 4 on
    # 100,000 clustered rows) made the common case 3-5x slower. Same picks either way.
    x = _clip_like(30_000, 768)
    rng = np.random.default_rng(1)
    starts = rng.integers(0, len(x), 20)
    switched: list[int] = []
    real = fps._dense_steps

    def spy(emb, picks, mins, start, *args, **kwargs):
        switched.append(start)
        return real(emb, picks, mins, start, *args, **kwargs)

    monkeypatch.setattr(fps, "_dense_steps", spy)
    picks = fps.fps_batched(x, 200, starts)
    assert not switched or min(switched) >= 32, switched
    for r in (0, 7):
        assert np.array_equal(picks[r], fps.fps_reference(x, 200, int(starts[r])))
