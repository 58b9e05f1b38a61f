"""How many images? The covering-radius curve of one FPS run, and its knee.

``r(k)`` is the largest distance (``1 - dot``, as in :mod:`picksel.fps`) from any available
image to its nearest of the first ``k`` FPS picks: every image of the album lies within
``r(k)`` of the selection. Farthest-first traversal makes this cheap: the image FPS picks
next is by definition the one farthest from the picks so far, so ``r(k)`` is the distance
of pick ``k + 1`` to picks ``1..k``. One lazy farthest-first run to ``K + 1`` picks
(:func:`lazy_fps`: passes over the rows still far from the picks, not one per pick) and a
``(K + 1) x (K + 1)`` product of the picks give the whole curve; a per-step loop over
the full matrix (:func:`covering_curve_reference`) is the oracle and the benchmark
baseline.

Why the knee is "the farthest point below the chord": with both axes scaled to 0..1,
the point of a decreasing convex curve farthest from the straight line joining its ends
is where adding images stops paying off quickly (the Kneedle difference curve without
smoothing, Satopaa et al. 2011). It needs no tuning knob and is exact on a curve that
falls steeply and then levels off.

The run starts from the pins when there are any (they come first in every selection), else
from the available image nearest the album's mean direction, so the curve is the same on
every run and can be cached: ``.picksel/curve.npz``, keyed by the index fingerprint, the
exclusions, the pins and K.
"""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from picksel.errors import CancelFn, Cancelled, ProgressFn, UsageError
from picksel.fps import as_unit_float32, blas_threads_for, split_rows
from picksel.fsutil import atomic_write

DEFAULT_MAX = 1000
CURVE_FILENAME = "curve.npz"
CURVE_VERSION = 1


@dataclass
class CoverCurve:
    k: np.ndarray  # int64 (K,): 1..K
    radius: np.ndarray  # float64 (K,): covering radius with the first k picks
    picks: np.ndarray  # int64 (K,): the FPS picks, in order

    @property
    def knee(self) -> int:
        return knee_of(self.k, self.radius)


def _start_rows(unit: np.ndarray, excluded: np.ndarray, pinned: np.ndarray) -> np.ndarray:
    if pinned.size:
        return pinned
    # The mean direction and the nearest row to it, block by block: ``unit[avail]``
    # would copy the whole matrix (0.2-0.9 s and 1x the matrix at 100,000 x 768).
    block = 8192
    total = np.zeros(unit.shape[1], dtype=np.float64)
    for lo in range(0, unit.shape[0], block):
        keep = ~excluded[lo : lo + block]
        total += unit[lo : lo + block][keep].sum(axis=0, dtype=np.float64)
    centre = (total / max(1, int((~excluded).sum()))).astype(np.float32)
    sims = unit @ centre
    sims[excluded] = -np.inf
    return np.array([int(np.argmax(sims))], dtype=np.int64)


def _masks(n: int, excluded: object, pinned: object) -> tuple[np.ndarray, np.ndarray]:
    excl = np.zeros(n, dtype=bool)
    if excluded is not None:
        excl |= np.asarray(excluded, dtype=bool)
    pins = np.asarray([] if pinned is None else pinned, dtype=np.int64).ravel()
    pins = pins[~excl[pins]] if pins.size else pins
    if excl.all():
        raise UsageError(f"all {n} images are excluded; clear some exclusions")
    return excl, pins


def _radii_for_starts(unit: np.ndarray, excl: np.ndarray, pins: np.ndarray) -> list[float]:
    """r(k) for k < number of pins: those picks are fixed, not the farthest, so the
    running maximum must be measured over the whole album (one pass per pin)."""
    mins = np.full(unit.shape[0], np.inf, dtype=np.float32)
    mins[excl] = -np.inf
    out: list[float] = []
    for row in pins[:-1]:
        np.minimum(mins, 1.0 - unit @ unit[row], out=mins)
        mins[row] = -np.inf
        out.append(max(0.0, float(mins.max())))
    return out


POOL = 4096
"""Rows whose distances the lazy run keeps (lazily) up to date between passes: the top
of the running minima at the last pass."""
BATCH = 32
"""Pool rows brought up to date together when the best-looking one is stale."""
SPARE = 2
"""A pass brings at least this many pools' worth of rows up to date (those with the
largest bounds), so the pool it chooses is current and the next pass comes later."""
PASS_BLOCK = 1024
"""Rows gathered per block of a pass."""


