"""What the data panes draw: one state code per index row plus the row facts.

Kept free of Textual so it can be built and tested from plain numpy; the app builds
a :class:`ViewModel` from the index and the album state and hands it to the widgets.
The state codes double as draw priorities (a higher code wins a shared map cell), so
``excluded > core > stable > variable > none`` is just ``max``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from picksel.tui.marks import QualityMarks

STATE_NONE = 0  # not selected: quiet grey
STATE_VARIABLE = 1  # green
STATE_STABLE = 2  # cyan
STATE_CORE = 3  # magenta
STATE_EXCLUDED = 4  # red

STATE_NAMES = ("none", "variable", "stable", "core", "excluded")

# One colour per state, shared by the map, the list badges and the sidebar legend.
# Hex (truecolour) on purpose: named ANSI colours go through the theme's ANSI palette,
# where magenta and red come out as near-identical pinks.
STATE_COLORS = {
    STATE_NONE: "#7a7a7a",
    STATE_VARIABLE: "#5fd75f",
    STATE_STABLE: "#00d7d7",
    STATE_CORE: "#ff5fff",
    STATE_EXCLUDED: "#ff4040",
}

# Tier thresholds mirror picksel.select (CORE = 90, STABLE = 70); repeated here as
# plain numbers so this module never imports the selection engine.
_CORE = 90.0
_STABLE = 70.0


def row_states(
    n: int,
    votes: np.ndarray | None,
    iterations: int,
    excluded: np.ndarray | None,
) -> np.ndarray:
    """State code per row: tier from vote frequency, excluded overriding everything.

    ``votes`` None (no selection yet) leaves every row ``STATE_NONE`` apart from
    exclusions, which are shown even before the first run.
    """
    states = np.zeros(n, dtype=np.uint8)
    if votes is not None and iterations > 0 and n:
        v = np.asarray(votes)
        if v.shape != (n,):
            raise ValueError(f"votes has shape {v.shape}, expected ({n},)")
        freq = v.astype(np.float64) / float(iterations) * 100.0
        voted = v > 0
        states[voted] = STATE_VARIABLE
        states[voted & (freq >= _STABLE)] = STATE_STABLE
        states[voted & (freq >= _CORE)] = STATE_CORE
    if excluded is not None and n:
        ex = np.asarray(excluded, dtype=bool)
        if ex.shape != (n,):
            raise ValueError(f"excluded has shape {ex.shape}, expected ({n},)")
        states[ex] = STATE_EXCLUDED
    return states


def tier_name(state: int) -> str:
    """Short badge text for a state ("" for unselected rows)."""
    return "" if state == STATE_NONE else STATE_NAMES[int(state)]


@dataclass
class ViewModel:
    """Everything the panes need to draw one album; arrays are per index row."""

    root: Path
    paths: list[str]
    states: np.ndarray  # uint8 (N,)
    votes: np.ndarray  # int32 (N,)
    frequency: np.ndarray  # float64 (N,)
    excluded: np.ndarray  # bool (N,)
    pinned: np.ndarray  # bool (N,)
    favorite: np.ndarray  # bool (N,)
    consensus: np.ndarray  # int64 selected rows, consensus order
    state_dir: Path = field(default_factory=Path)
    quality: QualityMarks | None = None  # flags and duplicate groups; None until checked

    def __len__(self) -> int:
        return len(self.paths)

    @classmethod
    def empty(cls, root: Path, paths: list[str], state_dir: Path | None = None) -> ViewModel:
        """A model with no selection, exclusions, pins or favorites (e.g. a fresh album)."""
        n = len(paths)
        return cls(
            root=Path(root),
            paths=list(paths),
            states=np.zeros(n, dtype=np.uint8),
            votes=np.zeros(n, dtype=np.int32),
            frequency=np.zeros(n, dtype=np.float64),
            excluded=np.zeros(n, dtype=bool),
            pinned=np.zeros(n, dtype=bool),
            favorite=np.zeros(n, dtype=bool),
            consensus=np.zeros(0, dtype=np.int64),
            state_dir=Path(state_dir) if state_dir is not None else Path(root) / ".picksel",
        )
