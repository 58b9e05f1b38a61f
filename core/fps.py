"""Farthest-point sampling (FPS) over cosine distance, one run or many at once.

Distance is ``1 - dot`` over L2-normalised rows. Each FPS run starts from a start set
(one random image, or the pinned images) and then greedily adds the image whose
distance to its nearest already-selected image is largest.

Two implementations share one decision rule:

* :func:`fps_reference` - the plain loop, one run at a time, one ``emb @ emb[last]``
  vector product per step. It is the benchmark baseline and the correctness oracle.
* :func:`fps_batched` - K runs advanced together, lazily. Each run keeps a few hundred
  candidate rows (the top of its running minimum distances) up to date at every step
  and an upper bound on all other rows; the full (K, N) minima are brought up to date
  in one pass over the matrix only when some run's best candidate no longer beats that
  bound. A pass absorbs every run's picks since the last one in one compute-bound
  product (each distinct centre once), instead of one memory-bound pass per centre.

  Speed, measured on the FPS benchmark (N=100k, D=768, 20 runs of 200 picks, 2 cores):
  16 passes instead of 180, 4.3-4.9 s against 45 s for the plain loop run 20 times
  (about 10x). The previous design - one N x K product per step, a column cache and two
  threads over row blocks - reached 4.6-5.1x: a product with ~14 columns still has to
  stream the whole matrix through OpenBLAS's packing once per step (~25 ms of a ~45 ms
  step whatever the column count). Memory beyond the matrix is the (K, N) minima plus the
  candidates' copied vectors (at most a quarter of the matrix); excluded rows are masked,
  never copied.

  Exact duplicate images (the same file in two folders, scraped "image unavailable"
  placeholders) are masked during the runs, all but the lowest row of each group: the
  plain loop's tie rule would pick that one first and the others only once nothing is
  farther than a copy from its twin, which is checked afterwards. An album where every
  image has 100 copies went from a pass per step (23 s) to 7 passes (7 s).

Why a shared decision rule: BLAS rounds a matrix-matrix product differently from a
matrix-vector product (about 1e-7), so a plain float32 ``argmax`` would let the two
implementations disagree whenever two candidates are nearly tied. Both therefore use
float32 only to *screen*: if more than one candidate lies within ``TIE_TOL`` of the
best, the candidates' distances are recomputed exactly (float64 products of the float32
inputs, summed the same way whatever the batch shape) and the largest wins, ties going
to the lowest row index. The float32 error (< 5e-5 for unit vectors up to D ~ 1500) is
well inside ``TIE_TOL``, so the true winner is always among the candidates, and the
choice no longer depends on which BLAS kernel produced the screen.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from picksel.errors import Cancelled

TIE_TOL = 1e-4
"""Candidates within this float32 distance of the best are decided exactly."""

MAX_EXACT = 2048
"""Above this many near-tied candidates (massively duplicated images) the exact
re-check is skipped and the float32 argmax (lowest row) is used instead."""

_PAIR_BLOCK = 1 << 18  # float64 products per block of exactly summed pairs (2 MB)
_EXACT_BLOCK = 1 << 20  # float32 screen similarities per block of the exact re-check (4 MB)
_SCREEN_WINDOW = 1e-3  # centres this close to a row's best float32 similarity are summed exactly


SMALL_BLAS = 3e7
"""Products with fewer multiply-adds than this run on one BLAS thread: OpenBLAS's thread
hand-off costs more than it saves there, and on a busy 2-core machine a small
multi-threaded product was measured 30x slower than a single-threaded one."""


@contextlib.contextmanager
def blas_threads_for(multiply_adds: float) -> Iterator[None]:
    """Limit BLAS to one thread while running products of about this size."""
    if multiply_adds >= SMALL_BLAS:
        yield
        return
    with _controller().limit(limits=1, user_api="blas"):
        yield


@functools.cache
def _controller():  # noqa: ANN202 - threadpoolctl.ThreadpoolController, imported lazily
    """One scan of the loaded BLAS libraries per process (a scan costs ~20 ms)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def as_unit_float32(emb: np.ndarray) -> np.ndarray:
    """Return ``emb`` as float32 with L2-normalised rows, copying only when needed.

    Index embeddings are already float32 and normalised, so the usual path allocates
    nothing of size N x D (the FPS memory budget depends on that).
    """
    arr = np.asarray(emb)
    if arr.ndim != 2:
        raise ValueError(f"embeddings must be a 2-D array, got shape {arr.shape}")
    if arr.dtype == np.float32 and arr.flags.c_contiguous:
        norms = np.einsum("ij,ij->i", arr, arr)
        if arr.shape[0] == 0 or np.all(np.abs(norms - 1.0) < 1e-3):
            return arr
    out = np.array(arr, dtype=np.float32, order="C", copy=True)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    out /= norms
    return out