def lazy_fps(
    unit: np.ndarray,
    count: int,
    starts: np.ndarray,
    excluded: np.ndarray,
    cancel: CancelFn | None = None,
    on_step: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """One farthest-first run, lazily: the picks of :func:`picksel.fps.fps_reference`
    (up to float32 near-ties, which do not change the curve's values).

    Every row keeps an upper bound of its distance to the picks (its running minimum
    over the picks it has seen: ``seen`` of them) that only ever shrinks. A pool of the
    rows with the largest bounds is brought up to date lazily: a step only updates the
    best-looking pool rows (a small compute-bound product against the picks they have not
    seen) until the best one is current; it is then the farthest row as long as no row
    outside the pool has a larger bound. When one has, a pass brings up to date only the
    rows whose bound is at least the pool's best - the others cannot be farther - and
    the pool is chosen again.

    Why: the passes are the cost (rows x picks absorbed x D multiply-adds), and with a
    pass over every row the last one took in ~440 of 1,000 picks over all 100,000 rows
    (1.5 s of CPU of 2.2). Late passes now touch only the few rows still far from the
    picks. Why not :func:`picksel.fps.fps_batched` with one run: it refreshes all of
    its candidates at every step (a matrix-vector product per step, memory-bound), which
    for one long run costs more than the passes it saves.
    """
    n, d = unit.shape
    available = n - int(excluded.sum())
    m = max(starts.size, min(int(count), available))
    picks = np.empty(m, dtype=np.int64)
    picks[: starts.size] = starts
    vecs = np.empty((m, d), dtype=np.float32)
    vecs[: starts.size] = unit[starts]
    bound = np.full(n, np.inf, dtype=np.float32)
    bound[excluded] = -np.inf
    bound[starts] = -np.inf
    seen = np.zeros(n, dtype=np.int32)  # picks folded into each row's bound
    t = min(POOL, n)
    pool = np.zeros(t, dtype=np.int64)
    dist = np.full(t, -np.inf, dtype=np.float32)
    upto = np.zeros(t, dtype=np.int64)
    outside = np.inf  # largest bound outside the pool (+inf: no pool yet)

    def refresh(k: int, floor: float) -> None:
        """Bring the rows with the largest bounds up to pick ``k`` - every row whose
        bound is at least ``floor``, and ``SPARE`` pools' worth at least - and choose
        the pool among them, so that it starts current."""
        nonlocal outside
        if outside != np.inf:  # the pool's bounds are at least as tight as the rows'
            bound[pool] = dist
            seen[pool] = upto
        u = min(n, max(int(np.count_nonzero(bound >= floor)), SPARE * t))
        if u < n:
            part = np.argpartition(bound, n - u - 1)
            top = part[n - u :]
            rest = float(bound[part[n - u - 1]])  # the largest bound not brought up to date
        else:
            top, rest = np.arange(n), -np.inf
        _absorb_rows(unit, vecs, bound, seen, np.sort(top[seen[top] < k]), k)
        if u > t:
            vals = bound[top]
            part = np.argpartition(vals, u - t - 1)
            pool[:] = top[part[u - t :]]
            outside = max(rest, float(vals[part[u - t - 1]]))
        else:
            pool[:] = top
            outside = rest
        dist[:] = bound[pool]
        upto[:] = seen[pool]

    total = m - starts.size
    for k in range(starts.size, m):
        if cancel is not None and cancel():
            raise Cancelled()
        if outside == np.inf:
            refresh(k, -np.inf)
        while True:
            best = int(np.argmax(dist))
            if upto[best] >= k:
                if dist[best] >= outside:
                    break
                refresh(k, float(dist[best]))
                continue
            top = np.argpartition(dist, t - BATCH)[t - BATCH :] if t > BATCH else np.arange(t)
            # the best-looking row itself even when ties at the cut leave it out
            top = np.append(top[(upto[top] < k) & (top != best)], best)
            lo = int(upto[top].min())
            sims = unit[pool[top]] @ vecs[lo:k].T
            already = np.arange(lo, k)[None, :] < upto[top][:, None]
            sims[already] = -np.inf
            dist[top] = np.minimum(dist[top], 1.0 - sims.max(axis=1))
            upto[top] = k
        if dist[best] == -np.inf:
            return picks[:k]
        row = int(pool[best])
        picks[k] = row
        vecs[k] = unit[row]
        dist[best] = -np.inf
        upto[best] = m  # picked: current for good (-inf = not available)
        bound[row] = -np.inf
        if on_step is not None:
            on_step(k - starts.size + 1, total)
    return picks


def _absorb_rows(
    unit: np.ndarray, vecs: np.ndarray, bound: np.ndarray, seen: np.ndarray, rows: np.ndarray, k: int
) -> None:
    """Fold picks ``seen[r]..k-1`` into ``bound[r]`` for each of ``rows``: rows that saw
    the same picks go together, in blocks of ``PASS_BLOCK`` (gathered unless the rows
    are one contiguous run), split over two threads on large passes."""
    if rows.size == 0:
        return
    order = np.argsort(seen[rows], kind="stable")
    rows = rows[order]
    cuts = np.flatnonzero(np.diff(seen[rows])) + 1
    for group in np.split(rows, cuts):
        centres = vecs[int(seen[group[0]]) : k]
        whole = group.size == unit.shape[0]  # the first pass: every row, in place

        def part(lo: int, hi: int, group: np.ndarray = group, centres: np.ndarray = centres,
                 whole: bool = whole) -> None:
            for a in range(lo, hi, PASS_BLOCK):
                b = min(hi, a + PASS_BLOCK)
                x = unit[a:b] if whole else unit[group[a:b]]
                top = (x @ centres.T).max(axis=1)
                np.subtract(1.0, top, out=top)
                if whole:
                    np.minimum(bound[a:b], top, out=bound[a:b])
                else:
                    bound[group[a:b]] = np.minimum(bound[group[a:b]], top)

        split_rows(group.size, part, block=PASS_BLOCK)
        seen[group] = k


def covering_curve(
    emb: np.ndarray,
    k_max: int = DEFAULT_MAX,
    *,
    excluded: np.ndarray | None = None,
    pinned: np.ndarray | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
) -> CoverCurve:
    """The covering radius for k = 1..K, K = ``k_max`` capped by the available images
    (and never below the pin count)."""
    unit = as_unit_float32(emb)
    n = unit.shape[0]
    excl, pins = _masks(n, excluded, pinned)
    available = n - int(excl.sum())
    k_top = max(pins.size, min(int(k_max), available))
    starts = _start_rows(unit, excl, pins)
    total = k_top + 1 - starts.size

    def on_step(done: int, _total: int) -> None:
        if progress is not None:
            progress(done, max(1, total), "covering radius")

    with blas_threads_for(0):  # small products per step; the passes split rows over two threads
        picks = lazy_fps(unit, k_top + 1, starts, excl, cancel, on_step)
    head = _radii_for_starts(unit, excl, pins) if pins.size > 1 else []
    p = unit[picks].astype(np.float64)
    with blas_threads_for(p.shape[0] * p.shape[0] * p.shape[1]):
        sims = p @ p.T
    # pick j's distance to its nearest of picks 0..j-1, for j = s..K (strictly lower part)
    lower = np.where(np.tri(picks.size, k=-1, dtype=bool), sims, -np.inf)
    nearest = 1.0 - lower.max(axis=1)
    tail = np.maximum(nearest[max(1, pins.size):], 0.0)
    radius = np.concatenate([head, tail])[:k_top]
    if picks.size <= k_top:  # every available image was picked: nothing left to cover
        radius = np.concatenate([radius, np.zeros(k_top - radius.size)])
    if cancel is not None and cancel():
        raise Cancelled()
    return CoverCurve(
        k=np.arange(1, k_top + 1, dtype=np.int64),
        radius=radius.astype(np.float64),
        picks=picks[:k_top].astype(np.int64),
    )


def covering_curve_reference(
    emb: np.ndarray,
    k_max: int = DEFAULT_MAX,
    *,
    excluded: np.ndarray | None = None,
    pinned: np.ndarray | None = None,
) -> np.ndarray:
    """The plain loop: one full product per pick, r(k) read off the running minima.

    The correctness oracle and the benchmark baseline; returns the radii only."""
    unit = as_unit_float32(emb)
    n = unit.shape[0]
    excl, pins = _masks(n, excluded, pinned)
    k_top = max(pins.size, min(int(k_max), n - int(excl.sum())))
    order = list(_start_rows(unit, excl, pins))
    mins = np.full(n, np.inf, dtype=np.float32)
    mins[excl] = -np.inf
    out: list[float] = []
    with blas_threads_for(unit.shape[0] * unit.shape[1]):
        for k in range(k_top):
            row = order[k] if k < len(order) else int(np.argmax(mins))
            np.minimum(mins, 1.0 - unit @ unit[row], out=mins)
            mins[row] = -np.inf
            out.append(max(0.0, float(mins.max())) if np.isfinite(mins.max()) else 0.0)
    return np.asarray(out, dtype=np.float64)


def knee_of(k: np.ndarray, radius: np.ndarray) -> int:
    """The k farthest below the chord from the curve's first to its last point, both axes
    scaled to 0..1 (see the module docstring); the first k on a flat or tiny curve."""
    k = np.asarray(k, dtype=np.float64)
    r = np.asarray(radius, dtype=np.float64)
    if k.size < 3 or r[0] <= r[-1]:
        return int(k[0]) if k.size else 0
    x = (k - k[0]) / (k[-1] - k[0])
    y = (r - r[-1]) / (r[0] - r[-1])
    below = (1.0 - x) - y  # the chord is y = 1 - x; distance below it, up to a constant
    return int(k[int(np.argmax(below))])


# --------------------------------------------------------------------------- cache


def curve_key(fingerprint: str, excluded: np.ndarray, pinned: np.ndarray, k_max: int) -> str:
    """What the curve depends on, in one string: the index, the exclusions, the pins, K."""
    h = hashlib.sha256()
    h.update(np.packbits(np.asarray(excluded, dtype=bool)).tobytes())
    h.update(b"|" + np.asarray(pinned, dtype=np.int64).tobytes())
    return f"{fingerprint}:{h.hexdigest()[:32]}:{int(k_max)}"


def save_curve(state_dir: Path, key: str, curve: CoverCurve) -> None:
    """Write ``curve.npz`` atomically (plain arrays, no pickled objects)."""
    with atomic_write(Path(state_dir) / CURVE_FILENAME, "wb") as fh:
        np.savez(
            fh, k=curve.k, radius=curve.radius, picks=curve.picks,
            key=np.array(key), version=np.array(CURVE_VERSION, dtype=np.int64),
        )


def load_curve(state_dir: Path, key: str) -> CoverCurve | None:
    """The cached curve when it was computed for ``key``; None when missing, stale or
    unreadable (a bad cache is recomputed, never an error)."""
    path = Path(state_dir) / CURVE_FILENAME
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            if int(z["version"]) != CURVE_VERSION or str(z["key"][()]) != key:
                return None
            k = np.asarray(z["k"], dtype=np.int64)
            radius = np.asarray(z["radius"], dtype=np.float64)
            picks = np.asarray(z["picks"], dtype=np.int64)
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile):
        return None
    if not (k.ndim == radius.ndim == picks.ndim == 1 and k.size == radius.size == picks.size):
        return None
    if k.size == 0 or not np.all(np.isfinite(radius)):
        return None
    return CoverCurve(k=k, radius=radius, picks=picks)


def ensure_curve(
    state_dir: Path,
    fingerprint: str,
    emb: np.ndarray,
    k_max: int = DEFAULT_MAX,
    *,
    excluded: np.ndarray,
    pinned: np.ndarray,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
) -> CoverCurve:
    """The cached curve if the index, exclusions, pins and K are unchanged, else computed
    and saved. Raises :class:`Cancelled` without touching the cache."""
    key = curve_key(fingerprint, excluded, pinned, k_max)
    cached = load_curve(state_dir, key)
    if cached is not None:
        return cached
    curve = covering_curve(emb, k_max, excluded=excluded, pinned=pinned, progress=progress, cancel=cancel)
    save_curve(state_dir, key, curve)
    return curve
