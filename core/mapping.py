"""The 2-D map of an album: UMAP (cached in ``map.npz``) with a PCA map available at once.

UMAP is the layout people expect from PhotoMapAI, but it is slow to get going: importing
umap-learn takes seconds and numba compiles its kernels on first use. So the map is cached
next to the index with the fingerprint of the index it was computed from, recomputed only
when that fingerprint changes, and :func:`pca_map` gives an instant (if cruder) picture
while UMAP runs in a worker thread.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from picksel.errors import CancelFn, Cancelled, ProgressFn, never_cancel, no_progress
from picksel.fsutil import atomic_write

MAP_FILENAME = "map.npz"
MAP_VERSION = 1
KINDS = ("umap", "pca", "photomap-umap")

N_NEIGHBORS = 15
MIN_DIST = 0.05
MIN_UMAP_POINTS = 5
"""Below this many distinct embeddings UMAP's spectral layout breaks down; use PCA."""

EXACT_KNN_MAX = 30_000
"""Up to this many points the neighbour graph is computed exactly with blocked numpy
matrix products (cancellable, with progress, no pynndescent JIT); above it UMAP's own
approximate NN-descent is used."""

_KNN_BLOCK = 1024
_PCA_BLOCK = 16_384
_PCA_FIT_ROWS = 20_000


@dataclass
class MapData:
    """2-D coordinates, one row per index row, and where they came from."""

    coords: np.ndarray  # float32 (N, 2)
    kind: str  # "umap" | "pca" | "photomap-umap"
    fingerprint: str  # AlbumIndex.fingerprint() of the index the map was computed from


class _IndexLike(Protocol):
    embeddings: np.ndarray

    def fingerprint(self) -> str: ...


# --------------------------------------------------------------------------- helpers


def _as_matrix(emb: np.ndarray) -> np.ndarray:
    """float32 (N, D) with non-finite values zeroed: the maps must never see NaN.

    float32 on purpose: an album of 150k x 1024 embeddings is 600 MB as float32 and
    would be twice that (plus a centred copy) in float64.
    """
    x = np.asarray(emb, dtype=np.float32)
    if x.ndim == 1:
        x = x.reshape(-1, 1)
    if x.ndim != 2:
        raise ValueError(f"embeddings must be 2-D, got shape {x.shape}")
    finite = np.isfinite(x)
    return x if finite.all() else np.where(finite, x, np.float32(0.0))


def _tiny_layout(n: int) -> np.ndarray | None:
    """Fixed layouts where any projection is meaningless: nothing, a dot, a pair."""
    if n == 0:
        return np.zeros((0, 2), dtype=np.float32)
    if n == 1:
        return np.zeros((1, 2), dtype=np.float32)
    return None


# --------------------------------------------------------------------------- PCA


def pca_map(emb: np.ndarray) -> np.ndarray:
    """First two principal components of the centred embeddings, float32 (N, 2).

    Deterministic: each axis is flipped so that its largest-magnitude loading is positive,
    which SVD/eigh alone does not guarantee (the sign of a singular vector is arbitrary
    and may differ between LAPACK builds). Missing components (D < 2, duplicate rows,
    N = 2) are zero, so the result always has two columns. Large albums go through the
    D x D covariance in row blocks (of a deterministic row sample above 20k rows), never
    a centred N x D copy.
    """
    x = _as_matrix(emb)
    n, d = x.shape
    tiny = _tiny_layout(n)
    if tiny is not None:
        return tiny
    if d == 0:
        return np.zeros((n, 2), dtype=np.float32)
    mean = x.mean(axis=0, dtype=np.float64)
    if n <= d:
        centred = x.astype(np.float64) - mean
        _, s, vt = np.linalg.svd(centred, full_matrices=False)
        variances, axes = s**2, vt
    else:
        # The axes are estimated from at most _PCA_FIT_ROWS evenly spaced rows (no RNG,
        # so still deterministic): for a display map that is indistinguishable from the
        # full covariance and keeps a 150k-image album well under a second.
        fit = x if n <= _PCA_FIT_ROWS else x[np.linspace(0, n - 1, _PCA_FIT_ROWS).round().astype(np.int64)]
        cov = np.zeros((d, d), dtype=np.float64)
        mean32 = mean.astype(np.float32)
        for start in range(0, fit.shape[0], _PCA_BLOCK):
            c = fit[start : start + _PCA_BLOCK] - mean32
            cov += (c.T @ c).astype(np.float64)
        w, v = np.linalg.eigh(cov)
        variances, axes = w[::-1], v[:, ::-1].T
    top = float(variances[0]) if variances.size else 0.0
    basis = np.zeros((d, 2), dtype=np.float64)
    for k in range(min(2, axes.shape[0])):
        if top <= 0 or variances[k] <= 1e-12 * top:
            continue  # no variance along this axis: leave it at 0
        vk = axes[k]
        if vk[np.argmax(np.abs(vk))] < 0:
            vk = -vk
        basis[:, k] = vk
    # (x - mean) @ basis without a centred copy; float32 is plenty for a display map
    out = x @ basis.astype(np.float32) - (mean @ basis).astype(np.float32)
    return np.ascontiguousarray(out, dtype=np.float32)


