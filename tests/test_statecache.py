"""The cached re-read and incremental save of state.json (picksel.statecache).

edit_state re-reads state.json under the lock before every change; at 150,000
exclusions parsing and sorting it again took most of the 0.4 s a key cost. These tests
pin down that the shortcut is taken (so the speed cannot silently regress) and that it
is only taken when the file holds exactly what this process last read or wrote.
Real-process interleavings are in test_faults_state.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from picksel import state as st
from picksel import statecache, undo
from picksel.state import AlbumState, SavedSelection, load_state, save_state
from picksel.statelock import edit_state


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    statecache.forget_all()


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every state.json this process parses, in order."""
    seen: list[Path] = []
    real = st.parse_state

    def counting(state_dir: Path, raw: bytes, *rest):
        seen.append(Path(state_dir))
        return real(state_dir, raw, *rest)

    monkeypatch.setattr(st, "parse_state", counting)
    return seen


def big_state(n: int = 2000) -> AlbumState:
    state = AlbumState()
    state.excluded = {f"photos/{i // 50:03d}/IMG_{i:05d}.jpg" for i in range(n)}
    state.pins = {"keep/a.jpg"}
    consensus = [f"keep/{i:03d}.jpg" for i in range(30)]
    state.selection = SavedSelection("fps", 30, 10, 1, "f", consensus, dict.fromkeys(consensus, 7))
    return state


def exclude(sdir: Path, rel: str) -> None:
    with edit_state(sdir, action="exclude") as state:
        state.excluded.add(rel)


def test_repeated_edits_parse_state_json_only_once(tmp_path: Path, parses: list[Path]) -> None:
    save_state(tmp_path, big_state())
    for i in range(4):
        exclude(tmp_path, f"new/{i}.jpg")
    assert parses == [tmp_path]
    assert {f"new/{i}.jpg" for i in range(4)} <= load_state(tmp_path)[0].excluded


def test_a_file_changed_by_someone_else_is_parsed_again(tmp_path: Path, parses: list[Path]) -> None:
    save_state(tmp_path, big_state())
    exclude(tmp_path, "new/1.jpg")
    data = json.loads(st.state_path(tmp_path).read_text())
    data["pins"].append("other/pin.jpg")
    st.state_path(tmp_path).write_text(json.dumps(data))
    exclude(tmp_path, "new/2.jpg")
    assert len(parses) == 2
    state = load_state(tmp_path)[0]
    assert "other/pin.jpg" in state.pins and {"new/1.jpg", "new/2.jpg"} <= state.excluded


