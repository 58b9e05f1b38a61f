"""Monte Carlo consensus selection: run FPS or K-Means many times, count votes.

Each iteration picks ``count`` distinct images; an image's votes are the number of
iterations that picked it, its frequency ``votes / iterations * 100`` and its tier
``core`` (>= 90), ``stable`` (>= 70) or ``variable`` (> 0). The consensus is the
``count`` images with the most votes.

Reproducibility: one run seed (drawn from OS entropy and recorded when not given)
feeds ``np.random.SeedSequence(seed)``, which spawns one child seed per iteration, so
a given (embeddings, method, count, iterations, seed, exclusions, pins) always gives
the same result, whatever the machine's thread count.

Ties in the consensus are broken by *who was picked first*: the earlier iteration in
which the image was first picked, then its position in that iteration's pick order
(FPS: farthest-first order; K-Means: pins, then centre order). Pinned images come first
in every iteration, so they rank first among equal votes.

Exclusions are a boolean mask over index rows; they are applied as masks (never by
re-ordering rows), so results always refer to the caller's row numbers. An image both
pinned and excluded is treated as excluded.
"""

from __future__ import annotations

import numbers
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from picksel.errors import CancelFn, Cancelled, ProgressFn, UsageError
from picksel.fps import as_unit_float32, fps_batched
from picksel.kmeans import kmeans_runs, reduce

METHODS = ("fps", "kmeans")
CORE = 90.0
STABLE = 70.0
MAX_ITERATIONS = 100

FPS_BATCH = 50
"""Iterations advanced together by batched FPS (bounds the K x N work arrays)."""


def tier_of(frequency: float) -> str:
    """Tier of an image picked in ``frequency`` percent of the iterations."""
    if frequency >= CORE:
        return "core"
    if frequency >= STABLE:
        return "stable"
    return "variable"


@dataclass
class SelectionResult:
    method: str
    count: int  # images in the consensus: min(requested count, available images)
    iterations: int
    seed: int
    votes: np.ndarray  # int32 (N,) per index row; 0 = never picked; excluded rows 0
    consensus: np.ndarray  # int64 row indices, most votes first, ties broken deterministically
    excluded: np.ndarray  # bool (N,) mask used for the run

    @property
    def frequency(self) -> np.ndarray:
        """Percentage of iterations that picked each row (float64, exact for whole percents)."""
        return self.votes.astype(np.float64) * 100.0 / self.iterations

    @property
    def tiers(self) -> np.ndarray:
        """Tier name per row, "" for rows never picked."""
        freq = self.frequency
        out = np.full(self.votes.shape, "", dtype="<U8")
        out[self.votes > 0] = "variable"
        out[freq >= STABLE] = "stable"
        out[freq >= CORE] = "core"
        return out


def _whole_number(value: object, field: str, allowed: str) -> int:
    """Parse ints and integral strings ("20"); reject bools, None, "2.5", "abc"."""
    problem = f"{field} must be a whole number {allowed} (got {value!r})"
    if isinstance(value, bool) or value is None:
        raise UsageError(problem)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        raise UsageError(problem)
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("+-").isdigit():
            return int(text)
        raise UsageError(problem)
    raise UsageError(problem)


def validate(count: object, iterations: object, available: int) -> tuple[int, int]:
    """Check user values; return (count clamped to ``available``, iterations).

    Raises :class:`UsageError` naming the field and the allowed range.
    """
    c = _whole_number(count, "count", "of at least 1")
    if c < 1:
        raise UsageError(f"count must be a whole number of at least 1 (got {c})")
    it = _whole_number(iterations, "iterations", f"from 1 to {MAX_ITERATIONS}")
    if not 1 <= it <= MAX_ITERATIONS:
        raise UsageError(f"iterations must be a whole number from 1 to {MAX_ITERATIONS} (got {it})")
    if available < 1:
        raise UsageError("no images are available to select from")
    return min(c, int(available)), it


