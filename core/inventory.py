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
``overwrite=True``.
"""

from __future__ import annotations

import contextlib
import csv as csv_mod
import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from picksel.errors import PickselError
from picksel.export import place_no_replace
from picksel.state import SavedSelection

HEADER = ("Filename", "Subfolder", "Count", "Frequency(%)", "Index", "Status")
INCLUDED, EXCLUDED = "Included", "Excluded"


@dataclass(frozen=True)
class InventoryRow:
    filename: str
    subfolder: str
    count: int
    frequency: float
    index: int | None
    status: str

    @property
    def rel(self) -> str:
        """The album-relative path this row describes."""
        return f"{self.subfolder}/{self.filename}" if self.subfolder else self.filename


def _split(rel: str) -> tuple[str, str]:
    """(file name, parent folder or ""), by plain string split so the pair always joins
    back to exactly ``rel`` (PurePosixPath would normalise ``a/./b``)."""
    folder, _, name = rel.rpartition("/")
    return name, folder


def inventory_rows(
    paths: list[str], selection: SavedSelection | None, excluded: set[str]
) -> list[InventoryRow]:
    """Included rows (consensus minus exclusions, consensus order) then Excluded rows.

    ``paths`` is the album index's row list (for the Index column).
    """
    row_of = {p: i for i, p in enumerate(paths)}
    rows: list[InventoryRow] = []

    def make(rel: str, status: str) -> InventoryRow:
        votes = selection.votes.get(rel, 0) if selection is not None else 0
        freq = round(selection.frequency(rel), 1) if selection is not None else 0.0
        name, folder = _split(rel)
        return InventoryRow(name, folder, votes, freq, row_of.get(rel), status)

    if selection is not None:
        rows.extend(make(rel, INCLUDED) for rel in selection.consensus if rel not in excluded)
    rows.extend(make(rel, EXCLUDED) for rel in sorted(excluded))
    return rows


def _quote(field: str, delimiter: str) -> str:
    if any(c in field for c in (delimiter, '"', "\r", "\n")):
        return '"' + field.replace('"', '""') + '"'
    return field


def _format(rows: list[InventoryRow], delimiter: str) -> str:
    out = io.StringIO()
    out.write(delimiter.join(HEADER) + "\n")
    for r in rows:
        fields = (
            r.filename,
            r.subfolder,
            str(r.count),
            f"{r.frequency:.1f}",
            "" if r.index is None else str(r.index),
            r.status,
        )
        out.write(delimiter.join(_quote(f, delimiter) for f in fields) + "\n")
    return out.getvalue()


def write_inventory(file: Path, rows: list[InventoryRow], *, csv: bool = False, overwrite: bool = False) -> int:
    """Write ``rows`` (TSV, or CSV with ``csv=True``); returns how many rows were written.

    Raises PickselError when ``file`` exists and ``overwrite`` is False, or it cannot be
    written. The file appears complete or not at all.
    """
    file = Path(file)
    try:
        data = _format(rows, "," if csv else "\t").encode("utf-8", "surrogateescape")
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


def read_inventory(file: Path, *, csv: bool = False) -> list[InventoryRow]:
    """Parse a file written by ``write_inventory`` (PickselError on anything else)."""
    file = Path(file)
    dialect = "excel" if csv else "excel-tab"
    try:
        with open(file, encoding="utf-8", errors="surrogateescape", newline="") as fh:
            records = list(csv_mod.reader(fh, dialect=dialect))
    except OSError as e:
        raise PickselError(f"cannot read {file}: {(e.strerror or str(e)).lower()}") from e
    except csv_mod.Error as e:
        raise PickselError(f"{file}: not a valid inventory ({e})") from e
    if not records or tuple(records[0]) != HEADER:
        kind = "comma" if csv else "tab"
        raise PickselError(f"{file}: not a {kind}-separated picksel inventory (unexpected header)")
    rows = []
    for n, rec in enumerate(records[1:], start=2):
        try:
            name, folder, count, freq, index, status = rec
            if status not in (INCLUDED, EXCLUDED):
                raise ValueError(f"status {status!r}")
            rows.append(
                InventoryRow(name, folder, int(count), float(freq), int(index) if index else None, status)
            )
        except ValueError as e:
            raise PickselError(f"{file}: bad record {n} ({e})") from e
    return rows