# --------------------------------------------------------------------------- UMAP


def _numba_cache_dir() -> Path:
    """Where numba keeps compiled UMAP kernels between runs (saves ~40 s on every start)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "picksel" / "numba"


def _prepare_numba_cache() -> None:
    """Point numba at a writable user cache unless the user chose one already."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    path = _numba_cache_dir()
    with contextlib.suppress(OSError):
        path.mkdir(parents=True, exist_ok=True)
        os.environ["NUMBA_CACHE_DIR"] = str(path)


def _cache_dir_writable() -> bool:
    path = os.environ.get("NUMBA_CACHE_DIR")
    return bool(path) and os.path.isdir(path) and os.access(path, os.W_OK | os.X_OK)


@contextlib.contextmanager
def _numba_cache_by_default() -> Iterator[None]:
    """Make ``numba.njit``/``numba.jit`` default to ``cache=True`` while umap is imported.

    umap-learn compiles almost all of its kernels with caching off, so every new process
    paid ~30 s of JIT for the neighbour graph and layout even with a warm numba cache.
    Defaulting to ``cache=True`` for the decorators applied at import time makes a second
    start take seconds (measured: warm N=1797 map 43 s -> 11 s on a loaded 2-core box).
    Explicit ``cache=`` arguments are respected; the originals are restored afterwards.
    """
    import numba

    orig_njit, orig_jit = numba.njit, numba.jit

    def njit(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("cache", True)
        return orig_njit(*args, **kwargs)

    def jit(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("cache", True)
        return orig_jit(*args, **kwargs)

    numba.njit, numba.jit = njit, jit
    try:
        yield
    finally:
        numba.njit, numba.jit = orig_njit, orig_jit


def _import_umap() -> Any:
    """Import umap-learn (deliberately lazy: ~15 s plus JIT on a cold machine)."""
    if "umap" in sys.modules:
        return sys.modules["umap"]
    _prepare_numba_cache()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if _cache_dir_writable():
            try:
                with _numba_cache_by_default():
                    import umap
                return umap
            except RuntimeError:
                # numba refused to cache something: drop the half-import, go uncached
                for name in [m for m in sys.modules if m.split(".")[0] in ("umap", "pynndescent")]:
                    del sys.modules[name]
        import umap
    return umap


def _exact_cosine_knn(
    x: np.ndarray, k: int, progress: ProgressFn, cancel: CancelFn, stage: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """k nearest neighbours by cosine distance, exactly, in row blocks.

    Each point's own row comes first with distance 0, as UMAP expects of a kNN graph.
    Rows are unit-normalised here so the distance is ``1 - dot``.
    """
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    xn = (x / np.where(norms > 0, norms, 1.0)).astype(np.float32)
    n = xn.shape[0]
    idx = np.empty((n, k), dtype=np.int32)
    dist = np.empty((n, k), dtype=np.float32)
    done_stage, total_stage = stage
    for start in range(0, n, _KNN_BLOCK):
        if cancel():
            raise Cancelled()
        stop = min(n, start + _KNN_BLOCK)
        d = 1.0 - xn[start:stop] @ xn.T
        rows = np.arange(stop - start)
        d[rows, rows + start] = -np.inf  # force self first
        part = np.argpartition(d, k - 1, axis=1)[:, :k]
        pd = np.take_along_axis(d, part, axis=1)
        order = np.argsort(pd, axis=1, kind="stable")
        idx[start:stop] = np.take_along_axis(part, order, axis=1)
        sd = np.take_along_axis(pd, order, axis=1)
        sd[:, 0] = 0.0
        dist[start:stop] = np.maximum(sd, 0.0)
        progress(done_stage, total_stage, f"nearest neighbours {stop}/{n}")
    return idx, dist


class _EpochReporter:
    """A file-like sink for umap's tqdm bar: turns "n/total" lines into progress calls
    and raises :class:`Cancelled` between epochs (umap has no callback of its own)."""

    _pattern = re.compile(r"(\d+)/(\d+)")

    def __init__(self, progress: ProgressFn, cancel: CancelFn, stage: tuple[int, int]) -> None:
        self.progress = progress
        self.cancel = cancel
        self.stage = stage
        self.last = -1

    def write(self, text: str) -> int:
        if self.cancel():
            raise Cancelled()
        for m in self._pattern.finditer(text):
            n, total = int(m.group(1)), int(m.group(2))
            step = n * 100 // max(total, 1)  # at most ~100 calls, not one per epoch
            if step != self.last:
                self.last = step
                self.progress(self.stage[0], self.stage[1], f"optimising layout {n}/{total}")
        return len(text)

    def flush(self) -> None:
        pass


def _distinct_rows(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row index of the first copy of each distinct row, inverse) for a float32 matrix.

    UMAP misbehaves on exact duplicates (zero distances, too few neighbours), so they are
    laid out once. A random projection proves most albums duplicate-free in one matrix
    product; only when projections collide are the rows compared byte for byte.
    """
    n = x.shape[0]
    every = np.arange(n)
    if n < 2:
        return every, every
    r = np.random.default_rng(0).standard_normal(x.shape[1]).astype(np.float32)
    if np.unique(x @ r).size == n:
        return every, every
    rows = np.ascontiguousarray(x).view(np.dtype((np.void, x.shape[1] * x.itemsize))).ravel()
    _, first, inverse = np.unique(rows, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")  # keep album order among distinct rows
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return first[order], rank[np.asarray(inverse).reshape(-1)]


def umap_possible(emb: np.ndarray) -> bool:
    """True when UMAP can lay these embeddings out (enough distinct rows, D >= 2)."""
    x = _as_matrix(emb)
    if x.shape[0] < MIN_UMAP_POINTS or x.shape[1] < 2:
        return False
    return _distinct_rows(x)[0].size >= MIN_UMAP_POINTS


def umap_map(
    emb: np.ndarray,
    *,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
    random_state: int = 42,
) -> np.ndarray:
    """UMAP layout (cosine, n_neighbors=min(15, N-1), min_dist=0.05), float32 (N, 2).

    Meant to run off the UI thread. Progress stages: importing umap, nearest neighbours,
    optimising layout (per epoch). ``cancel`` is checked between stages and epochs.
    Identical rows are laid out once and share a point; when too few distinct rows
    remain (or D < 2) the PCA map is returned instead — see :func:`umap_possible`.
    """
    progress = progress or no_progress
    cancel = cancel or never_cancel
    total = 4
    x = _as_matrix(emb)
    n = x.shape[0]
    if cancel():
        raise Cancelled()
    if not umap_possible(x):
        progress(total, total, "map ready (PCA: too few distinct images for UMAP)")
        return pca_map(x)
    first, inverse = _distinct_rows(x)
    uniq = x[first]
    m = uniq.shape[0]
    k = min(N_NEIGHBORS, m - 1)

    progress(0, total, "importing umap")
    umap = _import_umap()
    if cancel():
        raise Cancelled()

    progress(1, total, "nearest neighbours")
    kwargs: dict[str, Any] = {}
    if m <= EXACT_KNN_MAX:
        knn_idx, knn_dist = _exact_cosine_knn(uniq, k, progress, cancel, (1, total))
        kwargs["precomputed_knn"] = (knn_idx, knn_dist)
    else:
        # Approximate NN-descent, as UMAP itself would run it (same seed, one thread for
        # reproducibility) but as its own stage so it is reported and cancellable after.
        progress(1, total, f"nearest neighbours (approximate, {m} images)")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            knn_idx, knn_dist, search_index = umap.umap_.nearest_neighbors(
                uniq,
                k,
                "cosine",
                {},
                True,
                np.random.RandomState(random_state),
                low_memory=True,
                use_pynndescent=True,
                n_jobs=1,
                verbose=False,
            )
        kwargs["precomputed_knn"] = (knn_idx, knn_dist, search_index)
    if cancel():
        raise Cancelled()

    progress(2, total, "optimising layout")
    reporter = _EpochReporter(progress, cancel, (2, total))
    reducer = umap.UMAP(
        n_neighbors=k,
        min_dist=MIN_DIST,
        metric="cosine",
        n_components=2,
        random_state=random_state,
        init="spectral" if m > k + 1 else "random",
        tqdm_kwds={
            "disable": False,
            "file": reporter,
            "bar_format": "{n}/{total}\n",
            "mininterval": 0,
            "miniters": 1,
            "ascii": True,
        },
        verbose=False,
        **kwargs,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        layout = reducer.fit_transform(uniq)
    if cancel():
        raise Cancelled()
    coords = np.asarray(layout, dtype=np.float32)[inverse]
    coords = np.where(np.isfinite(coords), coords, 0.0).astype(np.float32)
    progress(total, total, f"map ready (UMAP, {n} images)")
    return coords


# --------------------------------------------------------------------------- cache


def _map_path(state_dir: Path) -> Path:
    return Path(state_dir) / MAP_FILENAME


def save_map(state_dir: Path, data: MapData) -> None:
    """Write ``map.npz`` atomically (no pickled objects)."""
    coords = np.asarray(data.coords, dtype=np.float32)
    if coords.ndim != 2 or coords.shape[1] != 2:
        raise ValueError(f"map coordinates must be (N, 2), got {coords.shape}")
    with atomic_write(_map_path(state_dir), "wb") as fh:
        np.savez(
            fh,
            coords=coords,
            kind=np.array(str(data.kind)),
            fingerprint=np.array(str(data.fingerprint)),
            version=np.array(MAP_VERSION, dtype=np.int64),
        )


def load_map(state_dir: Path, fingerprint: str) -> MapData | None:
    """The cached map when it was computed from the index with ``fingerprint``.

    None when the file is missing, from another index (stale), or unreadable in any
    way: a bad cache is simply recomputed, never an error for the user.
    """
    path = _map_path(state_dir)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            if int(z["version"]) != MAP_VERSION:
                return None
            fp = str(z["fingerprint"][()])
            if fp != fingerprint:
                return None
            kind = str(z["kind"][()])
            coords = np.asarray(z["coords"], dtype=np.float32)
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile):
        return None
    if kind not in KINDS or coords.ndim != 2 or coords.shape[1] != 2:
        return None
    if not np.all(np.isfinite(coords)):
        return None
    return MapData(coords=coords, kind=kind, fingerprint=fp)


def ensure_map(
    index: _IndexLike,
    state_dir: Path,
    *,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
) -> MapData:
    """The cached map for ``index`` if still valid, else compute UMAP (or PCA for tiny
    albums) and save it. Raises :class:`Cancelled` without touching the cache."""
    progress = progress or no_progress
    emb = np.asarray(index.embeddings)
    fp = index.fingerprint()
    cached = load_map(state_dir, fp)
    if cached is not None and cached.coords.shape[0] == emb.shape[0]:
        progress(1, 1, f"map loaded ({cached.kind})")
        return cached
    if umap_possible(emb):
        coords, kind = umap_map(emb, progress=progress, cancel=cancel), "umap"
    else:
        if cancel is not None and cancel():
            raise Cancelled()
        coords, kind = pca_map(emb), "pca"
        progress(1, 1, "map ready (PCA: too few distinct images for UMAP)")
    data = MapData(coords=coords, kind=kind, fingerprint=fp)
    save_map(state_dir, data)
    return data


# --------------------------------------------------------------------------- display


def normalise_coords(coords: np.ndarray, *, lo: float = 0.5, hi: float = 99.5) -> np.ndarray:
    """Coordinates scaled into [0, 1]² for drawing, float32 (N, 2).

    A few far-away outliers would squash everything else into a corner, so each axis is
    clipped to its ``lo``/``hi`` percentiles first. Both axes share one scale (the map
    keeps its aspect ratio) and the shorter axis is centred. Degenerate inputs (one
    point, all equal) land in the middle.
    """
    c = np.asarray(coords, dtype=np.float64).reshape(-1, 2)
    if c.shape[0] == 0:
        return np.zeros((0, 2), dtype=np.float32)
    c = np.where(np.isfinite(c), c, np.nan)
    out = np.full_like(c, 0.5)
    valid = ~np.isnan(c).any(axis=1)
    if not valid.any():
        return out.astype(np.float32)
    v = c[valid]
    low = np.percentile(v, lo, axis=0)
    high = np.percentile(v, hi, axis=0)
    v = np.clip(v, low, high)
    span = high - low
    scale = float(span.max())
    if scale <= 0:
        return out.astype(np.float32)
    centre_offset = (1.0 - span / scale) / 2.0
    out[valid] = (v - low) / scale + centre_offset
    return np.clip(out, 0.0, 1.0).astype(np.float32)
