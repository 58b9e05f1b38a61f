"""Quality marks per index row: what the list rows, the preview and the duplicates review
say about an image's flags and duplicate group.

Why one module: every pane that shows an image (the list, the thumbnail grid, the
preview, the review screen) must say the same thing in the same words, so the check's
result is turned here, once, into per-row numpy arrays (cheap at a million rows, no
per-row dicts), and :func:`quality_labels` is the one function that names a row's marks.
Free of Textual; Rich styles are applied by the widgets from the ``kind`` of each label.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from picksel.quality import COL, DEFECT_FLAGS, FLAGS

# Short forms for the list rows (a row at 80 columns has ~12 cells for marks).
FLAG_ABBREV = {
    "dark": "dark",
    "bright": "brt",
    "blank": "blank",
    "blurry": "blur",
    "noisy": "noise",
    "small": "small",
    "grayscale": "gray",
    "odd-aspect": "aspect",
}
FLAG_BIT = {name: 1 << i for i, name in enumerate(FLAGS)}
DEFECT_BITS = sum(FLAG_BIT[f] for f in DEFECT_FLAGS)

KIND_FLAG = "flag"  # a defect (dark, bright, blank, blurry, noisy, small)
KIND_NOTE = "note"  # a kind of content (grayscale, odd-aspect): worth a look, not garbage
KIND_COPY = "copy"  # a duplicate copy (what "exclude duplicate copies" takes)
KIND_KEEP = "keep"  # the image its group keeps


@dataclass
class QualityMarks:
    """The check's result aligned to the index rows (``-1`` / 0 for unmeasured rows)."""

    flag_bits: np.ndarray  # uint16 (N,): FLAG_BIT of each flag
    group: np.ndarray  # int32 (N,): duplicate group number from 1, 0 = none
    keeper: np.ndarray  # bool (N,): the image its group keeps
    width: np.ndarray  # int32 (N,), 0 unmeasured
    height: np.ndarray  # int32 (N,)
    sharpness: np.ndarray  # float32 (N,), nan unmeasured
    groups: list[tuple[int, list[int]]]  # per group: (keeper row, copy rows)
    kinds: list[str]  # per group: "exact" / "near"
    cache_problem: str | None = None  # the check's measures could not be cached: why
    pinned: np.ndarray | None = None  # bool (N,): the pins the keepers were chosen for

    @classmethod
    def from_check(cls, result, rows: dict[str, int], n: int,
                   pinned: set[str] | None = None) -> QualityMarks:
        """From a :class:`picksel.check.CheckResult` whose paths are album-relative;
        images no longer in the index are left out. ``pinned``: the pins the check was
        given (None: unknown, :meth:`with_pins` then re-keeps every group)."""
        bits = np.zeros(n, np.uint16)
        for rel, names in result.flags.items():
            r = rows.get(rel)
            if r is not None:
                bits[r] = sum(FLAG_BIT[f] for f in names if f in FLAG_BIT)
        width = np.zeros(n, np.int32)
        height = np.zeros(n, np.int32)
        sharp = np.full(n, np.nan, np.float32)
        table_rows = np.fromiter((rows.get(p, -1) for p in result.paths), np.int64,
                                 count=len(result.paths))
        known = table_rows >= 0
        if known.any():
            vals = result.table.values[known]
            width[table_rows[known]] = vals[:, COL["width"]]
            height[table_rows[known]] = vals[:, COL["height"]]
            sharp[table_rows[known]] = vals[:, COL["sharpness"]]
        group = np.zeros(n, np.int32)
        keeper = np.zeros(n, bool)
        groups: list[tuple[int, list[int]]] = []
        kinds: list[str] = []
        for g in result.groups:
            keep = int(table_rows[g.keep])
            copies = [int(table_rows[i]) for i in g.copies if table_rows[i] >= 0]
            if keep < 0 or not copies:
                continue
            groups.append((keep, copies))
            kinds.append(g.kind)
            number = len(groups)
            group[keep] = number
            group[copies] = number
            keeper[keep] = True
        pins = None
        if pinned is not None:
            pins = np.zeros(n, bool)
            pin_rows = [r for r in (rows.get(p) for p in pinned) if r is not None]
            pins[pin_rows] = True
        return cls(bits, group, keeper, width, height, sharp, groups, kinds,
                   getattr(result, "cache_problem", None), pins)

    def with_pins(self, pinned: np.ndarray, paths) -> QualityMarks:
        """The marks with each group's keeper chosen for the pins ``pinned`` (bool per
        row; ``paths``: the path of each row), by the check's own rule
        (``picksel.duplicates.keeper_first``) from the measures held here: no image is
        read again. Group members do not depend on pins; keepers and the group order (by
        keeper path, as ``picksel check`` prints them) do. Only groups holding a row
        whose pin changed are looked at; ``self`` when no keeper changes."""
        from picksel.duplicates import keeper_first

        pinned = np.asarray(pinned, bool)
        if self.pinned is None or len(self.pinned) != len(pinned):
            touched = range(len(self.groups))
        else:
            numbers = np.unique(self.group[np.flatnonzero(pinned != self.pinned)])
            touched = [int(g) - 1 for g in numbers if g > 0]
        pixels = self.width.astype(np.float64) * self.height if len(touched) else self.width
        groups = list(self.groups)
        keeper = self.keeper
        moved: list[int] = []
        for j in touched:
            keep, copies = groups[j]
            new = keeper_first([keep, *copies], paths, pixels, self.sharpness,
                               lambda r: bool(pinned[r]))
            if new[0] != keep:
                if keeper is self.keeper:
                    keeper = keeper.copy()
                keeper[keep], keeper[new[0]] = False, True
                groups[j] = new
                moved.append(j)
        if keeper is self.keeper:
            self.pinned = pinned.copy()  # the same keepers: remember the pins they hold for
            return self
        order = _resorted(groups, moved, paths)
        # Re-number: a gather, not a loop over a million rows.
        renumber = np.zeros(len(groups) + 1, np.int32)
        renumber[np.asarray(order, np.int64) + 1] = np.arange(1, len(groups) + 1, dtype=np.int32)
        group = renumber[self.group]
        groups = [groups[j] for j in order]
        kinds = [self.kinds[j] for j in order]
        out = QualityMarks(self.flag_bits, group, keeper, self.width, self.height,
                           self.sharpness, groups, kinds, self.cache_problem, pinned.copy())
        if "flagged_order" in self.__dict__:  # flags did not change: keep the sorted rows
            out.__dict__["flagged_order"] = self.__dict__["flagged_order"]
        return out

    def __len__(self) -> int:
        return len(self.flag_bits)

    def flags(self, row: int) -> list[str]:
        b = int(self.flag_bits[row])
        return [f for f in FLAGS if b & FLAG_BIT[f]]

    def flagged_mask(self, wanted: set[str] | None = None) -> np.ndarray:
        """Rows with any flag (or any of ``wanted``)."""
        mask = sum(FLAG_BIT[f] for f in wanted) if wanted else (1 << len(FLAGS)) - 1
        return (self.flag_bits & np.uint16(mask)) != 0

    @cached_property
    def flagged_order(self) -> np.ndarray:
        """Flagged rows, rarest flags first: on an album of small grayscale scans, where
        nearly every image is "small gray", the one black frame and the one noise image
        must top the list, not sit somewhere among 1,800 alike (each defect weighs
        1 / its count, a content note such as gray a tenth of that; ties keep index
        order)."""
        counts = self.counts()
        weight = np.zeros(len(self), np.float64)
        for f in FLAGS:
            if counts[f]:
                w = (1.0 if f in DEFECT_FLAGS else 0.1) / counts[f]  # notes weigh less
                weight += ((self.flag_bits & np.uint16(FLAG_BIT[f])) != 0) * w
        rows = np.flatnonzero(self.flag_bits)
        return rows[np.argsort(-weight[rows], kind="stable")].astype(np.int64)

    @cached_property
    def duplicate_order(self) -> np.ndarray:
        """Rows of every group, group by group, keeper first: the "duplicates" filter."""
        out = [r for keep, copies in self.groups for r in (keep, *copies)]
        return np.asarray(out, np.int64)

    def copy_rows(self) -> list[int]:
        return [r for _keep, copies in self.groups for r in copies]

    def counts(self) -> dict[str, int]:
        """Images per flag."""
        return {f: int(((self.flag_bits & np.uint16(FLAG_BIT[f])) != 0).sum()) for f in FLAGS}

    def summary(self) -> str:
        """The sidebar's line: "23 flagged · 9 duplicate groups"."""
        flagged = int((self.flag_bits != 0).sum())
        g = len(self.groups)
        return f"{flagged:,} flagged · {g:,} duplicate group{'s' if g != 1 else ''}"


