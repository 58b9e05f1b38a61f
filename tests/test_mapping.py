"""picksel.mapping: PCA/UMAP maps, the map.npz cache, tiny albums, cancel, display scaling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from picksel import mapping
from picksel.errors import Cancelled
from picksel.mapping import (
    MapData,
    ensure_map,
    load_map,
    normalise_coords,
    pca_map,
    save_map,
    umap_map,
    umap_possible,
)


class FakeIndex:
    """Stand-in for picksel.index.AlbumIndex: only what ensure_map needs."""

    def __init__(self, embeddings: np.ndarray, fp: str = "fp-1") -> None:
        self.embeddings = np.asarray(embeddings, dtype=np.float32)
        self._fp = fp

    def fingerprint(self) -> str:
        return self._fp


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _clusters(n_per: int = 20, k: int = 3, d: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d)) * 4
    labels = np.repeat(np.arange(k), n_per)
    x = centres[labels] + rng.normal(scale=0.3, size=(k * n_per, d))
    return _unit(x), labels


# --------------------------------------------------------------------------- PCA


def test_pca_shape_dtype_and_repeatable() -> None:
    x, _ = _clusters()
    a = pca_map(x)
    b = pca_map(x.copy())
    assert a.shape == (60, 2) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert np.all(np.isfinite(a))


def test_pca_sign_is_fixed_by_the_data_not_by_lapack() -> None:
    # Points spread along +e0 (big) and +e1 (small): axis 0 must grow with x[:, 0].
    t = np.linspace(-1, 1, 11)
    x = np.stack([5 * t, np.sin(7 * t), np.zeros_like(t)], axis=1)
    c = pca_map(x)
    assert np.corrcoef(c[:, 0], x[:, 0])[0, 1] > 0.99
    # Row order does not change any point's coordinates.
    perm = np.random.default_rng(3).permutation(len(x))
    np.testing.assert_allclose(pca_map(x[perm]), c[perm], atol=1e-5)


@pytest.mark.parametrize(
    ("emb", "expected"),
    [
        (np.zeros((0, 8)), np.zeros((0, 2))),
        (np.ones((1, 8)), np.zeros((1, 2))),
    ],
)
def test_pca_empty_and_single(emb: np.ndarray, expected: np.ndarray) -> None:
    out = pca_map(emb)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, expected)


def test_pca_two_points_are_two_distinct_points() -> None:
    out = pca_map(_unit(np.array([[1.0, 0, 0], [0, 1.0, 0]])))
    assert out.shape == (2, 2)
    assert np.linalg.norm(out[0] - out[1]) > 0.5
    assert np.all(out[:, 1] == 0)  # only one direction of variance exists


def test_pca_low_dimensional_and_duplicate_rows() -> None:
    one_d = pca_map(np.array([[1.0], [-1.0], [1.0]]))
    assert one_d.shape == (3, 2) and np.all(one_d[:, 1] == 0)
    assert one_d[0, 0] == one_d[2, 0] != one_d[1, 0]
    no_d = pca_map(np.zeros((4, 0)))
    np.testing.assert_array_equal(no_d, np.zeros((4, 2)))
    same = pca_map(np.tile([[0.6, 0.8]], (5, 1)))
    np.testing.assert_array_equal(same, np.zeros((5, 2)))
    with_nan = pca_map(np.array([[np.nan, 1.0], [0.0, 1.0], [1.0, 0.0]]))
    assert np.all(np.isfinite(with_nan))


def test_umap_possible_needs_enough_distinct_rows() -> None:
    x, _ = _clusters(n_per=2, k=3)
    assert umap_possible(x)
    assert not umap_possible(x[:4])
    assert not umap_possible(np.tile(x[:1], (50, 1)))
    assert not umap_possible(np.random.default_rng(0).normal(size=(50, 1)))


# --------------------------------------------------------------------------- UMAP


def test_umap_tiny_albums_fall_back_without_importing_umap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mapping, "_import_umap", lambda: pytest.fail("umap imported for a tiny album"))
    assert umap_map(np.ones((1, 4))).tolist() == [[0.0, 0.0]]
    two = umap_map(_unit(np.eye(2, 4)))
    assert two.shape == (2, 2) and not np.allclose(two[0], two[1])
    dup = umap_map(np.tile(_unit(np.eye(1, 4)), (30, 1)))
    assert dup.shape == (30, 2)


def test_umap_cancel_before_start_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mapping, "_import_umap", lambda: pytest.fail("should not import"))
    x, _ = _clusters()
    with pytest.raises(Cancelled):
        umap_map(x, cancel=lambda: True)


def test_umap_cancel_between_stages(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cancel after the import stage: the neighbour stage must stop, no layout is run."""
    flag = {"cancel": False}

    def fake_import() -> object:
        flag["cancel"] = True
        return object()  # UMAP would fail if the code went on to use it

    monkeypatch.setattr(mapping, "_import_umap", fake_import)
    x, _ = _clusters()
    with pytest.raises(Cancelled):
        umap_map(x, cancel=lambda: flag["cancel"])


