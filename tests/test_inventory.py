"""picksel.inventory: rows, TSV/CSV formats, lossless round trip, no silent overwrite."""

from __future__ import annotations

import csv
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from picksel.errors import PickselError
from picksel.inventory import (
    CURATOR_HEADER,
    HEADER,
    NO_SELECTION,
    InventoryRow,
    inventory_rows,
    left_out_of_inventory,
    read_inventory,
    write_inventory,
)
from picksel.quality import FLAGS
from picksel.qualitylookup import ImageQuality, QualityLookup
from picksel.state import SavedSelection

PATHS = ["a/01.png", "a/02.png", "b/c/03.jpg", "top.jpg", "x.png"]


def selection() -> SavedSelection:
    return SavedSelection(
        method="fps", count=3, iterations=30, seed=1, fingerprint="f",
        consensus=["top.jpg", "a/02.png", "a/01.png"],
        votes={"top.jpg": 30, "a/02.png": 20, "a/01.png": 13, "b/c/03.jpg": 2},
    )


def test_rows_included_then_excluded():
    rows = inventory_rows(PATHS, selection(), {"a/02.png", "gone/old.png", "x.png", "b/c/03.jpg"})
    assert rows == [
        InventoryRow("top.jpg", "", 30, 100.0, 3, "Included"),
        InventoryRow("01.png", "a", 13, 43.3, 0, "Included"),
        InventoryRow("02.png", "a", 20, 66.7, 1, "Excluded"),
        InventoryRow("03.jpg", "b/c", 2, 6.7, 2, "Excluded"),
        InventoryRow("old.png", "gone", 0, 0.0, None, "Excluded"),
        InventoryRow("x.png", "", 0, 0.0, 4, "Excluded"),
    ]
    assert rows[3].rel == "b/c/03.jpg" and rows[0].rel == "top.jpg"


def test_rows_without_selection_are_refused():
    # the CLI and the app share the message (a header-only file helps nobody)
    with pytest.raises(PickselError) as exc:
        inventory_rows(PATHS, None, {"x.png"})
    assert str(exc.value) == NO_SELECTION


def test_included_rows_are_indexed_images_only():
    sel = selection()
    sel.consensus = ["top.jpg", ".", "../../etc/passwd", "a/01.txt", "a/01.png"]
    rows = inventory_rows(PATHS, sel, set())
    assert [r.rel for r in rows] == ["top.jpg", "a/01.png"]
    assert left_out_of_inventory(PATHS, sel, set()) == [".", "../../etc/passwd", "a/01.txt"]
    assert left_out_of_inventory(PATHS, None, set()) == []


def test_tsv_layout(tmp_path: Path):
    rows = inventory_rows(PATHS, selection(), {"gone/old.png"})
    f = tmp_path / "inv.tsv"
    assert write_inventory(f, rows) == 4
    text = f.read_bytes().decode()
    assert text.splitlines()[0] == (
        "Filename\tSubfolder\tCount\tFrequency(%)\tIndex\tStatus\tFlags\tDupGroup\tDupRole")
    assert "\r" not in text and text.endswith("\n")
    assert text.splitlines()[1:] == [  # no quality lookup: every image is unchecked
        "top.jpg\t\t30\t100.0\t3\tIncluded\tunchecked\t\t",
        "02.png\ta\t20\t66.7\t1\tIncluded\tunchecked\t\t",
        "01.png\ta\t13\t43.3\t0\tIncluded\tunchecked\t\t",
        "old.png\tgone\t0\t0.0\t\tExcluded\tunchecked\t\t",
    ]
    assert read_inventory(f) == rows


def test_csv_layout_and_quoting(tmp_path: Path):
    rows = [InventoryRow('a,"b".png', "dir, with comma", 1, 50.0, 0, "Included")]
    f = tmp_path / "inv.csv"
    write_inventory(f, rows, csv=True)
    lines = f.read_text().splitlines()
    assert lines[0] == ",".join(HEADER)
    assert lines[1] == '"a,""b"".png","dir, with comma",1,50.0,0,Included,unchecked,,'
    with open(f, newline="") as fh:
        assert list(csv.reader(fh))[1][0] == 'a,"b".png'  # any csv reader agrees
    assert read_inventory(f, csv=True) == rows


def test_refuses_to_overwrite_unless_asked(tmp_path: Path):
    f = tmp_path / "inv.tsv"
    f.write_text("precious")
    rows = [InventoryRow("a.png", "", 1, 5.0, 0, "Included")]
    with pytest.raises(PickselError, match="already exists"):
        write_inventory(f, rows)
    assert f.read_text() == "precious"
    write_inventory(f, rows, overwrite=True)
    assert read_inventory(f) == rows
    assert sorted(os.listdir(tmp_path)) == ["inv.tsv"]  # no temp file left


def test_write_errors_are_picksel_errors(tmp_path: Path):
    rows = [InventoryRow("a.png", "", 1, 5.0, 0, "Included")]
    with pytest.raises(PickselError, match="cannot write"):
        write_inventory(tmp_path / "missing-dir" / "inv.tsv", rows)
    with pytest.raises(PickselError, match="is a folder"):
        write_inventory(tmp_path, rows, overwrite=True)


def test_reading_something_else_is_a_clear_error(tmp_path: Path):
    f = tmp_path / "x.tsv"
    f.write_text("just\ttext\n")
    with pytest.raises(PickselError, match="unexpected header"):
        read_inventory(f)
    f.write_text("\t".join(HEADER) + "\na\tb\tnot-a-number\t1.0\t\tIncluded\n")
    with pytest.raises(PickselError, match="bad record 2"):
        read_inventory(f)
    with pytest.raises(PickselError, match="cannot read"):
        read_inventory(tmp_path / "nope.tsv")


