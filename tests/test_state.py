"""picksel.state: persistence by path, corrupt-file recovery, curator operations."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from picksel.errors import PickselError, UsageError
from picksel.state import (
    AlbumState,
    SavedSelection,
    Settings,
    clear_exclusions,
    clear_selection,
    exclude_at_or_above,
    included_paths,
    load_state,
    save_state,
    set_excluded,
    set_favorites,
    set_pinned,
    toggle_excluded,
    toggle_pin,
)


@dataclass
class FakeResult:
    """Stand-in for picksel.select.SelectionResult (only the attributes state uses)."""

    method: str
    count: int
    iterations: int
    seed: int
    votes: np.ndarray
    consensus: np.ndarray

    @property
    def frequency(self) -> np.ndarray:
        return self.votes / self.iterations * 100


PATHS = ["a/01.png", "a/02.png", "b/01.png", "top.jpg", "b/c/deep.webp"]


def make_selection() -> SavedSelection:
    res = FakeResult(
        method="fps",
        count=3,
        iterations=10,
        seed=7,
        votes=np.array([10, 9, 0, 7, 3], dtype=np.int32),
        consensus=np.array([0, 1, 3], dtype=np.int64),
    )
    return SavedSelection.from_result(res, PATHS, "fp1")


def test_from_result_maps_rows_to_paths():
    sel = make_selection()
    assert sel.consensus == ["a/01.png", "a/02.png", "top.jpg"]
    assert sel.votes == {"a/01.png": 10, "a/02.png": 9, "top.jpg": 7, "b/c/deep.webp": 3}
    assert sel.seed == 7 and sel.iterations == 10 and sel.fingerprint == "fp1"
    assert sel.frequency("a/02.png") == 90.0
    assert sel.frequency("b/01.png") == 0.0
    assert sel.tier("a/01.png") == "core"
    assert sel.tier("top.jpg") == "stable"
    assert sel.tier("b/c/deep.webp") == "variable"
    assert sel.tier("b/01.png") == ""
    assert all(isinstance(v, int) for v in sel.votes.values())


def test_from_result_rejects_mismatched_paths():
    res = FakeResult("fps", 1, 2, 0, np.array([1, 2]), np.array([1]))
    with pytest.raises(ValueError):
        SavedSelection.from_result(res, ["only-one.png"], "x")


def test_missing_file_gives_defaults(tmp_path: Path):
    state, warning = load_state(tmp_path / ".picksel")
    assert warning is None
    assert state == AlbumState()
    assert state.settings == Settings(method="fps", count=20, iterations=20, threshold=90, seed=None)


def test_round_trip_survives_reindex_and_odd_names(tmp_path: Path):
    odd = os.fsdecode(b"raw/\xff\xfe-name.png")  # surrogate-escaped non-UTF-8 bytes
    assert "\udcff" in odd
    state = AlbumState()
    state.excluded = {odd, "ünïcødé/日本.jpg", 'we"ird\\name\n.png'}
    state.pins = {"a/01.png"}
    state.favorites = ["top.jpg", odd]
    state.settings = Settings(method="kmeans", count=150, iterations=30, threshold=75, seed=123)
    state.export_path = "/tmp/out"
    state.inventory_path = "inv.tsv"
    state.selection = make_selection()
    save_state(tmp_path, state)
    raw = (tmp_path / "state.json").read_bytes()
    raw.decode("ascii")  # ensure_ascii: surrogates stored as \udcXX escapes
    data = json.loads(raw)
    assert data["version"] == 1
    loaded, warning = load_state(tmp_path)
    assert warning is None
    assert loaded == state
    assert os.fsencode(sorted(loaded.excluded & {odd}).pop()) == b"raw/\xff\xfe-name.png"


names = st.one_of(
    st.text(min_size=1, max_size=20),
    st.binary(min_size=1, max_size=20).map(os.fsdecode),
)


@settings(max_examples=60, deadline=None)
@given(excluded=st.sets(names, max_size=6), favorites=st.lists(names, max_size=6), export=st.none() | names)
def test_round_trip_property(tmp_path_factory, excluded, favorites, export):
    d = tmp_path_factory.mktemp("st")
    state = AlbumState(excluded=excluded, favorites=favorites, export_path=export)
    save_state(d, state)
    loaded, warning = load_state(d)
    assert warning is None
    assert loaded == state


@pytest.mark.parametrize(
    "content",
    [b"{not json", b"[1, 2, 3]", b'"text"', b"\xff\xfe\x00garbage", b"", b'{"version": 99}', b'{"excluded": []}'],
)
def test_corrupt_file_is_moved_aside(tmp_path: Path, content: bytes):
    path = tmp_path / "state.json"
    path.write_bytes(content)
    state, warning = load_state(tmp_path)
    assert state == AlbumState()
    assert warning and "moved it to state.json.corrupt-" in warning
    assert not path.exists()
    aside = list(tmp_path.glob("state.json.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == content


def test_second_corrupt_file_does_not_overwrite_first(tmp_path: Path):
    path = tmp_path / "state.json"
    path.write_bytes(b"first{")
    load_state(tmp_path)
    path.write_bytes(b"second{")
    _, warning = load_state(tmp_path)
    assert warning
    contents = sorted(p.read_bytes() for p in tmp_path.glob("state.json.corrupt-*"))
    assert contents == [b"first{", b"second{"]


def test_bad_values_fall_back_with_warning(tmp_path: Path):
    data = {
        "version": 1,
        "excluded": ["ok.png", 5, None],
        "pins": "not-a-list",
        "favorites": ["f.png"],
        "settings": {"method": "magic", "count": -3, "iterations": 1000, "threshold": True, "seed": 4},
        "export_path": 12,
        "selection": {"method": "fps", "count": 2, "iterations": "ten"},
        "future_key": {"anything": 1},
    }
    (tmp_path / "state.json").write_text(json.dumps(data))
    state, warning = load_state(tmp_path)
    assert warning is not None and "settings.method" in warning and "selection" in warning
    assert state.excluded == {"ok.png"}
    assert state.pins == set()
    assert state.favorites == ["f.png"]
    assert state.settings == Settings(seed=4)
    assert state.export_path is None
    assert state.selection is None
    assert (tmp_path / "state.json").exists()  # not corrupt as a whole: left in place


def test_fractional_threshold_is_kept(tmp_path: Path):
    state = AlbumState(settings=Settings(threshold=92.5))
    save_state(tmp_path, state)
    assert load_state(tmp_path) == (state, None)


def test_unknown_keys_ignored_silently(tmp_path: Path):
    (tmp_path / "state.json").write_text(json.dumps({"version": 1, "extra": [1, 2]}))
    state, warning = load_state(tmp_path)
    assert warning is None and state == AlbumState()


def test_pin_and_exclude_are_mutually_exclusive():
    state = AlbumState()
    assert toggle_excluded(state, "a.png") is True
    assert toggle_pin(state, "a.png") is True
    assert state.pins == {"a.png"} and state.excluded == set()
    assert toggle_excluded(state, "a.png") is True
    assert state.pins == set() and state.excluded == {"a.png"}
    assert toggle_excluded(state, "a.png") is False
    assert state.excluded == set()
    assert toggle_pin(state, "b.png") is True
    assert toggle_pin(state, "b.png") is False


def test_exclude_at_or_above_counts_new_and_skips_pins():
    state = AlbumState(selection=make_selection())
    state.excluded = {"a/01.png"}
    state.pins = {"top.jpg"}
    assert exclude_at_or_above(state, 70) == 1  # a/02.png (90%); a/01 already; top pinned
    assert state.excluded == {"a/01.png", "a/02.png"}
    assert exclude_at_or_above(state, 30) == 1  # b/c/deep.webp at exactly 30%
    assert exclude_at_or_above(state, 1) == 0  # unvoted b/01.png is never excluded
    assert "b/01.png" not in state.excluded


def test_exclude_threshold_is_exact_at_boundaries():
    sel = SavedSelection("fps", 1, 100, 0, "f", ["x"], {"x": 29, "y": 28})
    state = AlbumState(selection=sel)
    assert exclude_at_or_above(state, 29) == 1  # 29/100*100 is 28.999...; must still count
    assert state.excluded == {"x"}


@pytest.mark.parametrize("bad", [0, 101, -5, 100.5, "90", None, True])
def test_exclude_threshold_validated(bad):
    state = AlbumState(selection=make_selection())
    with pytest.raises(UsageError):
        exclude_at_or_above(state, bad)


def test_exclude_without_selection_is_a_clear_error():
    with pytest.raises(PickselError, match="selection"):
        exclude_at_or_above(AlbumState(), 90)


def test_included_favorites_and_clears():
    state = AlbumState(selection=make_selection())
    assert included_paths(state) == ["a/01.png", "a/02.png", "top.jpg"]
    toggle_excluded(state, "a/02.png")
    assert included_paths(state) == ["a/01.png", "top.jpg"]
    assert set_favorites(state) == 2
    assert state.favorites == ["a/01.png", "top.jpg"]
    assert clear_exclusions(state) == 1
    assert clear_exclusions(state) == 0
    clear_selection(state)
    assert state.selection is None
    assert included_paths(state) == []
    assert state.favorites == ["a/01.png", "top.jpg"]  # favorites outlive the selection
    with pytest.raises(PickselError):
        set_favorites(state)


def test_save_into_missing_dir_creates_it(tmp_path: Path):
    target = tmp_path / "deep" / ".picksel"
    save_state(target, AlbumState(excluded={"x.png"}))
    assert load_state(target)[0].excluded == {"x.png"}
    assert [p.name for p in target.iterdir()] == ["state.json"]  # no temp file left


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_save_into_readonly_dir_is_a_clear_error(tmp_path: Path):
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(PickselError, match="cannot save"):
            save_state(tmp_path / "sub", AlbumState())
    finally:
        tmp_path.chmod(0o700)


def test_from_result_with_the_real_selection(tmp_path: Path):
    select = pytest.importorskip("picksel.select")
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(30, 8)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    paths = [f"d{i % 3}/{i:03d}.png" for i in range(30)]
    result = select.run_selection(emb, method="fps", count=5, iterations=4, seed=11)
    sel = SavedSelection.from_result(result, paths, "fp")
    assert sel.consensus == [paths[i] for i in result.consensus]
    assert sum(sel.votes.values()) == int(result.votes.sum())
    for row, path in enumerate(paths):
        assert sel.frequency(path) == pytest.approx(float(result.frequency[row]))
    state = AlbumState(selection=sel)
    save_state(tmp_path, state)
    assert load_state(tmp_path) == (state, None)


def test_bulk_exclude_and_pin_keep_an_image_out_of_both_sets():
    state = AlbumState()
    assert set_pinned(state, ["a.png", "b.png"]) == 2
    assert set_excluded(state, ["b.png", "c.png", "c.png"]) == 2
    assert state.excluded == {"b.png", "c.png"} and state.pins == {"a.png"}
    assert set_excluded(state, ["b.png", "zzz.png"], False) == 1
    assert set_pinned(state, ["c.png"]) == 1
    assert state.excluded == set() and state.pins == {"a.png", "c.png"}
    assert set_pinned(state, ["a.png", "c.png"], False) == 2 and state.pins == set()
