"""Farthest-point sampling (FPS) over cosine distance, one run or many at once.

Distance is ``1 - dot`` over L2-normalised rows. Each FPS run starts from a start set
(one random image, or the pinned images) and then greedily adds the image whose
distance to its nearest already-selected image is largest.

Two implementations share one decision rule:

* :func:`fps_reference` - the plain loop, one run at a time, one ``emb @ emb[last]``
  vector product per step. It is the benchmark baseline and the correctness oracle.
* :func:`fps_batched` - K runs advanced together. Each step computes the new centres'
  similarities for all K runs with ONE matrix product (``emb @ centres.T``, N x K,
  float32; centres whose distance column is still cached from another run are left
  out) and updates a (K, N) matrix of running minimum distances. Memory beyond the
  embedding matrix (work arrays + cache) stays under 0.4 x the matrix; excluded rows
  are masked, never copied.

  Speed, measured: on this 2-core box one N x 20 float32 product through OpenBLAS's
  own threads costs about 4.5 matrix-vector products (the vector product is
  memory-bound), so batching alone gave only ~4x over the plain loop. Two things
  lift it: the column cache (~20%) and running the product in two Python threads with
  single-threaded BLAS over cache-sized row blocks (~35-45%, plus ~10% from smaller
  blocks shared through a queue, see ``SPLIT_BLOCK``).

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

_EXACT_BLOCK = 1 << 19  # float64 elements per block of the exact re-check (4 MB)


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
    """
    rows = np.asarray(rows, dtype=np.int64)
    chosen = np.asarray(chosen, dtype=np.int64)
    out = np.empty(rows.size, dtype=np.float64)
    if chosen.size == 0:
        out.fill(np.inf)
        return out
    b = emb[chosen].astype(np.float64)
    d = emb.shape[1]
    step = max(1, _EXACT_BLOCK // max(1, chosen.size * d))
    for s in range(0, rows.size, step):
        a = emb[rows[s : s + step]].astype(np.float64)
        sims = (a[:, None, :] * b[None, :, :]).sum(axis=-1)
        out[s : s + step] = 1.0 - sims.max(axis=1)
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


def _fps_reference(emb, count, start, excluded) -> np.ndarray:
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
        return _fps_batched(emb, count, starts, excluded, cancel, on_step)


SPLIT_ROWS = 16384
"""Products over at least this many rows run in two Python threads with single-threaded
BLAS, in row blocks of ``SPLIT_BLOCK`` that each thread takes from a shared queue: for a
tall N x D matrix times a few centres that beat OpenBLAS's own two threads here (~20%, it
keeps each block in cache while the two cores share the work without OpenBLAS's
hand-offs)."""
SPLIT_BLOCK = 512
"""Measured on the FPS benchmark (N=100k, D=768, ~14 uncached centres per step, 3
interleaved A/B rounds of 100 steps): 512-row blocks (1.5 MB of the matrix) instead of
1024, and blocks handed out from a shared queue instead of a fixed half per thread (a
core slowed by other load no longer leaves the other idle at the end), took a step from
51.4-55.7 ms to 45.5-48.6 ms; each change alone gave about half of that. Fusing the min
update and a per-block argmax into the block loop measured no gain: the product is ~90%
of a step and compute-bound (~60 GFLOPS on the two cores for so few columns)."""


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


def distance_rows(emb: np.ndarray, centres: np.ndarray, out: np.ndarray) -> None:
    """``out[j] = 1 - emb @ centres[j]`` for every centre (out is (M, N) float32)."""

    def part(lo: int, hi: int) -> None:
        blk = out[:, lo:hi]
        np.matmul(centres, emb[lo:hi].T, out=blk)
        np.subtract(1.0, blk, out=blk)

    split_rows(emb.shape[0], part)


class _ColumnCache:
    """Distance columns (1 - emb @ emb[row]) of recently used centres, least recently
    used evicted first.

    Why: Monte Carlo FPS runs from different starts keep reaching the same far-out
    images (that is what makes them "core"), usually within a few dozen steps of each
    other. A centre already computed for one run is reused by the others instead of
    entering the step's matrix product again; with 256 slots this removes 40-50% of
    the columns on the benchmark data (about 20% of the time: the product still reads
    the whole matrix once per step).
    """

    def __init__(self, n: int, slots: int) -> None:
        self.dist = np.empty((slots, n), dtype=np.float32)
        self.slot_of: dict[int, int] = {}
        self.row_in = np.full(slots, -1, dtype=np.int64)
        self.last_used = np.full(slots, -1, dtype=np.int64)

    def lookup(self, rows: np.ndarray, step: int, emb: np.ndarray, buf: np.ndarray) -> np.ndarray:
        """Slot of each row's distance column, computing the missing ones with one product."""
        slots = np.array([self.slot_of.get(int(r), -1) for r in rows], dtype=np.int64)
        self.last_used[slots[slots >= 0]] = step
        missing = rows[slots < 0]
        if missing.size:
            out = buf[: missing.size]
            distance_rows(emb, emb[missing], out)
            # Evict the least recently used slots not needed by this step.
            free = np.argsort(self.last_used, kind="stable")[: missing.size]
            for j, (slot, row) in enumerate(zip(free, missing, strict=True)):
                old = int(self.row_in[slot])
                if old >= 0:
                    del self.slot_of[old]
                self.slot_of[int(row)] = int(slot)
                self.row_in[slot] = row
                self.last_used[slot] = step
                self.dist[slot] = out[j]
            slots[slots < 0] = free
        return slots


CACHE_SHARE = 0.4
"""Largest size of batched FPS's work arrays plus column cache, relative to the
embedding matrix (the FPS memory budget is 1.5 x the matrix)."""


def _fps_batched(emb, count, starts, excluded, cancel, on_step) -> np.ndarray:
    n, d = emb.shape
    k, s = starts.shape
    available = n - (int(np.count_nonzero(excluded)) if excluded is not None else 0)
    m = max(s, min(count, available))
    picks = np.empty((k, m), dtype=np.int64)
    mins = np.full((k, n), np.inf, dtype=np.float32)
    if excluded is not None:
        mins[:, excluded] = -np.inf
    buf = np.empty((k, n), dtype=np.float32)
    # Work arrays (mins, buf: 2K columns) plus cache slots stay within CACHE_SHARE of
    # the matrix whenever that leaves room for one step's K columns.
    cache = _ColumnCache(n, max(k, min(256, int(CACHE_SHARE * d) - 2 * k)))
    rows_k = np.arange(k)

    def absorb(centres: np.ndarray, step: int) -> None:
        # The step's one matrix product (only for centres not in the cache), then each
        # run folds its new centre's distance column into its running minima.
        uniq, inverse = np.unique(centres, return_inverse=True)
        slots = cache.lookup(uniq, step, emb, buf)[inverse]
        for r in range(k):
            np.minimum(mins[r], cache.dist[slots[r]], out=mins[r])
        mins[rows_k, centres] = -np.inf

    total = m - s
    for j in range(s):
        if cancel is not None and cancel():
            raise Cancelled()
        absorb(starts[:, j], j)
        picks[:, j] = starts[:, j]
    for step in range(s, m):
        if cancel is not None and cancel():
            raise Cancelled()
        nxt = np.argmax(mins, axis=1)
        best = mins[rows_k, nxt]
        near = np.count_nonzero(mins >= (best - TIE_TOL)[:, None], axis=1)
        for r in np.flatnonzero(near > 1):
            nxt[r] = choose_next(mins[r], emb, picks[r, :step])
        absorb(nxt, step)
        picks[:, step] = nxt
        if on_step is not None:
            on_step(step - s + 1, total)
    return picks