def _seed_value(seed: object) -> int:
    if seed is None:
        return secrets.randbits(32)
    value = _whole_number(seed, "seed", "of at least 0")
    if value < 0:
        raise UsageError(f"seed must be a whole number of at least 0 (got {value})")
    return value


def _mask(mask: object, n: int, name: str) -> np.ndarray:
    if mask is None:
        return np.zeros(n, dtype=bool)
    arr = np.asarray(mask)
    if arr.dtype == bool:
        if arr.shape != (n,):
            raise ValueError(f"{name} mask has shape {arr.shape}, expected ({n},)")
        return arr.copy()
    out = np.zeros(n, dtype=bool)
    rows = arr.astype(np.int64).ravel()
    if rows.size and (rows.min() < 0 or rows.max() >= n):
        raise ValueError(f"{name} rows out of range 0..{n - 1}")
    out[rows] = True
    return out


def _pin_rows(pinned: object, n: int, excluded: np.ndarray) -> np.ndarray:
    """Pinned rows in a stable order (given order for sequences, row order for masks)."""
    if pinned is None:
        return np.empty(0, dtype=np.int64)
    arr = np.asarray(pinned)
    if arr.dtype == bool:
        rows = np.flatnonzero(_mask(arr, n, "pinned"))
    else:
        rows = arr.astype(np.int64).ravel()
        if rows.size and (rows.min() < 0 or rows.max() >= n):
            raise ValueError(f"pinned rows out of range 0..{n - 1}")
        _, first = np.unique(rows, return_index=True)
        rows = rows[np.sort(first)]
    return rows[~excluded[rows]]


def consensus_order(picks: Sequence[np.ndarray], n: int) -> tuple[np.ndarray, np.ndarray]:
    """Votes per row and all voted rows ranked: votes desc, then first pick (iteration, position)."""
    votes = np.zeros(n, dtype=np.int32)
    first = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    width = max((len(p) for p in picks), default=0) + 1
    for it, rows in enumerate(picks):
        rows = np.asarray(rows, dtype=np.int64)
        votes[rows] += 1
        key = it * width + np.arange(rows.size, dtype=np.int64)
        first[rows] = np.minimum(first[rows], key)
    voted = np.flatnonzero(votes)
    order = np.lexsort((voted, first[voted], -votes[voted].astype(np.int64)))
    return votes, voted[order]


def run_selection(
    embeddings: np.ndarray,
    *,
    method: str,
    count: object,
    iterations: object,
    seed: object = None,
    excluded: np.ndarray | Sequence[int] | None = None,
    pinned: np.ndarray | Sequence[int] | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
) -> SelectionResult:
    """Run ``iterations`` FPS or K-Means picks of ``count`` images and count the votes.

    ``excluded`` / ``pinned`` are boolean masks over rows (or sequences of row numbers).
    ``progress(done, total, message)`` is called in order as the work advances: K-Means
    once per iteration (``"Iteration i/iterations"``), FPS, whose iterations advance
    together, in work units (greedy steps x iterations) at every thousandth. ``cancel()``
    is checked before every FPS step and every K-Means Lloyd pass and raises
    :class:`~picksel.errors.Cancelled` (nothing is returned or written then).
    """
    if method not in METHODS:
        raise UsageError(f"method must be one of {', '.join(METHODS)} (got {method!r})")
    emb = np.asarray(embeddings)
    if emb.ndim != 2:
        raise ValueError(f"embeddings must be a 2-D array, got shape {emb.shape}")
    n = emb.shape[0]
    if n == 0:
        raise UsageError("the album has no indexed images")
    excl = _mask(excluded, n, "excluded")
    available = n - int(np.count_nonzero(excl))
    if available == 0:
        raise UsageError(f"all {n} images are excluded; clear some exclusions")
    count_, iterations_ = validate(count, iterations, available)
    seed_ = _seed_value(seed)
    pins = _pin_rows(pinned, n, excl)
    if pins.size > count_:
        raise UsageError(
            f"{pins.size} images are pinned but count is {count_}; raise the count or unpin some"
        )
    report = progress or (lambda done, total, message: None)
    stop = cancel or (lambda: False)
    if stop():
        raise Cancelled()

    root = np.random.SeedSequence(seed_)
    children = root.spawn(iterations_)
    avail_rows = np.flatnonzero(~excl)
    if count_ >= available:
        # Every iteration picks every available image; still report and honour cancel.
        picks = []
        ordered = np.concatenate([pins, np.setdiff1d(avail_rows, pins)])
        for i in range(1, iterations_ + 1):
            if stop():
                raise Cancelled()
            picks.append(ordered)
            report(i, iterations_, f"Iteration {i}/{iterations_}")
    elif method == "fps":
        picks = _run_fps(emb, count_, children, excl, avail_rows, pins, report, stop)
    else:
        pca_rng = np.random.default_rng(root.spawn(1)[0])
        picks = _run_kmeans(emb, count_, children, pca_rng, avail_rows, pins, report, stop)

    votes, ranked = consensus_order(picks, n)
    return SelectionResult(
        method=method,
        count=count_,
        iterations=iterations_,
        seed=seed_,
        votes=votes,
        consensus=ranked[:count_].astype(np.int64),
        excluded=excl,
    )


