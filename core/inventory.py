"""The inventory: one row per included and excluded image, for spreadsheets and scripts.

Columns follow PhotoMapAI's curator: ``Filename Subfolder Count Frequency(%) Index Status``.
Included rows come first (consensus order), then every excluded image (sorted by path),
with its votes when it was analysed, else 0.

- ``Subfolder`` is the parent folder relative to the album, ``""`` for the top level
  (an empty cell sorts first and needs no explaining, unlike ``"."``).
- ``Index`` is the image's row in the current album index, empty when it is no longer
  indexed (an excluded file that was deleted or moved).
- ``Frequency(%)`` is votes / iterations × 100 rounded to one decimal.

Tab-separated by default (the curator docs promise a tab-delimited file), ``csv=True``
for commas. Fields holding the delimiter, a quote, CR or LF are quoted the way the csv
module's ``excel``/``excel-tab`` dialects read them back (we quote ourselves so the
result does not depend on which Python version's csv writer quotes a bare CR). The file
is UTF-8 with ``surrogateescape``, so file names that were not valid UTF-8 come back as
the same bytes. It is written atomically and never replaces an existing file unless
``overwrite=True``. Like a plain ``open()``, it gets the mode the umask allows (0644
under the usual 022), not mkstemp's 0600.

Cells a spreadsheet would run as a formula (starting with ``= + - @``, tab or CR: a folder
named ``=HYPERLINK(...)`` becomes a live link) get a leading ``'`` by default, as OWASP's
CSV-injection advice says; a text cell that itself starts with ``'`` gets one too, so
``read_inventory`` can strip exactly one and return every name unchanged. ``raw=True``
writes cells as they are, for machine readers (read back with ``raw=True``).

Included rows are only indexed images of the album: an entry of the saved selection that
is not (``.``, ``../../etc/passwd``, a caption...) is left out, and the caller reports
``left_out_of_inventory`` once. Without a selection there is nothing to list: both the
CLI and the app refuse with ``NO_SELECTION``.

Three columns follow the curator's six (older six-column files still read back):
``Flags`` (the image's quality flags joined by commas, in ``picksel.quality.FLAGS`` order;
empty when it is clean; ``unchecked`` when it has no measures yet), ``DupGroup`` (the
number of its duplicate group, as ``picksel check`` lists them; empty outside any group)
and ``DupRole`` (``keep`` or ``copy``). Sorting by DupGroup puts each group together;
filtering DupRole = copy gives every duplicate but its keeper.
"""

from __future__ import annotations

import contextlib
import csv as csv_mod
import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from picksel.errors import PickselError
from picksel.export import place_no_replace
from picksel.filemode import chmod_like_new_file
from picksel.indexed import split_indexed
from picksel.quality import FLAGS
from picksel.state import SavedSelection

if TYPE_CHECKING:
    from picksel.qualitylookup import QualityLookup

CURATOR_HEADER = ("Filename", "Subfolder", "Count", "Frequency(%)", "Index", "Status")
"""PhotoMapAI's columns: files with only these (written before the quality columns) still read."""
HEADER = (*CURATOR_HEADER, "Flags", "DupGroup", "DupRole")
UNCHECKED = "unchecked"
ROLES = ("", "keep", "copy")
INCLUDED, EXCLUDED = "Included", "Excluded"
NO_SELECTION = "no selection yet: run a selection first (`picksel select ALBUM`, or s in the app)"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class InventoryRow:
    filename: str
    subfolder: str
    count: int
    frequency: float
    index: int | None
    status: str
    flags: tuple[str, ...] | None = None  # None: not measured yet (``unchecked``)
    dup_group: int | None = None
    dup_role: str = ""  # "keep" / "copy" within dup_group

    @property
    def rel(self) -> str:
        """The album-relative path this row describes."""
        return f"{self.subfolder}/{self.filename}" if self.subfolder else self.filename


def _split(rel: str) -> tuple[str, str]:
    """(file name, parent folder or ""), by plain string split so the pair always joins
    back to exactly ``rel`` (PurePosixPath would normalise ``a/./b``)."""
    folder, _, name = rel.rpartition("/")
    return name, folder


def _included(paths: list[str], selection: SavedSelection, excluded: set[str]) -> tuple[list[str], list[str]]:
    return split_indexed((rel for rel in selection.consensus if rel not in excluded), paths)


def left_out_of_inventory(
    paths: list[str], selection: SavedSelection | None, excluded: set[str]
) -> list[str]:
    """Entries of the saved selection that ``inventory_rows`` leaves out (not indexed images)."""
    return [] if selection is None else _included(paths, selection, excluded)[1]


def inventory_rows(
    paths: list[str], selection: SavedSelection | None, excluded: set[str],
    quality: QualityLookup | None = None,
) -> list[InventoryRow]:
    """Included rows (consensus minus exclusions, consensus order) then Excluded rows.

    ``paths`` is the album index's row list (for the Index column, and the only images an
    Included row may name); ``quality`` fills the flag and duplicate columns (every row
    is unchecked without it). Raises PickselError(NO_SELECTION) without a selection.
    """
    if selection is None:
        raise PickselError(NO_SELECTION)
    row_of = {p: i for i, p in enumerate(paths)}
    rows: list[InventoryRow] = []

    def make(rel: str, status: str) -> InventoryRow:
        votes = selection.votes.get(rel, 0) if selection is not None else 0
        freq = round(selection.frequency(rel), 1) if selection is not None else 0.0
        name, folder = _split(rel)
        q = quality.get(rel) if quality is not None else None
        if q is None:
            return InventoryRow(name, folder, votes, freq, row_of.get(rel), status)
        return InventoryRow(name, folder, votes, freq, row_of.get(rel), status, q.flags, q.group, q.role)

    rows.extend(make(rel, INCLUDED) for rel in _included(paths, selection, excluded)[0])
    rows.extend(make(rel, EXCLUDED) for rel in sorted(excluded))
    return rows