def test_epoch_reporter_reports_and_cancels() -> None:
    calls: list[tuple[int, int, str]] = []
    stop = {"now": False}
    rep = mapping._EpochReporter(lambda d, t, m: calls.append((d, t, m)), lambda: stop["now"], (2, 4))
    rep.write("\r0/200\n")
    rep.write("\r1/200\n")  # same percent: not repeated
    rep.write("\r100/200\n")
    assert [m for _, _, m in calls] == ["optimising layout 0/200", "optimising layout 100/200"]
    assert all(d == 2 and t == 4 for d, t, _ in calls)
    stop["now"] = True
    with pytest.raises(Cancelled):
        rep.write("\r101/200\n")


def test_exact_knn_matches_brute_force() -> None:
    x, _ = _clusters(n_per=15, k=3, d=8, seed=5)
    k = 6
    idx, dist = mapping._exact_cosine_knn(x, k, lambda *a: None, lambda: False, (1, 4))
    assert idx.shape == dist.shape == (45, k)
    np.testing.assert_array_equal(idx[:, 0], np.arange(45))
    assert np.all(dist[:, 0] == 0) and np.all(np.diff(dist, axis=1) >= -1e-6)
    full = 1 - x @ x.T
    np.fill_diagonal(full, -1)
    ref = np.sort(full, axis=1)[:, 1:k]
    np.testing.assert_allclose(dist[:, 1:], ref, atol=1e-5)


@pytest.mark.slow
def test_umap_real_layout_separates_clusters_and_is_deterministic() -> None:
    """The one real UMAP run (N=60): import + numba JIT are slow on a cold machine."""
    x, labels = _clusters(n_per=20, k=3, d=16)
    x = np.concatenate([x, x[:2]])  # duplicates share a point
    labels = np.concatenate([labels, labels[:2]])
    msgs: list[str] = []
    a = umap_map(x, progress=lambda d, t, m: msgs.append(m))
    assert a.shape == (62, 2) and a.dtype == np.float32 and np.all(np.isfinite(a))
    np.testing.assert_array_equal(a[60:], a[:2])
    assert msgs[0] == "importing umap"
    assert "nearest neighbours" in msgs and any(m.startswith("optimising layout ") for m in msgs)
    assert msgs[-1].startswith("map ready")
    centroids = np.stack([a[labels == k].mean(axis=0) for k in range(3)])
    spread = max(np.linalg.norm(a[labels == k] - centroids[k], axis=1).mean() for k in range(3))
    gaps = [np.linalg.norm(centroids[i] - centroids[j]) for i in range(3) for j in range(i + 1, 3)]
    assert min(gaps) > 2 * spread
    b = umap_map(x)
    np.testing.assert_allclose(a, b, atol=1e-4)
    small = umap_map(x[::10][:6])  # just above the PCA fallback: random init, k = 5
    assert small.shape == (6, 2) and np.all(np.isfinite(small)) and np.ptp(small, axis=0).min() > 0


# --------------------------------------------------------------------------- cache


