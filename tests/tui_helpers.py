"""Builders of fake-but-consistent ViewModels and map coordinates for TUI tests/benches.

Shared with the tui-app tests: ``fake_view_model(n)`` for sizes where real images do
not matter, ``album_view_model(album)`` for a real album folder (thumbnails decode).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from picksel.tui.viewstate import ViewModel, row_states

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")


def make_view_model(
    root: Path,
    paths: list[str],
    *,
    votes: np.ndarray | None = None,
    iterations: int = 20,
    count: int | None = None,
    excluded: np.ndarray | None = None,
    pinned: np.ndarray | None = None,
    favorite: np.ndarray | None = None,
    state_dir: Path | None = None,
) -> ViewModel:
    """A ViewModel consistent with picksel.select's rules: excluded rows have no votes,
    consensus = the ``count`` rows with most votes (ties by row), frequency = votes/iter."""
    n = len(paths)
    excluded = np.zeros(n, bool) if excluded is None else np.asarray(excluded, bool)
    v = np.zeros(n, np.int32) if votes is None else np.asarray(votes, np.int32).copy()
    v[excluded] = 0
    voted = np.flatnonzero(v > 0)
    order = voted[np.lexsort((voted, -v[voted]))]
    consensus = order[: (count if count is not None else len(order))].astype(np.int64)
    return ViewModel(
        root=Path(root),
        paths=list(paths),
        states=row_states(n, v if votes is not None else None, iterations, excluded),
        votes=v,
        frequency=v.astype(np.float64) / max(1, iterations) * 100.0,
        excluded=excluded,
        pinned=np.zeros(n, bool) if pinned is None else np.asarray(pinned, bool),
        favorite=np.zeros(n, bool) if favorite is None else np.asarray(favorite, bool),
        consensus=consensus,
        state_dir=Path(state_dir) if state_dir is not None else Path(root) / ".picksel",
    )


def fake_view_model(
    n: int,
    *,
    root: Path = Path("/nonexistent-album"),
    selected: int = 50,
    iterations: int = 20,
    excluded_every: int = 97,
    seed: int = 0,
) -> ViewModel:
    """``n`` rows in a few sub-folders, ``selected`` of them voted, every
    ``excluded_every``-th row excluded, a few pinned and favorites."""
    rng = np.random.default_rng(seed)
    folders = ("portraits", "outdoor", "studio/raw", "")
    paths = [f"{folders[i % 4]}/{i:06d}.jpg".lstrip("/") for i in range(n)]
    votes = np.zeros(n, np.int32)
    if n and selected:
        rows = rng.choice(n, size=min(selected, n), replace=False)
        votes[rows] = rng.integers(1, iterations + 1, size=rows.size)
    excluded = np.zeros(n, bool)
    if excluded_every:
        excluded[::excluded_every] = True
    pinned = np.zeros(n, bool)
    pinned[5::503] = True
    vm = make_view_model(root, paths, votes=votes, iterations=iterations,
                         excluded=excluded, pinned=pinned)
    favorite = np.zeros(n, bool)
    favorite[vm.consensus[: max(1, len(vm.consensus) // 2)]] = True
    vm.favorite = favorite
    return vm


def album_view_model(album: Path, *, iterations: int = 10, seed: int = 1) -> ViewModel:
    """A ViewModel over the real image files of ``album`` (sorted), some voted."""
    paths = sorted(
        p.relative_to(album).as_posix()
        for p in album.rglob("*")
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and ".picksel" not in p.parts
    )
    rng = np.random.default_rng(seed)
    n = len(paths)
    votes = np.zeros(n, np.int32)
    picked = rng.choice(n, size=max(1, n // 2), replace=False)
    votes[picked] = rng.integers(1, iterations + 1, size=picked.size)
    return make_view_model(album, paths, votes=votes, iterations=iterations)


def fake_coords(n: int, *, seed: int = 0, clusters: int = 12) -> np.ndarray:
    """UMAP-looking float32 (n, 2) coordinates: gaussian blobs of varied size."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-10, 10, size=(clusters, 2))
    spread = rng.uniform(0.3, 1.5, size=clusters)
    which = rng.integers(0, clusters, size=n)
    pts = centres[which] + rng.normal(size=(n, 2)) * spread[which, None]
    return pts.astype(np.float32)