def _run_fps(emb, count, children, excl, avail_rows, pins, report, stop) -> list[np.ndarray]:
    """Batched FPS in chunks of at most FPS_BATCH iterations.

    All iterations of a chunk advance together, so progress is counted in work units
    (greedy steps x iterations), reported each time another thousandth is done:
    monotonic, even with the work, ending at total/total.
    """
    unit = as_unit_float32(emb)
    total = len(children)
    mask = excl if excl.any() else None
    steps = max(1, count - max(1, pins.size))  # greedy steps after the start row(s)
    units = steps * total
    progress = _Progress(report, units, total)
    if pins.size:
        # Pins are the start set of every iteration, so every iteration is the same
        # deterministic traversal: compute it once, report every iteration.
        row = fps_batched(unit, count, pins[None, :], excluded=mask, cancel=stop,
                          on_step=lambda done, _steps: progress(done * total))[0]
        progress(units)
        return [row] * total
    starts = np.array(
        [avail_rows[np.random.default_rng(c).integers(avail_rows.size)] for c in children],
        dtype=np.int64,
    )
    picks: list[np.ndarray] = []
    for lo in range(0, total, FPS_BATCH):
        hi = min(total, lo + FPS_BATCH)

        def on_step(done: int, _steps: int, lo: int = lo, hi: int = hi) -> None:
            progress(lo * steps + done * (hi - lo))

        chunk = fps_batched(unit, count, starts[lo:hi], excluded=mask, cancel=stop, on_step=on_step)
        picks.extend(chunk.astype(np.int32) if emb.shape[0] < 2**31 else chunk)  # kept: half the bytes
        progress(hi * steps)
    return picks


class _Progress:
    """``report(done, units, message)`` whenever another thousandth of the units is done."""

    def __init__(self, report, units: int, iterations: int) -> None:
        self.report, self.units, self.iterations = report, units, iterations
        self.shown = -1

    def __call__(self, done: int) -> None:
        done = min(done, self.units)
        mille = done * 1000 // self.units
        if mille > self.shown:
            self.shown = mille
            self.report(done, self.units, f"{mille / 10:g}% of {self.iterations} iterations")


def _run_kmeans(emb, count, children, pca_rng, avail_rows, pins, report, stop) -> list[np.ndarray]:
    """One shared PCA for the run (seeded by its own child seed), then one seeded
    clustering per iteration (two at a time: :func:`picksel.kmeans.kmeans_runs`)."""
    total = len(children)
    red = reduce(emb, avail_rows, pca_rng)
    pos_of = np.full(emb.shape[0], -1, dtype=np.int64)
    pos_of[avail_rows] = np.arange(avail_rows.size)
    pin_pos = pos_of[pins]
    seeds = [int(child.generate_state(1)[0]) for child in children]
    return kmeans_runs(red, count, seeds, pin_pos, cancel=stop,
                       done=lambda i: report(i, total, f"Iteration {i}/{total}"))