def _quote(field: str, delimiter: str) -> str:
    if any(c in field for c in (delimiter, '"', "\r", "\n")):
        return '"' + field.replace('"', '""') + '"'
    return field


def neutralise(cell: str) -> str:
    """``'`` before a cell a spreadsheet would take for a formula (or one starting with ``'``)."""
    return "'" + cell if cell.startswith((*FORMULA_STARTS, "'")) else cell


def unneutralise(cell: str) -> str:
    return cell[1:] if cell.startswith("'") and cell[1:].startswith((*FORMULA_STARTS, "'")) else cell


def _format(rows: list[InventoryRow], delimiter: str, raw: bool = False) -> str:
    text = (lambda c: c) if raw else neutralise
    out = io.StringIO()
    out.write(delimiter.join(HEADER) + "\n")
    for r in rows:
        fields = (
            text(r.filename),
            text(r.subfolder),
            str(r.count),
            f"{r.frequency:.1f}",
            "" if r.index is None else str(r.index),
            r.status,
            UNCHECKED if r.flags is None else ",".join(r.flags),
            "" if r.dup_group is None else str(r.dup_group),
            r.dup_role,
        )
        out.write(delimiter.join(_quote(f, delimiter) for f in fields) + "\n")
    return out.getvalue()


def write_inventory(
    file: Path, rows: list[InventoryRow], *, csv: bool = False, overwrite: bool = False, raw: bool = False
) -> int:
    """Write ``rows`` (TSV, or CSV with ``csv=True``); returns how many rows were written.

    ``raw=True`` leaves formula-like cells as they are (see the module docstring).

    Raises PickselError when ``file`` exists and ``overwrite`` is False, or it cannot be
    written. The file appears complete or not at all.
    """
    file = Path(file)
    try:
        data = _format(rows, "," if csv else "\t", raw).encode("utf-8", "surrogateescape")
    except UnicodeEncodeError as e:
        raise PickselError(f"cannot write {file}: a name holds text that is not a file name ({e.reason})") from e
    if not overwrite and os.path.lexists(file):
        raise PickselError(f"{file} already exists; not overwriting it")
    if file.is_dir():
        raise PickselError(f"{file} is a folder")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{file.name[:40]}.", suffix=".tmp", dir=file.parent)
    except OSError as e:
        raise PickselError(f"cannot write {file}: {(e.strerror or str(e)).lower()}") from e
    try:
        chmod_like_new_file(fd)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if overwrite:
            os.replace(tmp, file)
        else:
            place_no_replace(Path(tmp), file)
    except FileExistsError as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise PickselError(f"{file} already exists; not overwriting it") from e
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise PickselError(f"cannot write {file}: {(e.strerror or str(e)).lower()}") from e
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return len(rows)


def _with_quality(row: InventoryRow, flags: str, group: str, role: str) -> InventoryRow:
    names = None if flags == UNCHECKED else tuple(f for f in flags.split(",") if f)
    if names is not None and any(f not in FLAGS for f in names):
        raise ValueError(f"flags {flags!r}")
    if role not in ROLES or bool(role) != bool(group):
        raise ValueError(f"duplicate group {group!r} role {role!r}")
    number = int(group) if group else None
    if number is not None and number < 1:
        raise ValueError(f"duplicate group {group!r}")
    return InventoryRow(row.filename, row.subfolder, row.count, row.frequency, row.index,
                        row.status, names, number, role)


def read_inventory(file: Path, *, csv: bool = False, raw: bool = False) -> list[InventoryRow]:
    """Parse a file written by ``write_inventory`` with the same ``csv`` and ``raw``
    (PickselError on anything else)."""
    text = (lambda c: c) if raw else unneutralise
    file = Path(file)
    dialect = "excel" if csv else "excel-tab"
    try:
        with open(file, encoding="utf-8", errors="surrogateescape", newline="") as fh:
            records = list(csv_mod.reader(fh, dialect=dialect))
    except OSError as e:
        raise PickselError(f"cannot read {file}: {(e.strerror or str(e)).lower()}") from e
    except csv_mod.Error as e:
        raise PickselError(f"{file}: not a valid inventory ({e})") from e
    if not records or tuple(records[0]) not in (HEADER, CURATOR_HEADER):
        kind = "comma" if csv else "tab"
        raise PickselError(f"{file}: not a {kind}-separated picksel inventory (unexpected header)")
    width = len(records[0])
    rows = []
    for n, rec in enumerate(records[1:], start=2):
        try:
            if len(rec) != width:
                raise ValueError(f"{len(rec)} fields, not {width}")
            name, folder, count, freq, index, status = rec[:6]
            if status not in (INCLUDED, EXCLUDED):
                raise ValueError(f"status {status!r}")
            row = InventoryRow(text(name), text(folder), int(count), float(freq),
                               int(index) if index else None, status)
            if width == len(HEADER):
                row = _with_quality(row, *rec[6:])
            rows.append(row)
        except ValueError as e:
            raise PickselError(f"{file}: bad record {n} ({e})") from e
    return rows