def _resorted(groups: list[tuple[int, list[int]]], moved: list[int], paths) -> list[int]:
    """Group positions in keeper-path order, when only the groups ``moved`` changed
    keeper: the others keep their (sorted) order and each moved one is put back in by
    bisection, so a pin at 50,000 groups does not sort them all again."""
    gone = set(moved)
    order = [j for j in range(len(groups)) if j not in gone]

    def key(j: int) -> str:
        return paths[groups[j][0]]

    for j in moved:
        order.insert(bisect.bisect_left(order, key(j), key=key), j)
    return order


def quality_labels(q: QualityMarks | None, row: int) -> list[tuple[str, str]]:
    """The marks of index row ``row`` as (short text, kind) pairs, most important first:
    duplicate role, then defects, then content notes. Empty before the check ends."""
    if q is None or not 0 <= row < len(q):
        return []
    out: list[tuple[str, str]] = []
    g = int(q.group[row])
    if g:
        out.append(("keep" if q.keeper[row] else "dup", KIND_KEEP if q.keeper[row] else KIND_COPY))
    b = int(q.flag_bits[row])
    for f in FLAGS:
        if b & FLAG_BIT[f]:
            out.append((FLAG_ABBREV[f], KIND_FLAG if f in DEFECT_FLAGS else KIND_NOTE))
    return out