def test_quality_columns(tmp_path: Path):
    quality = QualityLookup({
        "top.jpg": ImageQuality(("dark", "blank"), 2, "copy", "near"),
        "a/01.png": ImageQuality(),  # measured and clean
        "a/02.png": ImageQuality((), 2, "keep", "near"),
    })
    rows = inventory_rows(PATHS, selection(), {"a/02.png", "x.png"}, quality)
    assert [(r.rel, r.flags, r.dup_group, r.dup_role) for r in rows] == [
        ("top.jpg", ("dark", "blank"), 2, "copy"),
        ("a/01.png", (), None, ""),
        ("a/02.png", (), 2, "keep"),
        ("x.png", None, None, ""),  # no measures: unchecked, not clean
    ]
    f = tmp_path / "inv.csv"
    write_inventory(f, rows, csv=True)
    assert f.read_text().splitlines() == [
        "Filename,Subfolder,Count,Frequency(%),Index,Status,Flags,DupGroup,DupRole",
        'top.jpg,,30,100.0,3,Included,"dark,blank",2,copy',
        "01.png,a,13,43.3,0,Included,,,",
        "02.png,a,20,66.7,1,Excluded,,2,keep",
        "x.png,,0,0.0,4,Excluded,unchecked,,",
    ]
    assert read_inventory(f, csv=True) == rows


def test_six_column_files_written_before_the_quality_columns_still_read(tmp_path: Path):
    f = tmp_path / "old.tsv"
    f.write_text("\t".join(CURATOR_HEADER) + "\ntop.jpg\t\t30\t100.0\t3\tIncluded\n")
    assert read_inventory(f) == [InventoryRow("top.jpg", "", 30, 100.0, 3, "Included")]
    assert read_inventory(f)[0].flags is None  # unchecked, not clean


@pytest.mark.parametrize("cells", [
    "fuzzy\t\t",  # not a flag
    "dark\t\tcopy",  # a role without a group
    "\t3\t",  # a group without a role
    "\t0\tkeep",  # groups count from 1
    "\t2\tmaybe",
    "dark",  # too few fields
])
def test_bad_quality_cells_are_bad_records(tmp_path: Path, cells: str):
    f = tmp_path / "bad.tsv"
    f.write_text("\t".join(HEADER) + "\ntop.jpg\t\t30\t100.0\t3\tIncluded\t" + cells + "\n")
    with pytest.raises(PickselError, match="bad record 2"):
        read_inventory(f)


# A name part is either text or what os.fsdecode makes of arbitrary bytes (lone surrogates).
name_part = st.one_of(
    st.text(alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="/\x00"), min_size=1, max_size=12),
    st.sampled_from(["a\tb", 'q"uote', "com,ma", "#hash", "new\nline", "cr\rlf\r\n", "bare\rcr", " sp ",
                     "=1+1", "+x", "-y", "@z", "'q", "''=", "'", "\tlead", "\rcr", "=HYPERLINK(\"a\",\"b\")"]),
    st.binary(min_size=1, max_size=12).filter(lambda b: b"/" not in b and b"\x00" not in b).map(os.fsdecode),
)
rel_paths = st.lists(name_part, min_size=1, max_size=3).map("/".join)


image_quality = st.one_of(
    st.none(),  # unchecked
    st.builds(
        lambda flags, group, keep: ImageQuality(tuple(f for f in FLAGS if f in flags), group,
                                                "" if group is None else ("keep" if keep else "copy"),
                                                "" if group is None else "near"),
        st.sets(st.sampled_from(FLAGS)), st.one_of(st.none(), st.integers(1, 10**6)), st.booleans(),
    ),
)


@settings(max_examples=120, deadline=None)
@given(
    included=st.lists(rel_paths, max_size=8, unique=True),
    excluded=st.sets(rel_paths, max_size=5),
    use_csv=st.booleans(),
    raw=st.booleans(),
    data=st.data(),
)
def test_round_trip_property(included, excluded, use_csv, raw, data):
    paths = sorted(set(included) | set(sorted(excluded)[::2]))  # some excluded ones no longer indexed
    votes = {p: (i * 7) % 31 for i, p in enumerate(included + sorted(excluded))}
    votes = {p: v for p, v in votes.items() if v}
    sel = SavedSelection("kmeans", len(included), 30, 3, "f", list(included), votes)
    drawn = {p: data.draw(image_quality) for p in paths}
    quality = QualityLookup({p: q for p, q in drawn.items() if q is not None})
    rows = inventory_rows(paths, sel, excluded, quality)
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "inv"
        assert write_inventory(f, rows, csv=use_csv, raw=raw) == len(rows)
        back = read_inventory(f, csv=use_csv, raw=raw)
        if not raw:
            with f.open(encoding="utf-8", errors="surrogateescape", newline="") as fh:
                cells = [c for rec in csv.reader(fh, dialect="excel" if use_csv else "excel-tab") for c in rec]
            assert not any(c.startswith(("=", "+", "-", "@", "\t", "\r")) for c in cells)
    assert back == rows
    assert [r.rel for r in back if r.status == "Included"] == [p for p in included if p not in excluded]
    assert {r.rel for r in back if r.status == "Excluded"} == excluded
    raw = [r.rel for r in back]
    assert all(os.fsencode(r) for r in raw)  # still encodable back to the original bytes


def test_text_that_cannot_be_a_file_name_is_a_clear_error(tmp_path: Path):
    rows = [InventoryRow("\ud800.png", "", 1, 5.0, 0, "Included")]  # not from os.fsdecode
    with pytest.raises(PickselError, match="cannot write"):
        write_inventory(tmp_path / "inv.tsv", rows)
    assert os.listdir(tmp_path) == []