def test_two_state_folders_never_share_what_is_remembered(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    for sdir in (one, two):
        save_state(sdir, big_state(50))
    exclude(one, "only/one.jpg")
    exclude(two, "only/two.jpg")
    exclude(one, "again/one.jpg")
    assert {"only/one.jpg", "again/one.jpg"} <= load_state(one)[0].excluded
    assert not {"only/two.jpg"} & load_state(one)[0].excluded
    assert "only/two.jpg" in load_state(two)[0].excluded
    assert not {"only/one.jpg", "again/one.jpg"} & load_state(two)[0].excluded


def test_a_change_that_raises_leaves_the_remembered_state_untouched(tmp_path: Path) -> None:
    save_state(tmp_path, big_state(50))
    exclude(tmp_path, "new/1.jpg")
    with pytest.raises(RuntimeError), edit_state(tmp_path, action="exclude") as state:
        state.excluded.add("never/saved.jpg")
        state.pins.clear()
        raise RuntimeError("the body failed")
    exclude(tmp_path, "new/2.jpg")
    state = load_state(tmp_path)[0]
    assert "never/saved.jpg" not in state.excluded and state.pins == {"keep/a.jpg"}


def test_the_file_stays_the_json_it_was(tmp_path: Path) -> None:
    """Same keys, same one-space indentation as json.dumps(indent=1): readable and
    diffable by hand, and an older picksel reads it."""
    state = big_state(20)
    state.quality = {"min_side": 300.0}
    save_state(tmp_path, state)
    exclude(tmp_path, 'odd "name"\\é.jpg')
    text = st.state_path(tmp_path).read_text()
    data = json.loads(text)
    state.excluded.add('odd "name"\\é.jpg')
    expected = st.state_to_dict(state)
    assert sorted(data["excluded"]) == expected["excluded"]
    data["excluded"] = expected["excluded"]
    assert data == expected
    assert text == json.dumps(json.loads(text), ensure_ascii=True, indent=1) + "\n"


names = hs.text(hs.characters(codec="utf-8") | hs.sampled_from("\udc80\"\\ !/"), min_size=1, max_size=6)


@settings(max_examples=40, deadline=None)
@given(hs.lists(hs.tuples(hs.sampled_from(["x", "p", "ux", "up"]), names), max_size=25))
def test_any_sequence_of_cached_edits_saves_what_a_fresh_read_sees(
    tmp_path_factory: pytest.TempPathFactory, steps: list[tuple[str, str]]
) -> None:
    """The incremental save (kept sorted list patched by the change) writes exactly the
    sets a full parse by another process reads back, whatever the names."""
    sdir = tmp_path_factory.mktemp("s")
    statecache.forget_all()
    save_state(sdir, big_state(10))
    expected = load_state(sdir)[0]
    for op, rel in steps:
        change = {"x": st.set_excluded, "p": st.set_pinned}.get(op[-1])
        with edit_state(sdir, action=op) as state:
            change(state, [rel], not op.startswith("u"))
        change(expected, [rel], not op.startswith("u"))
        on_disk = st.parse_state(sdir, st.state_path(sdir).read_bytes())[0]
        assert (on_disk.excluded, on_disk.pins) == (expected.excluded, expected.pins)
        remembered, before, _warning = statecache.load(sdir)
        assert remembered == on_disk
        assert (before.excluded, before.pins) == (on_disk.excluded, on_disk.pins)


def test_a_failed_save_keeps_remembering_the_file_still_on_disk(
    tmp_path: Path, parses: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A save that fails (full disk, read-only folder) leaves state.json as it was, and
    the next edit still starts from it without losing anything or parsing it again."""
    save_state(tmp_path, big_state(50))
    exclude(tmp_path, "new/1.jpg")

    def full_disk(state_dir: Path, raw: bytes) -> None:
        raise st.PickselError("cannot save state.json: No space left on device")

    with monkeypatch.context() as m:
        m.setattr(st, "write_state_bytes", full_disk)
        with pytest.raises(st.PickselError):
            exclude(tmp_path, "lost/2.jpg")
    exclude(tmp_path, "new/3.jpg")
    assert parses == [tmp_path]
    excluded = load_state(tmp_path)[0].excluded
    assert {"new/1.jpg", "new/3.jpg"} <= excluded and "lost/2.jpg" not in excluded


def test_every_field_comes_back_from_the_remembered_state(tmp_path: Path, parses: list[Path]) -> None:
    """A remembered state hands back every field the file holds; a field added to
    AlbumState later must be set here (the first assert says so) and carried by the cache."""
    import dataclasses

    state = big_state(30)
    state.favorites = ["keep/001.jpg", "keep/000.jpg"]
    state.settings = st.Settings("kmeans", 7, 9, 80.5, 42, "grid")
    state.export_path, state.inventory_path = "/out/set", "/out/inventory.csv"
    state.quality = {"min_side": 300.0}
    default = AlbumState()
    unset = [f.name for f in dataclasses.fields(AlbumState)
             if getattr(state, f.name) == getattr(default, f.name)]
    assert unset == [], f"set these in the test too: {unset}"
    with edit_state(tmp_path, action="set") as fresh:
        for f in dataclasses.fields(AlbumState):
            setattr(fresh, f.name, getattr(state, f.name))
    remembered, before, _warning = statecache.load(tmp_path)
    assert len(parses) == 0  # nothing to parse: it wrote the file itself
    assert remembered == st.parse_state(tmp_path, st.state_path(tmp_path).read_bytes())[0] == state
    assert not undo.differs(before, remembered)


@pytest.mark.parametrize("listed", [["b", "a", "a"], ["c", "b", "a"], ['"q"', "é", "a"]])
def test_a_file_listing_names_repeated_or_unsorted_is_saved_whole_and_sorted(
    tmp_path: Path, listed: list[str]
) -> None:
    """The first save after a parse starts from the file's own list (sorted when picksel
    wrote it); another tool's repeats or order must not end up in the file."""
    data = st.state_to_dict(AlbumState())
    data["excluded"] = listed
    st.state_path(tmp_path).write_text(json.dumps(data))
    exclude(tmp_path, "new.jpg")
    written = json.loads(st.state_path(tmp_path).read_text())["excluded"]
    assert sorted(written) == sorted(set(listed) | {"new.jpg"}) and len(written) == len(set(written))
    assert [st.json_body(p) for p in written] == sorted(st.json_body(p) for p in written)
