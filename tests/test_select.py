"""Monte Carlo selection: validation, edge cases, exclusions, pins, progress, cancel."""

from __future__ import annotations

import numpy as np
import pytest
from select_helpers import clustered_rows, mask_from_paths, unit_rows

from picksel import select as sel
from picksel.errors import Cancelled, UsageError
from picksel.select import METHODS, SelectionResult, run_selection, tier_of, validate


def test_tier_thresholds() -> None:
    assert tier_of(100.0) == "core"
    assert tier_of(90.0) == "core"
    assert tier_of(89.99) == "stable"
    assert tier_of(70.0) == "stable"
    assert tier_of(69.9) == "variable"
    assert tier_of(5.0) == "variable"


def test_frequency_and_tiers_from_votes() -> None:
    votes = np.array([0, 9, 10, 7, 6, 1], dtype=np.int32)
    r = SelectionResult(
        method="fps",
        count=3,
        iterations=10,
        seed=1,
        votes=votes,
        consensus=np.array([2, 1, 3]),
        excluded=np.zeros(6, bool),
    )
    assert r.frequency.tolist() == [0.0, 90.0, 100.0, 70.0, 60.0, 10.0]
    assert r.tiers.tolist() == ["", "core", "core", "stable", "variable", "variable"]


def test_frequency_is_exact_for_thresholds() -> None:
    # 63/90 = 70 % and 81/90 = 90 % must land in the higher tier, not just below it.
    votes = np.array([63, 81], dtype=np.int32)
    r = SelectionResult("fps", 2, 90, 0, votes, np.array([1, 0]), np.zeros(2, bool))
    assert r.tiers.tolist() == ["stable", "core"]


@pytest.mark.parametrize(
    ("count", "iterations", "expected"),
    [(20, 20, (20, 20)), ("20", "7", (20, 7)), (" 5 ", 100, (5, 100)), (np.int64(3), 1, (3, 1)), (500, 1, (50, 1))],
)
def test_validate_accepts_whole_numbers(count, iterations, expected) -> None:
    assert validate(count, iterations, 50) == expected


@pytest.mark.parametrize(
    ("count", "iterations", "field"),
    [
        (0, 20, "count"),
        (-3, 20, "count"),
        ("2.5", 20, "count"),
        (2.5, 20, "count"),
        ("abc", 20, "count"),
        (True, 20, "count"),
        (None, 20, "count"),
        (10, 0, "iterations"),
        (10, 101, "iterations"),
        (10, "2.5", "iterations"),
        (10, None, "iterations"),
        (10, False, "iterations"),
    ],
)
def test_validate_rejects_with_field_and_range(count, iterations, field) -> None:
    with pytest.raises(UsageError) as err:
        validate(count, iterations, 50)
    msg = str(err.value)
    assert msg.startswith(field)
    assert ("1 to 100" in msg) if field == "iterations" else ("at least 1" in msg)


def test_empty_album_message() -> None:
    with pytest.raises(UsageError, match="the album has no indexed images"):
        run_selection(np.zeros((0, 8), np.float32), method="fps", count=3, iterations=2)


def test_all_excluded_message() -> None:
    emb = unit_rows(7, 4)
    with pytest.raises(UsageError, match="all 7 images are excluded; clear some exclusions"):
        run_selection(emb, method="kmeans", count=3, iterations=2, excluded=np.ones(7, bool))


def test_unknown_method() -> None:
    with pytest.raises(UsageError, match="method must be one of fps, kmeans"):
        run_selection(unit_rows(5, 3), method="random", count=2, iterations=1)


@pytest.mark.parametrize("method", METHODS)
def test_count_at_least_available_returns_all_available(method: str) -> None:
    emb = unit_rows(12, 5)
    excluded = np.zeros(12, bool)
    excluded[[0, 5]] = True
    r = run_selection(emb, method=method, count=40, iterations=4, seed=1, excluded=excluded)
    assert r.count == 10
    assert sorted(r.consensus.tolist()) == [i for i in range(12) if i not in (0, 5)]
    assert (r.votes[~excluded] == 4).all() and (r.votes[excluded] == 0).all()