def test_save_load_roundtrip_and_staleness(tmp_path: Path) -> None:
    coords = np.arange(10, dtype=np.float32).reshape(5, 2)
    save_map(tmp_path, MapData(coords=coords, kind="umap", fingerprint="abc"))
    got = load_map(tmp_path, "abc")
    assert got is not None and got.kind == "umap" and got.fingerprint == "abc"
    np.testing.assert_array_equal(got.coords, coords)
    assert got.coords.dtype == np.float32
    assert load_map(tmp_path, "other") is None
    assert load_map(tmp_path / "missing", "abc") is None
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize(
    "content",
    [b"", b"not a zip at all", b"PK\x03\x04 truncated zip"],
)
def test_corrupt_map_file_is_ignored(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "map.npz").write_bytes(content)
    assert load_map(tmp_path, "abc") is None


def test_map_with_pickled_or_wrong_fields_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "map.npz"
    obj = np.empty(1, dtype=object)
    obj[0] = {"evil": True}
    np.savez(path, coords=obj, kind=np.array("umap"), fingerprint=np.array("abc"), version=np.array(1))
    assert load_map(tmp_path, "abc") is None
    np.savez(path, coords=np.zeros((3, 3), np.float32), kind=np.array("umap"), fingerprint=np.array("abc"), version=np.array(1))
    assert load_map(tmp_path, "abc") is None
    np.savez(path, coords=np.zeros((3, 2), np.float32), kind=np.array("tsne"), fingerprint=np.array("abc"), version=np.array(1))
    assert load_map(tmp_path, "abc") is None
    np.savez(path, coords=np.zeros((3, 2), np.float32), kind=np.array("umap"), fingerprint=np.array("abc"), version=np.array(99))
    assert load_map(tmp_path, "abc") is None
    np.savez(path, coords=np.full((3, 2), np.nan, np.float32), kind=np.array("umap"), fingerprint=np.array("abc"), version=np.array(1))
    assert load_map(tmp_path, "abc") is None


@pytest.mark.parametrize("n", [1, 2, 3])
def test_ensure_map_tiny_album_uses_pca_and_caches(tmp_path: Path, n: int) -> None:
    emb = _unit(np.eye(n, 8) + 0.1)
    data = ensure_map(FakeIndex(emb, "tiny"), tmp_path)
    assert data.kind == "pca" and data.coords.shape == (n, 2) and data.fingerprint == "tiny"
    again = load_map(tmp_path, "tiny")
    assert again is not None
    np.testing.assert_array_equal(again.coords, data.coords)


def test_ensure_map_uses_cache_and_recomputes_when_stale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    x, _ = _clusters()
    calls: list[int] = []

    def fake_umap(emb: np.ndarray, **kw: object) -> np.ndarray:
        calls.append(len(emb))
        return np.full((len(emb), 2), float(len(calls)), dtype=np.float32)

    monkeypatch.setattr(mapping, "umap_map", fake_umap)
    first = ensure_map(FakeIndex(x, "v1"), tmp_path)
    assert first.kind == "umap" and calls == [60]
    cached = ensure_map(FakeIndex(x, "v1"), tmp_path)
    assert calls == [60]
    np.testing.assert_array_equal(cached.coords, first.coords)
    fresh = ensure_map(FakeIndex(x[:50], "v2"), tmp_path)
    assert calls == [60, 50] and fresh.coords.shape == (50, 2) and fresh.coords[0, 0] == 2.0
    assert load_map(tmp_path, "v1") is None  # replaced by the v2 map
    # A cache whose row count disagrees with the index is not trusted either.
    save_map(tmp_path, MapData(np.zeros((7, 2), np.float32), "umap", "v3"))
    assert ensure_map(FakeIndex(x, "v3"), tmp_path).coords.shape == (60, 2)
    assert calls == [60, 50, 60]


def test_ensure_map_cancel_leaves_cache_untouched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    x, _ = _clusters()
    save_map(tmp_path, MapData(np.zeros((60, 2), np.float32), "umap", "old"))
    before = (tmp_path / "map.npz").read_bytes()

    def cancelled(emb: np.ndarray, **kw: object) -> np.ndarray:
        raise Cancelled()

    monkeypatch.setattr(mapping, "umap_map", cancelled)
    with pytest.raises(Cancelled):
        ensure_map(FakeIndex(x, "new"), tmp_path, cancel=lambda: True)
    assert (tmp_path / "map.npz").read_bytes() == before
    with pytest.raises(Cancelled):
        ensure_map(FakeIndex(x[:2], "tiny"), tmp_path, cancel=lambda: True)
    assert (tmp_path / "map.npz").read_bytes() == before