def exact_min_distance(emb: np.ndarray, rows: np.ndarray, chosen: np.ndarray, wide: bool = False) -> np.ndarray:
    """Cosine distance from each of ``rows`` to its nearest row in ``chosen``, in float64.

    Products of two float32 numbers are exact in float64 and each dot product is a
    plain contiguous ``sum`` over D, so the result for a row does not depend on how
    many other rows are computed with it.

    Only the pairs that can hold a row's nearest centre are summed in float64: a float32
    product screens them (any centre within ``_SCREEN_WINDOW`` of the row's best float32
    similarity; float32 errors are below 6e-8 x D, far inside the window up to D ~ 8000).
    The maximum over that subset is the maximum over all centres whatever the screen's
    rounding, so the result stays exact. Why: albums full of exact duplicates make every
    step a near-tie, and summing each tied row against every pick in float64 made the
    re-check, not the products, the cost of FPS there. ``wide``: see
    :func:`exact_best_similarity`.
    """
    rows = np.asarray(rows, dtype=np.int64)
    return 1.0 - exact_best_similarity(emb, rows, chosen, np.full(rows.size, -np.inf), wide)


def exact_best_similarity(
    emb: np.ndarray, rows: np.ndarray, chosen: np.ndarray, floor: np.ndarray, wide: bool = False
) -> np.ndarray:
    """``max(floor, exact similarity of each row to its nearest row in chosen)`` (float64).

    ``floor`` is a row's exact best similarity over centres seen before, so a running
    maximum can take in new centres without summing the old ones again: only pairs whose
    float32 screen reaches ``max(floor, best screen) - _SCREEN_WINDOW`` can raise it.

    The work buffers are sized to the matrix (the batched runs' peak memory is budgeted
    per matrix), or, ``wide``, as the plain loop always sized them (all centres at once,
    up to 4 MB of screen): the benchmark baseline keeps the speed it was measured at.
    The result is the same either way.
    """
    rows = np.asarray(rows, dtype=np.int64)
    chosen = np.asarray(chosen, dtype=np.int64)
    out = np.array(floor, dtype=np.float64, copy=True)
    if chosen.size == 0 or rows.size == 0:
        return out
    d = emb.shape[1]
    # Work buffers scale down with small matrices (peak memory is budgeted per matrix):
    # float32s for a block of centres' vectors, of rows' vectors and of their screen.
    if wide:
        cb = chosen.size
        rb = max(1, min(_EXACT_BLOCK, max(1 << 14, emb.size // 8)) // chosen.size)
    else:
        budget = min(_EXACT_BLOCK, max(1 << 14, emb.size // 16))
        cb = max(1, min(chosen.size, budget // (2 * d)))
        rb = max(1, (budget - cb * d) // (d + cb))
    pairs = max(1, _PAIR_BLOCK // d) if wide else _pair_block(emb)
    whole = emb[chosen] if cb == chosen.size else None
    for s in range(0, rows.size, rb):
        a32 = emb[rows[s : s + rb]]
        part = out[s : s + rb]
        best32 = np.full(a32.shape[0], -np.inf, dtype=np.float32)
        # Centres block by block, against the running best screen: that threshold is
        # never above the one of all centres at once, so the pairs summed are a superset
        # of those and still hold each row's exactly nearest centre.
        for c0 in range(0, chosen.size, cb):
            b32 = whole if whole is not None else emb[chosen[c0 : c0 + cb]]
            screen = a32 @ b32.T
            np.maximum(best32, screen.max(axis=1), out=best32)
            lim = np.maximum(best32, part) - _SCREEN_WINDOW
            ri, ci = np.nonzero(screen >= lim[:, None])
            for p in range(0, ri.size, pairs):
                r, c = ri[p : p + pairs], ci[p : p + pairs]
                np.maximum.at(part, r, _exact_dots(a32[r], b32[c]))
    return out


def _pair_block(emb: np.ndarray) -> int:
    """Pairs summed exactly per block: their temporaries (~24 bytes x D a pair) stay
    within 2 MB and about a sixty-fourth of the matrix."""
    return max(8, min(_PAIR_BLOCK, emb.size // 256) // emb.shape[1])


def _exact_dots(a32: np.ndarray, b32: np.ndarray) -> np.ndarray:
    """Row-wise dot products of float32 rows, exactly: the float64 products of two
    float32 numbers are exact, and each row is one contiguous pairwise ``sum`` over D,
    the same whatever the number of rows. Every exact distance goes through here."""
    a = a32.astype(np.float64)
    a *= b32.astype(np.float64)
    return a.sum(axis=-1)


def choose_next(mins: np.ndarray, emb: np.ndarray, chosen: np.ndarray, wide: bool = False) -> int:
    """The farthest candidate given the float32 running minima ``mins`` (-inf = unavailable).

    Returns -1 when nothing is available. See the module docstring for why near-ties
    are re-decided exactly.
    """
    best_row = int(np.argmax(mins))
    best = mins[best_row]
    if best == -np.inf:
        return -1
    cand = np.flatnonzero(mins >= best - TIE_TOL)
    if cand.size == 1 or cand.size > MAX_EXACT:
        return best_row
    exact = exact_min_distance(emb, cand, chosen, wide)
    return int(cand[int(np.argmax(exact))])


def _initial_mins(n: int, excluded: np.ndarray | None) -> np.ndarray:
    mins = np.full(n, np.inf, dtype=np.float32)
    if excluded is not None:
        mins[excluded] = -np.inf
    return mins


def fps_reference(
    emb: np.ndarray,
    count: int,
    start: int | Sequence[int] | np.ndarray,
    *,
    excluded: np.ndarray | None = None,
) -> np.ndarray:
    """Plain farthest-first traversal, one vector product per step.

    ``start`` is one row or a start set (pins); the start rows come first in the result,
    then up to ``count - len(start)`` more rows in pick order. Rows masked by
    ``excluded`` are never picked. ``emb`` must hold L2-normalised rows.
    """
    with blas_threads_for(emb.shape[0] * emb.shape[1]):
        return _fps_reference(emb, count, start, excluded)


def _fps_reference(
    emb: np.ndarray, count: int, start: int | Sequence[int] | np.ndarray, excluded: np.ndarray | None
) -> np.ndarray:
    n = emb.shape[0]
    starts = np.atleast_1d(np.asarray(start, dtype=np.int64))
    mins = _initial_mins(n, excluded)
    chosen: list[int] = []
    for row in starts:
        sims = emb @ emb[row]
        np.minimum(mins, 1.0 - sims, out=mins)
        mins[row] = -np.inf
        chosen.append(int(row))
    while len(chosen) < count:
        nxt = choose_next(mins, emb, np.asarray(chosen), wide=True)
        if nxt < 0:
            break
        sims = emb @ emb[nxt]
        np.minimum(mins, 1.0 - sims, out=mins)
        mins[nxt] = -np.inf
        chosen.append(nxt)
    return np.asarray(chosen[: max(count, starts.size)], dtype=np.int64)


def fps_batched(
    emb: np.ndarray,
    count: int,
    starts: np.ndarray,
    *,
    excluded: np.ndarray | None = None,
    cancel: Callable[[], bool] | None = None,
    on_step: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """K farthest-first traversals advanced together.

    ``starts`` is (K,) - one start row per run - or (K, S) - a start set per run.
    Returns (K, m) int64 rows in pick order, m = min(count, available) (at least S).
    Gives exactly the same rows as :func:`fps_reference` for the same starts.
    ``on_step(done, total)`` is called after each greedy step; ``cancel`` is checked
    before every step and raises :class:`~picksel.errors.Cancelled`.
    """
    starts = np.asarray(starts, dtype=np.int64)
    if starts.ndim == 1:
        starts = starts[:, None]
    report = _step_reports(on_step, starts.shape[1], _run_length(emb.shape[0], starts.shape[1], count, excluded))
    with blas_threads_for(emb.shape[0] * emb.shape[1] * starts.shape[0]):
        copies = exact_copies(emb, excluded)
        if copies is None:
            return _fps_batched(emb, count, starts, excluded, cancel, report)
        # Exact copies of a lower row can only be picked after everything else is as
        # close as a copy is to its twin; masking them keeps the candidate sets free of
        # ties (an album of many copies otherwise needs a pass per step). The runs are
        # then checked: from the first pick that a copy could have competed with (or
        # when the distinct rows run out), they go on unmasked from the picks so far.
        masked = copies.mask if excluded is None else (copies.mask | excluded)
        picks = _fps_batched(emb, count, starts, masked, cancel, report, copies.group)
        s = starts.shape[1]
        safe = _safe_prefix(emb, picks, s, copies.self_distance)
        if safe == picks.shape[1] == _run_length(emb.shape[0], s, count, excluded):
            return picks
        return _fps_batched(emb, count, picks[:, :safe], excluded, cancel, report, copies.group)


def _step_reports(
    on_step: Callable[[int, int], None] | None, s: int, m: int
) -> Callable[[int], None] | None:
    """``on_step(done, total)`` in greedy steps of the final runs, from the internal
    reports of how many picks (start rows included) each run has: never going back,
    although a run resumed without the copies' mask re-does some steps."""
    if on_step is None:
        return None
    done = 0

    def report(picked: int) -> None:
        nonlocal done
        if picked - s > done:
            done = min(picked - s, m - s)
            on_step(done, m - s)

    return report


_HASH_SEED = 20261125


@dataclass
class Copies:
    """Rows that are bit-for-bit copies of a lower available row."""

    mask: np.ndarray  # bool (N,): every copy but the lowest row of its group
    group: np.ndarray  # int64 (N,): the lowest row with the same vector (itself if none)
    self_distance: float  # largest ``1 - x.x`` in float64 (not quite 0 for float32 rows)


def exact_copies(emb: np.ndarray, excluded: np.ndarray | None = None) -> Copies | None:
    """The exact copies among the available rows, or None when there are none.

    Copies are found by one float32 projection (identical rows project identically when
    BLAS runs them through the same kernel path; a copy it misses simply stays
    unmasked) and then compared in full, so a different row is never taken for a copy.
    """
    n, d = emb.shape
    if n < 2:
        return None
    probe = np.random.default_rng(_HASH_SEED).standard_normal(d).astype(np.float32)
    h = emb @ probe
    rows = np.arange(n) if excluded is None else np.flatnonzero(~excluded)
    order = rows[np.lexsort((rows, h[rows]))]
    hs = h[order]
    cand = np.flatnonzero(hs[1:] == hs[:-1])
    if cand.size == 0:
        return None
    same = np.zeros(cand.size, dtype=bool)
    step = max(1, min(1 << 21, max(1 << 14, emb.size // 16)) // max(1, d))  # small buffers
    for lo in range(0, cand.size, step):
        k = cand[lo : lo + step]
        same[lo : lo + step] = np.all(emb[order[k]] == emb[order[k + 1]], axis=1)
    if not same.any():
        return None
    mask = np.zeros(n, dtype=bool)
    mask[order[cand[same] + 1]] = True  # within a run of equal rows, all but the lowest
    # The lowest row of each run of equal rows in ``order`` (runs are sorted by row).
    follows = np.zeros(order.size, dtype=bool)
    follows[cand[same] + 1] = True
    head = np.maximum.accumulate(np.where(follows, 0, np.arange(order.size)))
    group = np.arange(n, dtype=np.int64)
    group[order] = order[head]
    twins = order[cand[same]]
    self_distance = -np.inf
    for lo in range(0, twins.size, step):  # in blocks: twins can be most of the matrix
        x = emb[twins[lo : lo + step]].astype(np.float64)
        self_distance = max(self_distance, float(np.max(1.0 - np.einsum("ij,ij->i", x, x))))
    return Copies(mask, group, self_distance)


def _run_length(n: int, s: int, count: int, excluded: np.ndarray | None) -> int:
    """Rows in each run's result: ``count`` capped by the rows not excluded, never
    fewer than the ``s`` start rows."""
    available = n - (int(np.count_nonzero(excluded)) if excluded is not None else 0)
    return max(s, min(count, available))


def _safe_prefix(emb: np.ndarray, picks: np.ndarray, s: int, self_distance: float) -> int:
    """How many leading picks every run with exact copies masked shares with the same
    run unmasked.

    A copy ties exactly with its lowest twin (which wins the tie) until that twin is
    picked, and is then ``self_distance`` from the picks. So a masked run picks what the
    unmasked one picks as long as each greedy pick is farther than that by more than the
    float32 screen's tolerance. Pick distances only shrink along a run, so each run's
    first pick that is not is found by bisection."""
    k, m = picks.shape
    limit = self_distance + 2 * TIE_TOL

    def far(r: int, j: int) -> bool:
        return bool(exact_min_distance(emb, picks[r, j : j + 1], picks[r, :j])[0] > limit)

    safe = m
    for r in range(k):
        lo, hi = s, m  # picks before lo are far; the first close one is in [lo, hi]
        while lo < hi:
            mid = (lo + hi) // 2
            if far(r, mid):
                lo = mid + 1
            else:
                hi = mid
        safe = min(safe, lo)
    return safe


SPLIT_ROWS = 16384
"""Products over at least this many rows run in two Python threads with single-threaded
BLAS, in row blocks that each thread takes from a shared queue: for a tall N x D matrix
times a few hundred centres that beat OpenBLAS's own two threads here (it keeps each
block in cache while the two cores share the work without OpenBLAS's hand-offs; a core
slowed by other load no longer leaves the other idle at the end)."""
SPLIT_BLOCK = 512
"""Default rows per block handed to a thread by :func:`split_rows`."""


_thread_state = threading.local()


@contextlib.contextmanager
def rows_in_this_thread() -> Iterator[None]:
    """Within this block, :func:`split_rows` runs every block in the calling thread: for
    callers that already keep every core busy with their own threads (K-Means runs its
    iterations two at a time), where splitting again would only add hand-offs."""
    before = getattr(_thread_state, "inline", False)
    _thread_state.inline = True
    try:
        yield
    finally:
        _thread_state.inline = before


def split_rows(n: int, part: Callable[[int, int], None], block: int | None = None) -> None:
    """Run ``part(lo, hi)`` over row blocks of ``range(n)``: two Python threads with
    single-threaded BLAS, each taking the next block until none is left, when
    ``n >= SPLIT_ROWS``, else one call in this thread. Inside
    :func:`rows_in_this_thread` the same blocks run one after another in this thread
    (the same blocks, so every row's result is the same bits either way).

    ``part`` must only write its own rows (numpy and BLAS release the GIL).
    """
    if n < SPLIT_ROWS:
        part(0, n)
        return
    block = block or SPLIT_BLOCK
    if getattr(_thread_state, "inline", False):
        for lo in range(0, n, block):
            part(lo, min(n, lo + block))
        return
    queue = iter(range(0, n, block))
    lock = threading.Lock()

    def run() -> None:
        while True:
            with lock:
                lo = next(queue, None)
            if lo is None:
                return
            part(lo, min(n, lo + block))

    failure: list[BaseException] = []

    def guarded() -> None:
        try:
            run()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the calling thread
            failure.append(exc)

    with _controller().limit(limits=1, user_api="blas"):
        worker = threading.Thread(target=guarded, daemon=True)
        worker.start()
        run()
        worker.join()
    if failure:
        raise failure[0]


CANDIDATES = 256
"""Most rows per run whose distances :func:`fps_batched` keeps current at every step.

Measured on the FPS benchmark (N=100k, D=768, 20 runs of 200): 256 rows gave 16 passes
over the matrix in 180 steps and 4.8 s; 1,024 rows only 11 passes but 5.7 s, because
each step then reads 20 x 3 MB of candidate vectors that no longer stay in cache. On
unclustered random unit vectors 256 rows gave 12 passes."""

REFRESH_BLOCK = 1024
"""Matrix rows per block of a refresh pass (1024 measured ~20% faster than 512 with a
few hundred centres per pass); fewer when there are many centres, so one block's
similarities stay under ``_REFRESH_BYTES``."""
_REFRESH_BYTES = 8 << 20


MIN_CANDIDATES = 32
"""Fewer candidates per run than this would mean a pass nearly every step: the runs are
then plain batched steps (see :func:`_dense_from_start`)."""


def _candidate_count(n: int, k: int) -> int:
    """Candidates per run: ``CANDIDATES``, but their copied vectors (K x T x D) stay
    within a quarter of the matrix, at least ``MIN_CANDIDATES`` (below that the runs
    go plain batched, unless the lazy path is forced)."""
    return max(1, min(n, CANDIDATES, max(MIN_CANDIDATES, n // (4 * max(1, k)))))


def _absorb(emb: np.ndarray, mins: np.ndarray, centres: np.ndarray) -> None:
    """Fold the distance columns of ``centres`` (K, L) into the running minima (K, N).

    One pass over the matrix for all runs: each distinct centre enters the product
    once, however many runs picked it, and each run then takes the max similarity over
    its own L centres.
    """
    k, n = mins.shape
    uniq, inverse = np.unique(centres, return_inverse=True)
    inverse = inverse.reshape(centres.shape)
    vecs = emb[uniq]
    per_row = max(uniq.size, inverse.size)  # float32s per matrix row: product, then gather
    budget = min(_REFRESH_BYTES, max(1 << 16, emb.nbytes // 8))  # small matrices, small buffers
    block = int(max(64, min(REFRESH_BLOCK, budget // (4 * per_row))))

    def part(lo: int, hi: int) -> None:
        for a in range(lo, hi, block):
            b = min(hi, a + block)
            sims = vecs @ emb[a:b].T
            top = sims[inverse].max(axis=1)  # (K, rows): each run's nearest new centre
            np.subtract(1.0, top, out=top)
            np.minimum(mins[:, a:b], top, out=mins[:, a:b])

    split_rows(n, part, block=block)


def _fps_batched(
    emb: np.ndarray,
    count: int,
    starts: np.ndarray,
    excluded: np.ndarray | None,
    cancel: Callable[[], bool] | None,
    on_step: Callable[[int], None] | None,
    group: np.ndarray | None = None,
) -> np.ndarray:
    """Lazy batched FPS: the full (K, N) minima are brought up to date only now and then.

    A run's next pick is the row farthest from its picks, but only rows near the top of
    its running minima can be that row. So each run keeps ``t`` candidates (the top of
    its minima at the last pass over the matrix, with their vectors copied) and an upper
    bound on every other row's minimum (the largest of them at that pass; minima only
    shrink). Each step updates just the candidates (a t x D product per run). While the
    best candidate beats the bound by ``TIE_TOL`` the pick is certain to be the plain
    loop's pick (the float32 error is far below TIE_TOL; near-ties are decided exactly
    as in :func:`choose_next`). When any run loses that certainty, one pass over the
    matrix absorbs every run's picks since the last pass - a few hundred centres in one
    compute-bound product instead of one memory-bound pass per centre - and the
    candidates are chosen again.
    """
    n, d = emb.shape
    k, s = starts.shape
    m = _run_length(n, s, count, excluded)
    picks = np.empty((k, m), dtype=np.int64)
    picks[:, :s] = starts
    rows_k = np.arange(k)
    mins = np.full((k, n), np.inf, dtype=np.float32)
    if excluded is not None:
        mins[:, excluded] = -np.inf
    for j in range(s):
        mins[rows_k, starts[:, j]] = -np.inf

    available = n - (int(np.count_nonzero(excluded)) if excluded is not None else 0)
    if _dense_from_start(n, available, _candidate_count(n, k), m - s, k):
        _dense_steps(emb, picks, mins, s, cancel, on_step, group, excluded)
        return picks

    t = _candidate_count(n, k)
    cand = np.zeros((k, t), dtype=np.int64)
    cand_dist = np.full((k, t), -np.inf, dtype=np.float32)
    cand_vecs = np.zeros((k, t, d), dtype=np.float32)
    bound = np.full(k, np.inf)  # forces a pass before the first greedy step
    absorbed = 0  # picks[:, :absorbed] are folded into mins
    short_gaps = 0  # consecutive passes that came after fewer than DENSE_GAP steps

    def refresh(upto: int) -> None:
        nonlocal absorbed
        _absorb(emb, mins, picks[:, absorbed:upto])
        absorbed = upto
        for r in range(k):
            if t < n:
                part = np.argpartition(mins[r], n - t - 1)
                cand[r] = part[n - t :]
                bound[r] = mins[r, part[n - t - 1]]
            else:
                cand[r] = np.arange(n)
                bound[r] = -np.inf
            cand_dist[r] = mins[r, cand[r]]
            np.take(emb, cand[r], axis=0, out=cand_vecs[r])

    sims = np.empty((k, t, 1), dtype=np.float32)
    for step in range(s, m):
        if cancel is not None and cancel():
            raise Cancelled()
        best = cand_dist.max(axis=1)
        sure = (best > -np.inf) & (best >= bound + TIE_TOL)
        if not sure.all():
            warm = step >= DENSE_WARMUP  # the first steps pass often in every regime
            short_gaps = short_gaps + 1 if warm and step - absorbed < DENSE_GAP else 0
            if short_gaps >= DENSE_AFTER:
                # Passes every step or two: the candidate sets no longer pay for
                # themselves (copies competing, count near the distinct images).
                # Plain batched updates from here on; same picks.
                del cand_vecs
                mins[:] = np.inf
                if excluded is not None:
                    mins[:, excluded] = -np.inf
                for j in range(step):
                    mins[rows_k, picks[:, j]] = -np.inf
                _dense_steps(emb, picks, mins, step, cancel, on_step, group, excluded)
                return picks
            refresh(step)
            best = cand_dist.max(axis=1)
            sure = (best > -np.inf) & (best >= bound + TIE_TOL)
        nxt = cand[rows_k, np.argmax(cand_dist, axis=1)]
        near = np.count_nonzero(cand_dist >= (best - TIE_TOL)[:, None], axis=1)
        for r in range(k):
            if not sure[r]:
                # Right after a pass with no certain candidate (masses of near-equal
                # rows): decide on the full, current minima like the plain loop.
                nxt[r] = choose_next(mins[r], emb, picks[r, :step])
            elif near[r] > 1:
                tied = np.sort(cand[r, cand_dist[r] >= best[r] - TIE_TOL])
                nxt[r] = tied[int(np.argmax(exact_min_distance(emb, tied, picks[r, :step])))]
        picks[:, step] = nxt
        mins[rows_k, nxt] = -np.inf
        np.matmul(cand_vecs, emb[nxt][:, :, None], out=sims)
        np.subtract(1.0, sims[:, :, 0], out=sims[:, :, 0])
        np.minimum(cand_dist, sims[:, :, 0], out=cand_dist)
        cand_dist[cand == nxt[:, None]] = -np.inf
        if on_step is not None:
            on_step(step + 1)
    return picks


DENSE_GAP = 3
"""A pass over the matrix this few steps after the previous one counts as a short gap."""
DENSE_AFTER = 3
"""After this many short gaps in a row, the lazy runs switch to plain batched updates."""
DENSE_WARMUP = 32
"""Short gaps only count from this step on: early picks move every row's distance a lot,
so the first passes come a step or two apart in every regime, and switching then (step 4
on 100,000 clustered rows) made the common case 3-5x slower than staying lazy."""
DENSE_ROWS = 4
"""Runs go plain batched from the start when the candidates or the greedy steps would
cover more than 1/DENSE_ROWS of the rows: a pass then costs about as much as a plain
step, and runs that pick a large share of the album pass nearly every step."""


def _dense_from_start(n: int, available: int, t: int, steps: int, k: int) -> bool:
    """Also when few rows are left to pick from (exact copies masked, most rows
    excluded): the plain steps then run over a copy of just those rows, where every lazy
    pass would read the whole matrix. And when ``MIN_CANDIDATES`` per run would copy
    more than a quarter of the matrix (small albums, many runs): peak memory."""
    if DENSE_ROWS <= 0:
        return False
    if n < 4 * max(1, k) * MIN_CANDIDATES:
        return True
    return max(t, steps) * DENSE_ROWS >= available or available * DENSE_ROWS <= n


def _dense_steps(
    emb: np.ndarray,
    picks: np.ndarray,
    mins: np.ndarray,
    start: int,
    cancel: Callable[[], bool] | None,
    on_step: Callable[[int], None] | None,
    group: np.ndarray | None = None,
    excluded: np.ndarray | None = None,
) -> None:
    """Plain farthest-first steps for all runs at once, from ``picks[:, :start]`` to the
    end of ``picks``: each step takes in one distance row per run. ``mins`` holds -inf
    for the rows excluded or picked so far and +inf elsewhere; the picks so far are
    taken in first, to learn each row's nearest pick (see :func:`_break_ties`).

    Why: when the lazy runs would pass over the matrix every step anyway (small albums,
    counts near the number of distinct images), this is the same work without the
    candidate bookkeeping. The distance rows come from :class:`_DistanceRows`: runs
    advanced together pick the same rows a few steps apart, so most steps need no
    product at all. Near-ties are decided exactly as in :func:`choose_next`, but from
    each row's nearest pick when it is clear of the others, so a step where a thousand
    copies tie costs a few float64 sums, not a thousand x picks. ``group`` maps each row
    to the lowest row with the same vector (exact copies share one value).
    """
    with _controller().limit(limits=1, user_api="blas"):
        _dense_loop(emb, picks, mins, start, cancel, on_step, group, excluded)


def _dense_product(emb: np.ndarray, rows: np.ndarray, centres: np.ndarray, out: np.ndarray) -> None:
    """``out = emb[centres] @ rows.T``, in two threads over row blocks when it is large
    enough to pay for them (BLAS itself is held to one thread by the caller)."""
    vecs = emb[centres]
    n, d = rows.shape
    if n * d * centres.size < SMALL_BLAS / 8 or n < 2 * SPLIT_BLOCK:
        np.matmul(vecs, rows.T, out=out)
        return
    half = (n // 2 + 63) // 64 * 64

    def part(lo: int, hi: int) -> None:
        np.matmul(vecs, rows[lo:hi].T, out=out[:, lo:hi])

    other = _helper().submit(part, half, n)
    part(0, half)
    other.result()


@functools.cache
def _helper():  # noqa: ANN202 - concurrent.futures.ThreadPoolExecutor
    """One helper thread for the plain batched steps' products, kept for the process:
    starting a thread per step cost ~1 ms on a busy machine, a quarter of a step."""
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="picksel-fps")


DISTANCE_ROWS = 0.125
"""Memory for the plain batched steps' table of distance rows, as a share of the matrix
(at least one row per run; never more rows than the album)."""
RUN_BLOCK = 16
"""Runs whose distance rows are gathered and taken in together (bounds the temporaries)."""


class _DistanceRows:
    """Distances from picks to every row (``1 - emb[pick] @ rows.T``, float32) in a table
    of ``slots`` rows, the least recently used replaced first.

    Why: runs advanced together pick the same rows, a few steps apart. On the demo
    album's shape (50 runs of 1,000 picks among 1,844 rows) a step has 23 distinct picks
    on average and three quarters of them were picked by another run within the 5 steps
    before, so most distance rows are looked up instead of computed. The float32 values
    are a screen like any other (near-ties are decided exactly), so where a row comes
    from never changes a pick.
    """

    def __init__(self, emb: np.ndarray, rows: np.ndarray, slots: int) -> None:
        self.emb, self.rows = emb, rows
        self.table = np.empty((slots, rows.shape[0]), dtype=np.float32)
        self.slot_of = np.full(emb.shape[0], -1, dtype=np.int64)
        self.row_at = np.full(slots, -1, dtype=np.int64)
        self.used = np.full(slots, -1, dtype=np.int64)
        self.clock = 0

    def slots_for(self, centres: np.ndarray) -> np.ndarray:
        """The table row holding each centre's distances (computed when missing).
        Needs ``len(unique(centres)) <= slots``."""
        self.clock += 1
        uniq = np.unique(centres)
        have = self.slot_of[uniq]
        self.used[have[have >= 0]] = self.clock
        miss = uniq[have < 0]
        if miss.size:
            # The least recently used slots; never one used this step (the hits hold
            # the largest clock and hits + misses <= slots).
            if miss.size < self.used.size:
                free = np.argpartition(self.used, miss.size - 1)[: miss.size]
            else:
                free = np.arange(self.used.size)
            old = self.row_at[free]
            self.slot_of[old[old >= 0]] = -1
            self.row_at[free] = miss
            self.slot_of[miss] = free
            self.used[free] = self.clock
            block = max(1, RUN_BLOCK)
            tmp = np.empty((min(block, miss.size), self.rows.shape[0]), dtype=np.float32)
            for lo in range(0, miss.size, block):
                part = tmp[: min(block, miss.size - lo)]
                _dense_product(self.emb, self.rows, miss[lo : lo + block], part)
                np.subtract(1.0, part, out=part)
                self.table[free[lo : lo + block]] = part
        return self.slot_of[centres]


def _table_slots(emb: np.ndarray, n: int, k: int) -> int:
    """``DISTANCE_ROWS`` of the matrix in rows of ``n`` distances, no more rows than
    the album has, but one per run at least (a step's picks, start rows included, may
    all differ)."""
    return int(max(k, min(emb.shape[0], DISTANCE_ROWS * emb.nbytes // (4 * max(1, n)))))


def _dense_loop(
    emb: np.ndarray,
    picks: np.ndarray,
    mins: np.ndarray,
    start: int,
    cancel: Callable[[], bool] | None,
    on_step: Callable[[int], None] | None,
    group: np.ndarray | None,
    excluded: np.ndarray | None,
) -> None:
    k = mins.shape[0]
    m = picks.shape[1]
    rows_k = np.arange(k)
    # Few rows left to pick from (exact copies masked, most of the album excluded): the
    # products run over a copy of just those rows (at most 1/DENSE_ROWS of the matrix).
    keep = None if excluded is None else np.flatnonzero(~excluded)
    if keep is not None and keep.size * DENSE_ROWS <= emb.shape[0]:
        sub, mins = emb[keep], mins[:, keep]
    else:
        keep, sub = None, emb
    n = sub.shape[0]
    table = _DistanceRows(emb, sub, _table_slots(emb, n, k))
    # Which pick is each row's nearest and the float32 distance to its second nearest:
    # when that is farther by more than the screen window, the exact distance is one
    # float64 dot product with the nearest.
    nearest = np.zeros((k, n), dtype=np.int16 if m <= np.iinfo(np.int16).max else np.int32)
    second = np.full((k, n), np.inf, dtype=np.float32)
    rb = max(1, min(k, RUN_BLOCK))
    blk = np.empty((rb, n), dtype=np.float32)
    flags = np.empty((rb, n), dtype=bool)
    nxt = np.zeros(k, dtype=np.int64)
    best = np.zeros(k, dtype=np.float32)
    near = np.zeros(k, dtype=np.int64)

    def take_in(col: int) -> None:
        """Fold pick ``col`` into the minima, block of runs by block, and screen each
        run's next pick while its block is in cache."""
        where = table.slots_for(picks[:, col])
        for lo in range(0, k, rb):
            hi = min(k, lo + rb)
            b, c, mn, sc = blk[: hi - lo], flags[: hi - lo], mins[lo:hi], second[lo:hi]
            np.take(table.table, where[lo:hi], axis=0, out=b)
            np.less(b, mn, out=c)
            np.putmask(nearest[lo:hi], c, col)
            # second = min(second, max(mins, new)): the old minimum where the new
            # distance is closer (second >= mins always), else min(second, new).
            np.minimum(sc, b, out=sc)
            np.copyto(sc, mn, where=c)
            np.minimum(mn, b, out=mn)
            arg = mn.argmax(axis=1)
            top = mn[np.arange(hi - lo), arg]
            nxt[lo:hi], best[lo:hi] = arg, top
            np.greater_equal(mn, (top - TIE_TOL)[:, None], out=c)
            near[lo:hi] = np.count_nonzero(c, axis=1)

    for col in range(start):
        take_in(col)
    for step in range(start, m):
        if cancel is not None and cancel():
            raise Cancelled()
        ties = np.flatnonzero((near > 1) & (near <= MAX_EXACT))
        if ties.size:
            nxt[ties] = _break_ties(emb, keep, mins, nearest, second, picks, step, ties, best, near, group)
        mins[rows_k, nxt] = -np.inf
        picks[:, step] = nxt if keep is None else keep[nxt]
        if step + 1 < m:
            take_in(step)
        if on_step is not None:
            on_step(step + 1)


def _break_ties(
    emb: np.ndarray,
    keep: np.ndarray | None,
    mins: np.ndarray,
    nearest: np.ndarray,
    second: np.ndarray,
    picks: np.ndarray,
    step: int,
    runs: np.ndarray,
    best: np.ndarray,
    near: np.ndarray,
    group: np.ndarray | None,
) -> np.ndarray:
    """For each of ``runs`` (``near`` > 1 columns of its minima within ``TIE_TOL`` of its
    ``best``), the tied column with the largest exact distance to the run's picks, the
    lowest on equal distances - as :func:`choose_next` decides, for many runs at once
    (in blocks of runs with a bounded number of tied pairs: peak memory)."""
    out = np.empty(runs.size, dtype=np.int64)
    limit = max(MAX_EXACT, emb.size // 256)
    lo = 0
    while lo < runs.size:
        hi = lo + 1 + int(np.searchsorted(np.cumsum(near[runs[lo + 1 :]]), limit - near[runs[lo]], "right"))
        out[lo:hi] = _tie_winners(emb, keep, mins, nearest, second, picks, step, runs[lo:hi], best, group)
        lo = hi
    return out


def _tie_winners(
    emb: np.ndarray,
    keep: np.ndarray | None,
    mins: np.ndarray,
    nearest: np.ndarray,
    second: np.ndarray,
    picks: np.ndarray,
    step: int,
    runs: np.ndarray,
    best: np.ndarray,
    group: np.ndarray | None,
) -> np.ndarray:
    """:func:`_break_ties` for one block of runs.

    A tied row whose nearest pick is clear of the others (float32 gap to its second
    nearest above the screen's error) is one float64 dot product with that pick; exact
    copies share one value (the first tied row of each group is computed); the rest go
    through :func:`exact_min_distance`."""
    tied = mins[runs] >= (best[runs] - TIE_TOL)[:, None]
    ri, ci = np.nonzero(tied)  # by run, then ascending column
    del tied
    rows = ci if keep is None else keep[ci]
    if group is None:
        first, back = np.arange(ci.size), np.arange(ci.size)
    else:
        key = ri.astype(np.int64) * emb.shape[0] + group[rows]
        _, first, back = np.unique(key, return_index=True, return_inverse=True)
        del key
    run, col, stand = runs[ri[first]], ci[first], rows[first]
    gap = second[run, col] - mins[run, col]
    # Clear when no other pick's float32 distance can hide an exactly nearer one: twice
    # the screen's error bound (6e-8 x D) and the rounding of ``1 - s``, with room.
    margin = min(_SCREEN_WINDOW, 3 * 6e-8 * emb.shape[1] + 1e-6)
    clear = np.flatnonzero(gap > margin)
    out = np.empty(stand.size, dtype=np.float64)
    pairs = _pair_block(emb)
    for p in range(0, clear.size, pairs):
        j = clear[p : p + pairs]
        out[j] = 1.0 - _exact_dots(emb[stand[j]], emb[picks[run[j], nearest[run[j], col[j]]]])
    unclear = np.ones(stand.size, dtype=bool)
    unclear[clear] = False
    for r in np.unique(run[unclear]):
        j = np.flatnonzero(unclear & (run == r))
        out[j] = exact_min_distance(emb, stand[j], picks[r, :step])
    value = out[back]
    # Per run: the first (lowest) column reaching the run's largest exact distance.
    head = np.flatnonzero(np.r_[True, ri[1:] != ri[:-1]])
    top = np.maximum.reduceat(value, head)
    hit = np.flatnonzero(value == np.repeat(top, np.diff(np.r_[head, value.size])))
    _, first_hit = np.unique(ri[hit], return_index=True)
    return ci[hit[first_hit]]
