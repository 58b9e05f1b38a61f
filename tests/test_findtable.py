"""The find bar's lower-cased path table (tui/findtable.py): the same table as lower-casing
each shown path, built off the UI thread."""

from __future__ import annotations

import threading

from hypothesis import given
from hypothesis import strategies as st

from picksel.textsafe import printable
from picksel.tui.findtable import FindTable, lowered_paths


def reference(paths: list[str]) -> list[str]:
    """What the list filtered on before: each path as shown, lower-cased."""
    return [printable(p).lower() for p in paths]


ASCII_NAMES = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=30)
ANY_NAMES = st.text(max_size=30)  # controls, newlines, surrogates, İ and ß included


@given(st.lists(ASCII_NAMES, max_size=40))
def test_plain_ascii_paths_give_the_same_table(paths: list[str]) -> None:
    assert lowered_paths(paths) == reference(paths)


@given(st.lists(st.one_of(ASCII_NAMES, ANY_NAMES), max_size=40))
def test_any_paths_give_the_same_table(paths: list[str]) -> None:
    assert lowered_paths(paths) == reference(paths)


def test_names_that_need_escapes_or_change_length_when_lowered() -> None:
    paths = ["A/B.JPG", "x\ny.png", "\x1b[2J.png", "\u0130stanbul.JPG", "STRASSE\u1e9e.png",
             "bad\udcff.jpg", "", "\x7f"]
    for i in range(len(paths)):
        for j in range(i, len(paths) + 1):
            assert lowered_paths(paths[i:j]) == reference(paths[i:j])
    assert lowered_paths(["IMG_1.JPG", "x\ny.JPG"]) == ["img_1.jpg", "x\\x0ay.jpg"]


def test_the_table_is_built_in_another_thread() -> None:
    paths = [f"Folder{i % 7}/IMG_{i:05d}.JPG" for i in range(5000)]
    table = FindTable(paths)
    assert table.thread is not threading.current_thread()
    assert table.get() == reference(paths)
    assert table.ready()
    assert FindTable([]).get() == []
