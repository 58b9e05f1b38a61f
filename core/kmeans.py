"""K-Means "blocks": N clusters, the image nearest each centre, exactly N distinct images.

What makes it fast (measured in bench/bench_select.py against the reference's
``MiniBatchKMeans(n_clusters=N, n_init=1)`` per iteration):

1. **One PCA per run, shared by all iterations.** The embeddings are projected once onto
   their top ``PCA_DIMS`` (128) principal axes, fitted on a seeded subsample of at most
   ``PCA_SAMPLE`` rows (covariance + ``eigh``). Every Monte Carlo iteration then
   clusters 128-d points instead of 768-d ones. (64 axes were enough for clusters on a
   low-dimensional subspace, but on clusters spread over all 768 dimensions they lost
   the structure: inertia 1.7 % above the reference's even with full-batch Lloyd.)
2. **Lloyd on a per-iteration sample, then one pass over every row** (numpy: chunked
   float32 BLAS, argmin of ``||c||^2 - 2 x.c``, sparse one-hot sums for the means).
   Each iteration draws its own ``LLOYD_PER_CENTRE`` rows per centre (at least
   ``LLOYD_MIN_SAMPLE``), seeds k-means++ on at most ``INIT_SAMPLE`` of them and runs
   Lloyd there to convergence (at most ``LLOYD_ITER`` passes); one assignment of every
   row gives the clusters. The sample plays the part of the reference's mini-batches:
   restarts stay about as independent as its ``MiniBatchKMeans`` restarts (full-batch
   Lloyd on every row picked the same images run after run: 564 images ever voted
   against the reference's 1,017 on 20 iterations), and a pass costs ``sample / M`` of a
   full one (~20 full passes per iteration on hard data). The sizes are the
   reference's where it has one (k-means++ on 3 x 1,024 rows, like ``MiniBatchKMeans``'s
   ``init_size``) and measured where it has not: 32 rows per centre kept the inertia
   below the reference's on both benchmark albums and the tier counts near its own
   (25 rows: core tier 28 % smaller on clustered data and inertia 0.15 % above on
   spread data; 40 rows: 10-16 % fewer images ever voted). Running all iterations'
   passes as one matrix product was measured and not done: with so few dimensions the
   cost is per output element (product plus argmin), the same stacked or not (100,000
   x 64 rows against 20 x 200 centres: 7.9-8.6 s stacked vs 8.5-9.4 s as 20 products,
   on the busy machine), while sampling divides it.
   (scikit-learn's OpenMP ``KMeans`` was 10-20x slower on a busy 2-core machine.)
3. **Exact original-space picks for free.** For a centre ``c`` in the PCA subspace
   (lifted back as ``mean + c @ V.T``) and an image ``x``,
   ``||x - lift(c)||^2 = ||proj(x) - c||^2 + resid(x)`` where ``resid(x)`` is the squared
   norm of the part of ``x - mean`` outside the subspace. ``resid`` is computed once, so
   "the image nearest each centre" is decided with the original 768-d distance.

4. **Two iterations at a time** (:func:`kmeans_runs`), each in its own thread with
   single-threaded BLAS: an iteration is mostly small products that leave the second
   core idle. Same picks as one at a time; 0.27 -> 0.16 s per iteration at 85,000 rows.

Exactly N images: each cluster takes its nearest member; a cluster left empty takes
the nearest image (to its centre) not already taken; pinned images first claim the
nearest free centre. Everything is seeded, so one seed gives one result.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

import numpy as np

from picksel.cpus import usable_cpus
from picksel.errors import Cancelled
from picksel.fps import SPLIT_ROWS, _controller, blas_threads_for, rows_in_this_thread, split_rows

PCA_DIMS = 128
PCA_SAMPLE = 20_000
INIT_SAMPLE = 3072  # MiniBatchKMeans seeds on 3 x its 1,024-row batch
LLOYD_ITER = 30
LLOYD_TOL = 1e-3
LLOYD_PER_CENTRE = 32
LLOYD_MIN_SAMPLE = 4096
DIST_BLOCK = 16_384


@dataclass
class Reduced:
    """Embeddings of the available rows in the shared PCA space of a run."""

    rows: np.ndarray  # int64 (M,) original row of each reduced row
    coords: np.ndarray  # float32 (M, d)
    resid: np.ndarray  # float32 (M,) squared distance from the row to the subspace
    mean: np.ndarray  # float32 (D,)
    axes: np.ndarray  # float32 (D, d) orthonormal columns; identity-like when not reduced

    def lift(self, centres: np.ndarray) -> np.ndarray:
        """Centres of the reduced space as points of the original space."""
        return self.mean + centres @ self.axes.T


@dataclass
class KMeansPick:
    rows: np.ndarray  # int64 (k,) original rows picked, one per centre (pins first)
    labels: np.ndarray  # int32 (M,) cluster of each reduced row
    centres: np.ndarray  # float32 (k, d) centres in the reduced space


def reduce(emb: np.ndarray, rows: np.ndarray, rng: np.random.Generator, dims: int = PCA_DIMS) -> Reduced:
    """Project ``emb[rows]`` onto its top principal axes (no N x D copy is made).

    Data with at most ``dims`` dimensions is kept as is (centred), so small test
    embeddings are clustered exactly.
    """
    rows = np.asarray(rows, dtype=np.int64)
    d_in = emb.shape[1]
    sample = rows if rows.size <= PCA_SAMPLE else np.sort(rng.choice(rows, PCA_SAMPLE, replace=False))
    block = 8192
    mean64 = np.zeros(d_in, dtype=np.float64)
    for s in range(0, sample.size, block):
        mean64 += emb[sample[s : s + block]].sum(axis=0, dtype=np.float64)
    mean64 /= max(1, sample.size)
    if d_in <= dims:
        axes = np.eye(d_in, dtype=np.float32)
    else:
        # Covariance of the sample, accumulated block by block (no sample-sized copy).
        cov = np.zeros((d_in, d_in), dtype=np.float64)
        mean32 = mean64.astype(np.float32)
        for s in range(0, sample.size, block):
            blk = emb[sample[s : s + block]] - mean32
            cov += blk.T @ blk
        with blas_threads_for(0):  # threaded LAPACK eigh: 4 s instead of 0.05 s when busy
            _, vecs = np.linalg.eigh(cov)
        axes = np.ascontiguousarray(vecs[:, ::-1][:, :dims], dtype=np.float32)
    mean = mean64.astype(np.float32)
    n = rows.size
    coords = np.empty((n, axes.shape[1]), dtype=np.float32)
    resid = np.empty(n, dtype=np.float32)
    offset = mean @ axes
    for s in range(0, n, block):
        x = emb[rows[s : s + block]]
        c = x @ axes
        c -= offset
        coords[s : s + block] = c
        centred_sq = np.einsum("ij,ij->i", x, x) - 2.0 * (x @ mean) + float(mean @ mean)
        resid[s : s + block] = np.maximum(centred_sq - np.einsum("ij,ij->i", c, c), 0.0)
    return Reduced(rows=rows, coords=coords, resid=resid, mean=mean, axes=axes)


def _sq_dist(red: Reduced, centres: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
    """Original-space squared distance from every reduced row to ``lift(centres)`` (one
    centre), or with ``labels`` to ``lift(centres[label])`` (each row's own centre).
    Block by block: a whole-array difference would be another copy of the reduced rows
    (512 MB at 1,000,000 images)."""
    m = red.coords.shape[0]
    out = np.empty(m, dtype=np.float32)
    for s in range(0, m, DIST_BLOCK):
        target = centres if labels is None else centres[labels[s : s + DIST_BLOCK]]
        diff = red.coords[s : s + DIST_BLOCK] - target
        out[s : s + DIST_BLOCK] = np.einsum("ij,ij->i", diff, diff)
    out += red.resid
    return out


def _sq_norms(x: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", x, x)


def kmeans_plus_plus(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Greedy k-means++ seeding (2 + ln k trials per centre, like scikit-learn).

    The k steps are small products (trials x d against d x n), so the trial distances
    go into one preallocated block against a contiguous transpose: 20 % less time than
    fresh temporaries per step."""
    n = x.shape[0]
    trials = 2 + int(np.log(k))
    xx = _sq_norms(x)
    xt = np.ascontiguousarray(x.T)
    centres = np.empty((k, x.shape[1]), dtype=np.float32)
    first = int(rng.integers(n))
    centres[0] = x[first]
    closest = np.maximum(xx + xx[first] - 2.0 * (x @ x[first]), 0.0)
    d = np.empty((trials, n), dtype=np.float32)
    for c in range(1, k):
        cum = np.cumsum(closest, dtype=np.float64)
        pot = cum[-1]
        if pot <= 0:  # fewer distinct points than centres: repeat one, fill copes
            centres[c:] = x[first]
            break
        cand = np.minimum(np.searchsorted(cum, rng.random(trials) * pot), n - 1)
        np.matmul(x[cand], xt, out=d)
        d *= -2.0
        d += xx
        d += xx[cand][:, None]
        np.maximum(d, 0.0, out=d)
        np.minimum(d, closest, out=d)
        best = int(np.argmin(d.sum(axis=1, dtype=np.float64)))
        closest = d[best].copy()
        centres[c] = x[cand[best]]
    return centres


def assign(x: np.ndarray, centres: np.ndarray, xx: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centre of each row (argmin of ||c||^2 - 2 x.c) and the squared distance."""
    n = x.shape[0]
    cc = _sq_norms(centres)
    minus_two_ct = np.ascontiguousarray(-2.0 * centres.T, dtype=np.float32)
    labels = np.empty(n, dtype=np.int32)
    dist = np.empty(n, dtype=np.float32)
    if xx is None:
        xx = _sq_norms(x)

    def part(lo: int, hi: int) -> None:
        prod = x[lo:hi] @ minus_two_ct
        prod += cc
        lab = np.argmin(prod, axis=1)
        labels[lo:hi] = lab
        best = np.take_along_axis(prod, lab[:, None], axis=1)[:, 0]
        dist[lo:hi] = np.maximum(best + xx[lo:hi], 0.0)

    if n >= SPLIT_ROWS:
        split_rows(n, part, block=4096)
    else:
        for s in range(0, n, 8192):
            part(s, min(n, s + 8192))
    return labels, dist


def lloyd(
    x: np.ndarray, centres: np.ndarray, max_iter: int = LLOYD_ITER, cancel: Callable[[], bool] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Full-batch Lloyd iterations with float32 BLAS; empty clusters move to the worst-fit rows.

    Stops when fewer than ``LLOYD_TOL`` of the rows change cluster.
    """
    from scipy.sparse import csr_matrix

    n, k = x.shape[0], centres.shape[0]
    xx = _sq_norms(x)
    centres = centres.copy()
    labels, dist = assign(x, centres, xx)
    ones = np.ones(n, dtype=np.float32)
    cols = np.arange(n)
    for _ in range(max_iter):
        if cancel is not None and cancel():
            raise Cancelled()
        sizes = np.bincount(labels, minlength=k)
        sums = csr_matrix((ones, (labels, cols)), shape=(k, n)) @ x
        empty = np.flatnonzero(sizes == 0)
        full = sizes > 0
        centres[full] = sums[full] / sizes[full, None]
        if empty.size:
            worst = np.argsort(-dist, kind="stable")[: empty.size]
            centres[empty] = x[worst]
        new_labels, dist = assign(x, centres, xx)
        changed = int(np.count_nonzero(new_labels != labels))
        labels = new_labels
        if changed <= LLOYD_TOL * n and not empty.size:
            break
    return labels, centres


def lloyd_sample_size(m: int, k: int) -> int:
    """Rows one iteration's Lloyd runs on: ``LLOYD_PER_CENTRE`` per centre, at least
    ``LLOYD_MIN_SAMPLE``, at most all ``m``."""
    return min(m, max(LLOYD_MIN_SAMPLE, LLOYD_PER_CENTRE * k))


def cluster(
    red: Reduced, k: int, seed: int, cancel: Callable[[], bool] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd k-means on the reduced rows: (labels int32 (M,), centres float32 (k, d)).
    See :func:`_cluster`."""
    labels, centres, _ = _cluster(red, k, seed, cancel)
    return labels, centres


def _cluster(
    red: Reduced, k: int, seed: int, cancel: Callable[[], bool] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Labels, centres, and when the last pass assigned every row, each row's
    original-space squared distance to its centre (``pick_images`` needs it; taking it
    from that pass saves a pass over the reduced rows).

    Each iteration draws its own random sample of rows (:func:`lloyd_sample_size`):
    k-means++ seeds on its first ``INIT_SAMPLE`` rows (seeding cost grows with k x rows),
    Lloyd refines on all of it, and one last pass assigns every row to the centres.
    The sample is what keeps restarts independent, like the reference's mini-batches:
    full-batch Lloyd on every row from any seeding lands on nearly the same centres, so
    the same images were picked run after run and the tiers no longer measured
    stability under restarts. It also makes a pass cost ``sample / M`` of a full one.
    """
    x = red.coords
    m = x.shape[0]
    rng = np.random.default_rng(seed)
    size = lloyd_sample_size(m, k)
    sample = np.sort(rng.choice(m, size, replace=False)) if size < m else np.arange(m)
    init_rows = sample if size <= INIT_SAMPLE else np.sort(rng.choice(sample, INIT_SAMPLE, replace=False))
    with blas_threads_for(0):  # many small products
        init = kmeans_plus_plus(x[init_rows], k, rng)
    xs = x[sample] if size < m else x
    with blas_threads_for(xs.shape[0] * x.shape[1] * k / 4):  # per assign block
        labels, centres = lloyd(xs, init, cancel=cancel)
    if size == m:
        return labels, centres, None
    with blas_threads_for(m * x.shape[1] * k / 4):
        labels, own = assign(x, centres)
    own += red.resid
    return labels, centres, own


def pick_images(
    red: Reduced,
    labels: np.ndarray,
    centres: np.ndarray,
    pinned: np.ndarray | None = None,
    own: np.ndarray | None = None,
) -> np.ndarray:
    """One distinct image per centre, in centre order, pins first.

    ``own`` is each row's squared distance to its centre when the caller has it (it is
    overwritten); otherwise it is computed here.

    ``pinned`` holds positions into ``red.rows``. Each pin claims the free centre nearest
    to it; every other centre takes its nearest member (original-space distance), and
    a centre with no usable member takes the nearest image not taken yet.
    """
    k = centres.shape[0]
    m = red.coords.shape[0]
    used = np.zeros(m, dtype=bool)
    chosen = np.full(k, -1, dtype=np.int64)
    pins = np.asarray(pinned if pinned is not None else [], dtype=np.int64)
    pin_centre: list[int] = []
    if pins.size:
        free = np.ones(k, dtype=bool)
        for p in pins:
            diff = centres - red.coords[p]
            dist = np.einsum("ij,ij->i", diff, diff)
            dist[~free] = np.inf
            c = int(np.argmin(dist))
            free[c] = False
            chosen[c] = p
            used[p] = True
            pin_centre.append(c)
    # Nearest member of each cluster: rows by distance to their own centre (a stable
    # sort, so ties go to the lower row), then each label's first row in that order.
    if own is None:
        own = _sq_dist(red, centres, labels)
    own[used] = np.inf
    order = np.argsort(own, kind="stable")
    present, first = np.unique(labels[order], return_index=True)
    for c, pos in zip(present.tolist(), first.tolist(), strict=True):
        r = int(order[pos])
        if chosen[c] < 0 and not used[r]:
            chosen[c] = r
            used[r] = True
    for c in np.flatnonzero(chosen < 0):
        dist = _sq_dist(red, centres[c])
        dist[used] = np.inf
        r = int(np.argmin(dist))
        chosen[c] = r
        used[r] = True
    claimed = set(pin_centre)
    rest = [c for c in range(k) if c not in claimed]
    ordered = np.concatenate([chosen[pin_centre], chosen[rest]]).astype(np.int64)
    return red.rows[ordered]


def kmeans_once(
    red: Reduced,
    k: int,
    seed: int,
    pinned: np.ndarray | None = None,
    cancel: Callable[[], bool] | None = None,
) -> KMeansPick:
    """One Monte Carlo iteration: cluster with ``seed`` and pick ``k`` distinct images.
    ``cancel`` is checked between Lloyd passes (raises ``Cancelled``)."""
    labels, centres, own = _cluster(red, k, seed, cancel)
    rows = pick_images(red, labels, centres, pinned, own)
    return KMeansPick(rows=rows, labels=labels, centres=centres)


PARALLEL_RUNS = 2
"""Iterations clustered at once, each in its own thread with single-threaded BLAS.

An iteration is mostly small products (k-means++ steps of 7 x 128 against 3,072 rows,
Lloyd on a few thousand rows) that one BLAS thread runs no faster than two, and numpy
releases the GIL in them: two iterations side by side kept both cores busy where one
iteration at a time left one idle for most of it."""


def kmeans_runs(
    red: Reduced,
    k: int,
    seeds: Sequence[int],
    pinned: np.ndarray | None = None,
    cancel: Callable[[], bool] | None = None,
    done: Callable[[int], None] | None = None,
) -> list[np.ndarray]:
    """The picked rows of one :func:`kmeans_once` per seed, in seed order: the same rows
    as running them one by one (every iteration has its own seed and the row blocks of
    the products do not change), up to :data:`PARALLEL_RUNS` at a time.

    ``done(n)`` is called in the calling thread after each iteration finishes, with the
    number finished so far. ``cancel`` is checked between Lloyd passes in every running
    iteration; a failure in one stops the others at their next pass and is re-raised.
    """
    report = done or (lambda n: None)
    workers = min(PARALLEL_RUNS, usable_cpus(), len(seeds))
    if workers <= 1:
        out = []
        for i, seed in enumerate(seeds, start=1):
            if cancel is not None and cancel():
                raise Cancelled()
            out.append(kmeans_once(red, k, seed, pinned, cancel=cancel).rows)
            report(i)
        return out

    halt = threading.Event()

    def stop() -> bool:
        return halt.is_set() or (cancel is not None and cancel())

    def one(seed: int) -> np.ndarray:
        with rows_in_this_thread():
            return kmeans_once(red, k, seed, pinned, cancel=stop).rows

    rows: list[np.ndarray | None] = [None] * len(seeds)
    running: dict[Future, int] = {}
    next_i, finished = 0, 0
    with _controller().limit(limits=1, user_api="blas"), ThreadPoolExecutor(
        workers, thread_name_prefix="picksel-kmeans"
    ) as pool:
        try:
            while finished < len(seeds):
                while next_i < len(seeds) and len(running) < workers:
                    if stop():
                        raise Cancelled()
                    running[pool.submit(one, seeds[next_i])] = next_i
                    next_i += 1
                ready, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in ready:
                    rows[running.pop(future)] = future.result()
                    if stop():  # no progress is reported past a cancel
                        raise Cancelled()
                    finished += 1
                    report(finished)
        except BaseException:
            halt.set()  # the pool's exit waits for the running ones: make it short
            raise
    return [r for r in rows if r is not None]