@pytest.mark.parametrize("method", METHODS)
def test_seed_none_is_drawn_recorded_and_reproducible(method: str) -> None:
    emb = clustered_rows(300, 16, 6, seed=2)
    first = run_selection(emb, method=method, count=10, iterations=5)
    assert isinstance(first.seed, int) and first.seed >= 0
    again = run_selection(emb, method=method, count=10, iterations=5, seed=first.seed)
    assert np.array_equal(first.votes, again.votes)
    assert np.array_equal(first.consensus, again.consensus)


@pytest.mark.parametrize("method", METHODS)
def test_different_seeds_vary(method: str) -> None:
    emb = clustered_rows(400, 16, 8, seed=3)
    a = run_selection(emb, method=method, count=10, iterations=3, seed=1)
    b = run_selection(emb, method=method, count=10, iterations=3, seed=2)
    assert not np.array_equal(a.votes, b.votes)


def test_kmeans_progress_is_one_call_per_iteration_in_order() -> None:
    calls: list[tuple[int, int, str]] = []
    run_selection(
        clustered_rows(200, 8, 5),
        method="kmeans",
        count=6,
        iterations=7,
        seed=0,
        progress=lambda d, t, m: calls.append((d, t, m)),
    )
    assert calls == [(i, 7, f"Iteration {i}/7") for i in range(1, 8)]


@pytest.mark.parametrize("pinned", [None, [3, 50]])
def test_fps_progress_moves_evenly_in_work_units(monkeypatch, pinned) -> None:
    # All iterations of a chunk advance together, so progress counts greedy steps x
    # iterations: every step of every chunk moves it, in order, to total/total.
    monkeypatch.setattr(sel, "FPS_BATCH", 3)  # several FPS chunks
    calls: list[tuple[int, int, str]] = []
    run_selection(
        clustered_rows(200, 8, 5),
        method="fps",
        count=6,
        iterations=7,
        seed=0,
        pinned=pinned,
        progress=lambda d, t, m: calls.append((d, t, m)),
    )
    total = (6 - len(pinned or [0])) * 7  # greedy steps after the start row(s) x iterations
    assert {t for _, t, _ in calls} == {total}
    done = [d for d, _, _ in calls]
    assert done == sorted(set(done)) and done[-1] == total
    if not pinned:
        assert len(done) == 5 * 3  # one report per greedy step of each of the 3 chunks
    assert calls[-1][2] == "100% of 7 iterations"


@pytest.mark.parametrize("method", METHODS)
def test_cancel_raises_cancelled(method: str) -> None:
    seen: list[int] = []

    def cancel() -> bool:
        return len(seen) >= 2

    with pytest.raises(Cancelled):
        run_selection(
            clustered_rows(300, 8, 5),
            method=method,
            count=8,
            iterations=10,
            seed=0,
            progress=lambda d, t, m: seen.append(d),
            cancel=cancel,
        )
    assert len(seen) == 2


def test_cancel_before_start() -> None:
    with pytest.raises(Cancelled):
        run_selection(unit_rows(20, 4), method="fps", count=3, iterations=2, cancel=lambda: True)


@pytest.mark.parametrize("method", METHODS)
def test_excluding_rows_by_index_excludes_exactly_those_rows(method: str) -> None:
    emb = clustered_rows(240, 12, 6, seed=4)
    plain = run_selection(emb, method=method, count=30, iterations=6, seed=5)
    # Exclude the rows the unrestricted run liked most: they must vanish, nothing else.
    target = plain.consensus[:12]
    excluded = np.zeros(len(emb), bool)
    excluded[target] = True
    r = run_selection(emb, method=method, count=30, iterations=6, seed=5, excluded=excluded)
    assert np.array_equal(r.excluded, excluded)
    assert not np.isin(r.consensus, target).any()
    assert (r.votes[target] == 0).all()
    assert r.votes.sum() == 6 * 30
    # Index sequences work like masks.
    r2 = run_selection(emb, method=method, count=30, iterations=6, seed=5, excluded=list(target))
    assert np.array_equal(r.votes, r2.votes)