def fit_labels(labels: list[tuple[str, str]], width: int) -> list[tuple[str, str]]:
    """As many labels as fit in ``width`` cells (one space apart), then "+N" for the rest."""
    out: list[tuple[str, str]] = []
    used = 0
    for i, (text, kind) in enumerate(labels):
        rest = len(labels) - i - 1
        need = len(text) + (1 if out else 0)
        more = len(f" +{rest}") if rest else 0
        if used + need + more > width:
            left = len(labels) - i
            tail = f"+{left}"
            if used + len(tail) + (1 if out else 0) <= width:
                out.append((tail, KIND_NOTE))
            break
        out.append((text, kind))
        used += need
    return out


def duplicate_note(q: QualityMarks | None, row: int, name_of) -> str:
    """"duplicate of X" / "kept over N copies" ("" outside any group)."""
    if q is None or not 0 <= row < len(q) or not q.group[row]:
        return ""
    keep, copies = q.groups[int(q.group[row]) - 1]
    kind = q.kinds[int(q.group[row]) - 1]
    if row == keep:
        return f"kept over {len(copies)} {kind} cop{'ies' if len(copies) != 1 else 'y'}"
    return f"{kind} duplicate of {name_of(keep)}"


def quality_facts(q: QualityMarks | None, row: int, name_of) -> list[tuple[str, str]]:
    """(label, value) rows for the preview: flags, duplicate, pixels, sharpness."""
    if q is None or not 0 <= row < len(q) or not q.width[row]:
        return []
    facts = [("flags", ", ".join(q.flags(row)) or "none")]
    note = duplicate_note(q, row, name_of)
    if note:
        facts.append(("duplicate", note))
    facts.append(("measured", f"{int(q.width[row])} × {int(q.height[row])} px"))
    facts.append(("sharpness", f"{float(q.sharpness[row]):.3g}"))
    return facts


def preview_caption(q: QualityMarks | None, row: int, rel_of) -> str:
    """The small preview's one line: file name, then the marks and the duplicate note."""
    name = str(rel_of(row)).rsplit("/", 1)[-1]
    parts = [name]
    flags = q.flags(row) if q is not None and 0 <= row < len(q) else []
    if flags:
        parts.append(", ".join(flags))
    note = duplicate_note(q, row, lambda r: str(rel_of(r)).rsplit("/", 1)[-1])
    if note:
        parts.append(note)
    return " · ".join(parts)
