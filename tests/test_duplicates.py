"""picksel.duplicates: exact multi-index search, union-find groups, keeper choice, and
precision/recall on altered copies of real photos (issue 10 acceptance)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from quality_helpers import pair_scores, write_altered_album

from picksel.check import check_album
from picksel.duplicates import (
    exact_pairs,
    group,
    hamming_pairs,
    hamming_pairs_brute,
    popcount,
    union_find,
)
from picksel.quality import Thresholds

u64 = st.integers(min_value=0, max_value=2**64 - 1)


@st.composite
def clustered_hashes(draw: st.DrawFn) -> np.ndarray:
    """Hashes with planted near neighbours (random 64-bit hashes are almost never close)."""
    base = draw(st.lists(u64, min_size=1, max_size=12))
    out = list(base)
    for b in base:
        for flips in draw(st.lists(st.lists(st.integers(0, 63), max_size=12), max_size=3)):
            v = b
            for bit in flips:
                v ^= 1 << bit
            out.append(v)
    return np.array(out, np.uint64)


@settings(max_examples=150, deadline=None)
@given(clustered_hashes(), st.integers(0, 10), st.integers(3, 5))
def test_multi_index_search_equals_brute_force(hashes: np.ndarray, radius: int, bands: int) -> None:
    fast = hamming_pairs(hashes, radius, bands)
    assert np.array_equal(fast, hamming_pairs_brute(hashes, radius))


@given(st.lists(u64, max_size=40))
def test_popcount_matches_python(values: list[int]) -> None:
    arr = np.array(values, np.uint64)
    assert popcount(arr).tolist() == [bin(v).count("1") for v in values]


def _components(n: int, pairs: list[tuple[int, int]]) -> set[frozenset[int]]:
    """Reference: connected components by repeated merging of sets."""
    comps = [{i} for i in range(n)]
    for a, b in pairs:
        ca = next(c for c in comps if a in c)
        cb = next(c for c in comps if b in c)
        if ca is not cb:
            ca |= cb
            comps.remove(cb)
    return {frozenset(c) for c in comps}


@given(st.integers(1, 30).flatmap(
    lambda n: st.tuples(st.just(n), st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=40))
))
def test_union_find_equals_connected_components(case: tuple[int, list[tuple[int, int]]]) -> None:
    n, pairs = case
    labels = union_find(n, np.array(pairs, np.int64).reshape(-1, 2))
    got: dict[int, set[int]] = {}
    for i, lab in enumerate(labels.tolist()):
        got.setdefault(lab, set()).add(i)
        assert lab == min(got[lab])  # the label is the smallest member
    assert {frozenset(c) for c in got.values()} == _components(n, pairs)


def test_exact_pairs_link_equal_hashes_only() -> None:
    h = np.array([5, 7, 5, 9, 7, 5], np.uint64)
    labels = union_find(6, exact_pairs(h))
    assert labels.tolist() == [0, 1, 0, 3, 1, 0]


def test_keeper_is_pinned_then_largest_then_sharpest_then_first_path() -> None:
    paths = ["a.jpg", "b.jpg", "c.jpg", "d.jpg"]
    pairs = np.array([[0, 1], [1, 2], [2, 3]])
    hashes = np.array([1, 2, 3, 4], np.uint64)
    pixels = np.array([100, 400, 400, 50], float)
    sharp = np.array([1.0, 0.5, 0.9, 2.0])
    assert group(4, pairs, hashes, paths, pixels, sharp)[0].keep == 2  # largest, then sharpest
    assert group(4, pairs, hashes, paths, pixels, sharp, {"d.jpg"})[0].keep == 3  # pinned
    same = group(4, pairs, hashes, paths, np.ones(4), np.ones(4))[0]
    assert same.keep == 0 and same.copies == [1, 2, 3] and same.kind == "near"
    exact = group(2, np.array([[0, 1]]), np.array([7, 7], np.uint64), paths[:2], np.ones(2), np.ones(2))
    assert exact[0].kind == "exact"


@pytest.fixture(scope="module")
def altered(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("altered")
    truth = write_altered_album(root)
    result = check_album(root, sorted(truth), root / ".picksel", Thresholds())
    return truth, result


def test_altered_copies_are_grouped_with_their_originals(altered) -> None:
    truth, result = altered
    assert len(result.paths) == len(truth) >= 100
    groups = [[result.paths[g.keep]] + [result.paths[i] for i in g.copies] for g in result.groups]
    precision, recall = pair_scores(groups, truth)
    assert precision >= 0.95 and recall >= 0.9, (precision, recall)


def test_a_resaved_png_of_a_jpeg_is_an_exact_duplicate(tmp_path: Path) -> None:
    from PIL import Image
    from quality_helpers import originals

    img = originals()["chelsea"]
    img.save(tmp_path / "a.jpg", quality=80)
    with Image.open(tmp_path / "a.jpg") as im:
        im.convert("RGB").save(tmp_path / "b.png")
    img.save(tmp_path / "c.jpg", quality=60)  # same photo, other pixels: near, not exact
    result = check_album(tmp_path, ["a.jpg", "b.png", "c.jpg"], tmp_path / ".picksel", Thresholds())
    assert len(result.groups) == 1
    g = result.groups[0]
    assert sorted([result.paths[g.keep]] + [result.paths[i] for i in g.copies]) == ["a.jpg", "b.png", "c.jpg"]
    assert g.kind == "near"
    pair = check_album(tmp_path, ["a.jpg", "b.png"], tmp_path / ".picksel", Thresholds())
    assert [gr.kind for gr in pair.groups] == ["exact"]