@pytest.mark.parametrize("method", METHODS)
def test_exclusions_follow_rows_under_a_shuffled_mapping(method: str) -> None:
    """The reference masked sorted positions instead of raw rows. With pins as the
    start set FPS is deterministic, so a permuted album with the same images pinned and
    excluded must pick the same images; K-Means must at least keep the right ones out."""
    emb = clustered_rows(150, 10, 5, seed=6)
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(emb))  # new row j holds old image perm[j]
    inv = np.argsort(perm)
    paths = [f"img/{i:03d}.jpg" for i in range(len(emb))]
    shuffled_paths = [paths[p] for p in perm]
    excluded_paths = {paths[i] for i in (3, 17, 42, 99, 120)}
    pinned_rows = [8, 77]

    ex_a = mask_from_paths(paths, excluded_paths)
    ex_b = mask_from_paths(shuffled_paths, excluded_paths)
    assert sorted(perm[np.flatnonzero(ex_b)].tolist()) == [3, 17, 42, 99, 120]

    a = run_selection(emb, method=method, count=20, iterations=3, seed=1, excluded=ex_a, pinned=pinned_rows)
    b = run_selection(
        emb[perm], method=method, count=20, iterations=3, seed=1, excluded=ex_b, pinned=inv[pinned_rows]
    )
    for res, names, mask in ((a, paths, ex_a), (b, shuffled_paths, ex_b)):
        picked = {names[i] for i in res.consensus}
        assert not picked & excluded_paths
        assert (res.votes[mask] == 0).all()
        assert {names[i] for i in np.flatnonzero(res.votes)}.isdisjoint(excluded_paths)
    if method == "fps":
        assert [paths[i] for i in a.consensus] == [shuffled_paths[i] for i in b.consensus]


@pytest.mark.parametrize("method", METHODS)
def test_pins_always_in_consensus(method: str) -> None:
    emb = clustered_rows(300, 10, 6, seed=7)
    pins = [5, 150, 299]
    r = run_selection(emb, method=method, count=12, iterations=5, seed=3, pinned=pins)
    assert set(pins) <= set(r.consensus.tolist())
    assert (r.votes[pins] == 5).all()
    assert r.consensus[:3].tolist() == pins  # equal votes: pins were picked first
    mask = np.zeros(300, bool)
    mask[pins] = True
    r2 = run_selection(emb, method=method, count=12, iterations=5, seed=3, pinned=mask)
    assert np.array_equal(r.votes, r2.votes)


def test_more_pins_than_count_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="3 images are pinned but count is 2"):
        run_selection(unit_rows(30, 4), method="fps", count=2, iterations=2, pinned=[1, 2, 3])


def test_excluded_pin_is_excluded() -> None:
    excluded = np.zeros(40, bool)
    excluded[4] = True
    r = run_selection(unit_rows(40, 6), method="fps", count=5, iterations=2, pinned=[4, 9], excluded=excluded)
    assert 4 not in r.consensus and 9 in r.consensus and r.votes[4] == 0


def test_consensus_ties_broken_by_first_pick_then_row() -> None:
    votes, ranked = sel.consensus_order([np.array([7, 3, 5]), np.array([5, 1, 2])], 8)
    assert votes.tolist() == [0, 1, 1, 1, 0, 2, 0, 1]
    # 5 has two votes; then first iteration's order 7, 3; then second iteration's 1, 2.
    assert ranked.tolist() == [5, 7, 3, 1, 2]


def test_unnormalised_and_float64_input_is_normalised() -> None:
    emb = unit_rows(80, 6, seed=9)
    a = run_selection(emb, method="fps", count=8, iterations=3, seed=4)
    b = run_selection((emb * 3.0).astype(np.float64), method="fps", count=8, iterations=3, seed=4)
    assert np.array_equal(a.votes, b.votes)
