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
   full one (~20 full passes per iteration on hard data). Running all iterations'
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

Exactly N images: each cluster takes its nearest member; a cluster left empty takes
the nearest image (to its centre) not already taken; pinned images first claim the
nearest free centre. Everything is seeded, so one seed gives one result.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from picksel.errors import Cancelled
from picksel.fps import SPLIT_ROWS, blas_threads_for, split_rows

PCA_DIMS = 128
PCA_SAMPLE = 20_000
INIT_SAMPLE = 5_000
LLOYD_ITER = 30
LLOYD_TOL = 1e-3
LLOYD_PER_CENTRE = 25
LLOYD_MIN_SAMPLE = 4096


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


def _sq_dist_to(red: Reduced, centre: np.ndarray) -> np.ndarray:
    """Original-space squared distance from every reduced row to ``lift(centre)``."""
    diff = red.coords - centre
    return np.einsum("ij,ij->i", diff, diff) + red.resid


def _sq_norms(x: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", x, x)


def kmeans_plus_plus(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Greedy k-means++ seeding (2 + ln k trials per centre, like scikit-learn)."""
    n = x.shape[0]
    trials = 2 + int(np.log(k))
    xx = _sq_norms(x)
    centres = np.empty((k, x.shape[1]), dtype=np.float32)
    first = int(rng.integers(n))
    centres[0] = x[first]
    closest = np.maximum(xx + xx[first] - 2.0 * (x @ x[first]), 0.0)
    for c in range(1, k):
        cum = np.cumsum(closest, dtype=np.float64)
        pot = cum[-1]
        if pot <= 0:  # fewer distinct points than centres: repeat one, fill copes
            centres[c:] = x[first]
            break
        cand = np.minimum(np.searchsorted(cum, rng.random(trials) * pot), n - 1)
        d = xx[None, :] + xx[cand][:, None] - 2.0 * (x[cand] @ x.T)
        np.maximum(d, 0.0, out=d)
        np.minimum(d, closest[None, :], out=d)
        best = int(np.argmin(d.sum(axis=1, dtype=np.float64)))
        closest = d[best]
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
    if size < m:
        with blas_threads_for(m * x.shape[1] * k / 4):
            labels, _ = assign(x, centres)
    return labels, centres


def pick_images(
    red: Reduced, labels: np.ndarray, centres: np.ndarray, pinned: np.ndarray | None = None
) -> np.ndarray:
    """One distinct image per centre, in centre order, pins first.

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
    # Nearest member of each cluster: sort by (label, distance to own centre).
    diff = red.coords - centres[labels]
    own = np.einsum("ij,ij->i", diff, diff) + red.resid
    own[used] = np.inf
    order = np.lexsort((np.arange(m), own, labels))
    lab_sorted = labels[order]
    first = np.flatnonzero(np.r_[True, lab_sorted[1:] != lab_sorted[:-1]])
    for pos in first:
        c = int(lab_sorted[pos])
        r = int(order[pos])
        if chosen[c] < 0 and not used[r]:
            chosen[c] = r
            used[r] = True
    for c in np.flatnonzero(chosen < 0):
        dist = _sq_dist_to(red, centres[c])
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
    labels, centres = cluster(red, k, seed, cancel)
    rows = pick_images(red, labels, centres, pinned)
    return KMeansPick(rows=rows, labels=labels, centres=centres)
