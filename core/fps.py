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

import numpy as np

from picksel.errors import Cancelled

TIE_TOL = 1e-4
"""Candidates within this float32 distance of the best are decided exactly."""

MAX_EXACT = 2048
"""Above this many near-tied candidates (massively duplicated images) the exact
re-check is skipped and the float32 argmax (lowest row) is used instead."""

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


def exact_min_distance(emb: np.ndarray, rows: np.ndarray, chosen: np.ndarray) -> np.ndarray:
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
    re-check, not the products, the cost of FPS there.
    """
    rows = np.asarray(rows, dtype=np.int64)
    chosen = np.asarray(chosen, dtype=np.int64)
    out = np.empty(rows.size, dtype=np.float64)
    if chosen.size == 0:
        out.fill(np.inf)
        return out
    b32 = emb[chosen]
    step = max(1, _EXACT_BLOCK // max(1, chosen.size))
    for s in range(0, rows.size, step):
        a32 = emb[rows[s : s + step]]
        screen = a32 @ b32.T
        ri, ci = np.nonzero(screen >= screen.max(axis=1, keepdims=True) - _SCREEN_WINDOW)
        sims = (a32[ri].astype(np.float64) * b32[ci].astype(np.float64)).sum(axis=-1)
        best = np.full(a32.shape[0], -np.inf)
        np.maximum.at(best, ri, sims)
        out[s : s + step] = 1.0 - best
    return out


def choose_next(mins: np.ndarray, emb: np.ndarray, chosen: np.ndarray) -> int:
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
    exact = exact_min_distance(emb, cand, chosen)
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
        nxt = choose_next(mins, emb, np.asarray(chosen))
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
    with blas_threads_for(emb.shape[0] * emb.shape[1] * starts.shape[0]):
        copies = exact_copies(emb, excluded)
        if copies is not None:
            # Exact copies of a lower row can only be picked after everything else is
            # as close as a copy is to its twin; masking them keeps the candidate sets
            # free of ties (an album of many copies otherwise needs a pass per step).
            # Checked afterwards: if a copy could have competed, run again unmasked.
            mask, self_distance = copies
            masked = mask if excluded is None else (mask | excluded)
            picks = _fps_batched(emb, count, starts, masked, cancel, on_step)
            if _copies_never_competed(emb, picks, starts.shape[1], count, excluded, self_distance):
                return picks
        return _fps_batched(emb, count, starts, excluded, cancel, on_step)


_HASH_SEED = 20261125


def exact_copies(emb: np.ndarray, excluded: np.ndarray | None = None) -> tuple[np.ndarray, float] | None:
    """Rows that are bit-for-bit copies of a lower available row, and the largest
    distance a copy has from its twin (``1 - x.x`` in float64: not quite 0 for
    float32 vectors), or None when there are none.

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
    step = max(1, (1 << 21) // max(1, d))
    for lo in range(0, cand.size, step):
        k = cand[lo : lo + step]
        same[lo : lo + step] = np.all(emb[order[k]] == emb[order[k + 1]], axis=1)
    if not same.any():
        return None
    mask = np.zeros(n, dtype=bool)
    mask[order[cand[same] + 1]] = True  # within a run of equal rows, all but the lowest
    twins = order[cand[same]]
    x = emb[twins].astype(np.float64)
    self_distance = float(np.max(1.0 - np.einsum("ij,ij->i", x, x)))
    return mask, self_distance


def _run_length(n: int, s: int, count: int, excluded: np.ndarray | None) -> int:
    """Rows in each run's result: ``count`` capped by the rows not excluded, never
    fewer than the ``s`` start rows."""
    available = n - (int(np.count_nonzero(excluded)) if excluded is not None else 0)
    return max(s, min(count, available))


def _copies_never_competed(
    emb: np.ndarray, picks: np.ndarray, s: int, count: int, excluded: np.ndarray | None, self_distance: float
) -> bool:
    """Whether runs with exact copies masked picked what unmasked runs pick.

    They do when the runs are as long as unmasked ones would be and every greedy pick
    was farther than any copy from its twin (by more than the float32 screen's
    tolerance): then a copy was never among the farthest rows. Pick distances only
    shrink along a run, so checking the last pick is enough."""
    k, m = picks.shape
    if m != _run_length(emb.shape[0], s, count, excluded):
        return False  # masking left too few rows: the unmasked run goes on with copies
    if m == s:
        return True  # no greedy step at all
    for r in range(k):
        last = exact_min_distance(emb, picks[r, -1:], picks[r, :-1])[0]
        if not last > self_distance + 2 * TIE_TOL:
            return False
    return True


SPLIT_ROWS = 16384
"""Products over at least this many rows run in two Python threads with single-threaded
BLAS, in row blocks that each thread takes from a shared queue: for a tall N x D matrix
times a few hundred centres that beat OpenBLAS's own two threads here (it keeps each
block in cache while the two cores share the work without OpenBLAS's hand-offs; a core
slowed by other load no longer leaves the other idle at the end)."""
SPLIT_BLOCK = 512
"""Default rows per block handed to a thread by :func:`split_rows`."""


def split_rows(n: int, part: Callable[[int, int], None], block: int | None = None) -> None:
    """Run ``part(lo, hi)`` over row blocks of ``range(n)``: two Python threads with
    single-threaded BLAS, each taking the next block until none is left, when
    ``n >= SPLIT_ROWS``, else one call in this thread.

    ``part`` must only write its own rows (numpy and BLAS release the GIL).
    """
    if n < SPLIT_ROWS:
        part(0, n)
        return
    block = block or SPLIT_BLOCK
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


def _candidate_count(n: int, k: int) -> int:
    """Candidates per run: ``CANDIDATES``, but their copied vectors (K x T x D) stay
    within a quarter of the matrix whenever that leaves at least 32 per run."""
    return max(1, min(n, CANDIDATES, max(32, n // (4 * max(1, k)))))


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
    block = int(max(64, min(REFRESH_BLOCK, _REFRESH_BYTES // (4 * per_row))))

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
    on_step: Callable[[int, int], None] | None,
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

    t = _candidate_count(n, k)
    cand = np.zeros((k, t), dtype=np.int64)
    cand_dist = np.full((k, t), -np.inf, dtype=np.float32)
    cand_vecs = np.zeros((k, t, d), dtype=np.float32)
    bound = np.full(k, np.inf)  # forces a pass before the first greedy step
    absorbed = 0  # picks[:, :absorbed] are folded into mins

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

    total = m - s
    sims = np.empty((k, t, 1), dtype=np.float32)
    for step in range(s, m):
        if cancel is not None and cancel():
            raise Cancelled()
        best = cand_dist.max(axis=1)
        sure = (best > -np.inf) & (best >= bound + TIE_TOL)
        if not sure.all():
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
            on_step(step - s + 1, total)
    return picks