# --------------------------------------------------------------------------- display


def test_normalise_coords_range_aspect_and_outliers() -> None:
    rng = np.random.default_rng(1)
    c = np.column_stack([rng.uniform(0, 10, 1000), rng.uniform(0, 5, 1000)])
    c[0] = [1e6, -1e6]  # one wild outlier must not squash the rest
    out = normalise_coords(c)
    assert out.dtype == np.float32 and out.shape == (1000, 2)
    assert out.min() >= 0 and out.max() <= 1
    body = out[1:]
    assert body[:, 0].max() - body[:, 0].min() > 0.95
    # aspect kept: y spans about half of x and is centred
    y_span = body[:, 1].max() - body[:, 1].min()
    assert 0.4 < y_span < 0.6
    assert abs((body[:, 1].max() + body[:, 1].min()) / 2 - 0.5) < 0.05


def test_normalise_coords_degenerate_inputs() -> None:
    assert normalise_coords(np.zeros((0, 2))).shape == (0, 2)
    np.testing.assert_array_equal(normalise_coords(np.array([[3.0, 4.0]])), [[0.5, 0.5]])
    np.testing.assert_array_equal(normalise_coords(np.full((4, 2), 7.0)), np.full((4, 2), 0.5))
    out = normalise_coords(np.array([[0.0, 0.0], [np.nan, 1.0], [2.0, 0.0]]))
    assert np.all(np.isfinite(out)) and out[1].tolist() == [0.5, 0.5]


# --------------------------------------------------------------------------- numba cache


def test_numba_cache_dir_respects_user_and_defaults_to_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "mine"))
    mapping._prepare_numba_cache()
    assert mapping.os.environ["NUMBA_CACHE_DIR"] == str(tmp_path / "mine")
    monkeypatch.delenv("NUMBA_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    mapping._prepare_numba_cache()
    expected = tmp_path / "xdg" / "picksel" / "numba"
    assert mapping.os.environ["NUMBA_CACHE_DIR"] == str(expected) and expected.is_dir()


def test_numba_cache_default_is_temporary() -> None:
    """umap's kernels get cache=True while it is imported; explicit choices are kept."""
    import numba

    def add(a: int, b: int) -> int:
        return a + b

    before = numba.njit
    assert type(numba.njit(add)._cache).__name__ == "NullCache"
    with mapping._numba_cache_by_default():
        assert type(numba.njit(add)._cache).__name__ == "FunctionCache"
        assert type(numba.njit(fastmath=True)(add)._cache).__name__ == "FunctionCache"
        assert type(numba.njit(cache=False)(add)._cache).__name__ == "NullCache"
    assert numba.njit is before


def test_distinct_rows_keeps_album_order() -> None:
    x = np.array([[3, 0], [1, 0], [3, 0], [2, 0], [1, 0]], dtype=np.float32)
    first, inverse = mapping._distinct_rows(x)
    assert first.tolist() == [0, 1, 3]
    assert inverse.tolist() == [0, 1, 0, 2, 1]
    y = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)
    first, inverse = mapping._distinct_rows(y)
    assert first.tolist() == list(range(50)) and inverse.tolist() == list(range(50))


def test_pca_on_row_sample_for_large_albums(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(7)
    t = rng.uniform(-1, 1, size=(400, 2)) * [6.0, 2.0]
    x = np.concatenate([t, rng.normal(scale=0.05, size=(400, 6))], axis=1)
    full = pca_map(x)
    monkeypatch.setattr(mapping, "_PCA_FIT_ROWS", 50)
    sampled = pca_map(x)
    np.testing.assert_array_equal(sampled, pca_map(x))  # still deterministic
    assert abs(np.corrcoef(sampled[:, 0], full[:, 0])[0, 1]) > 0.99
    assert abs(np.corrcoef(sampled[:, 1], full[:, 1])[0, 1]) > 0.95
