"""The how-many curve: covering radius of one FPS run, its knee, its cache, `picksel curve`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import picksel

from picksel.curve import (
    CURVE_FILENAME,
    covering_curve,
    covering_curve_reference,
    ensure_curve,
    knee_of,
    load_curve,
)
from picksel.errors import Cancelled, UsageError
from picksel.fps import fps_reference


def unit_rows(n: int, d: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def blobs(k: int, per: int = 60, d: int = 48, spread: float = 0.08, seed: int = 0) -> np.ndarray:
    """k well separated Gaussian blobs of unit vectors (random centres in d dimensions)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((k, d))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    x = np.repeat(centres, per, axis=0) + spread * rng.standard_normal((k * per, d)) / np.sqrt(d)
    x = x[rng.permutation(x.shape[0])].astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


# ------------------------------------------------------------------ engine


@pytest.mark.parametrize("n,d,seed", [(300, 8, 0), (1500, 32, 1), (5000, 64, 2)])
def test_radii_equal_the_plain_loop(n: int, d: int, seed: int) -> None:
    x = unit_rows(n, d, seed)
    excluded = np.random.default_rng(seed).random(n) < 0.1
    for pinned in (None, np.flatnonzero(~excluded)[[5, 1, 9]]):
        curve = covering_curve(x, 400, excluded=excluded, pinned=pinned)
        ref = covering_curve_reference(x, 400, excluded=excluded, pinned=pinned)
        np.testing.assert_allclose(curve.radius, ref, atol=1e-5)
        assert not excluded[curve.picks].any()
        if pinned is not None:
            assert curve.picks[:3].tolist() == pinned.tolist()


@pytest.mark.parametrize("pool,spare,batch", [(8, 1, 2), (32, 2, 8), (64, 3, 32)])
def test_radii_equal_the_plain_loop_with_partial_passes(monkeypatch, pool: int, spare: int, batch: int) -> None:
    # A tiny pool: passes come often and each brings up to date only the rows whose
    # bound can still beat the pool's best; rows left stale keep their old bounds.
    import picksel.curve as curve_mod

    monkeypatch.setattr(curve_mod, "POOL", pool)
    monkeypatch.setattr(curve_mod, "SPARE", spare)
    monkeypatch.setattr(curve_mod, "BATCH", batch)
    x = unit_rows(3000, 12, seed=pool)
    excluded = np.random.default_rng(pool).random(3000) < 0.05
    curve = covering_curve(x, 300, excluded=excluded)
    ref = covering_curve_reference(x, 300, excluded=excluded)
    np.testing.assert_allclose(curve.radius, ref, atol=1e-5)
    assert curve.picks.tolist() == fps_reference(x, 300, int(curve.picks[0]), excluded=excluded).tolist()


def test_picks_are_a_farthest_first_run_and_radius_is_the_max_distance() -> None:
    x = unit_rows(800, 16, 3)
    curve = covering_curve(x, 200)
    ref = fps_reference(x, 200, int(curve.picks[0]))
    assert curve.picks.tolist() == ref.tolist()
    for k in (1, 7, 50, 200):
        nearest = (1.0 - x.astype(np.float64) @ x[curve.picks[:k]].T.astype(np.float64)).min(axis=1)
        assert curve.radius[k - 1] == pytest.approx(nearest.max(), abs=1e-6)
    assert np.all(np.diff(curve.radius) <= 1e-9)


def test_k_is_capped_by_the_available_images_and_ends_at_zero() -> None:
    x = unit_rows(50, 8)
    excluded = np.zeros(50, dtype=bool)
    excluded[:20] = True
    curve = covering_curve(x, 1000, excluded=excluded)
    assert curve.k.tolist() == list(range(1, 31))
    assert curve.radius[-1] == 0.0 and curve.radius[-2] > 0.0
    assert sorted(curve.picks.tolist()) == list(range(20, 50))
    one = covering_curve(x[:1], 10)
    assert one.k.tolist() == [1] and one.radius.tolist() == [0.0]
    with pytest.raises(UsageError):
        covering_curve(x, 10, excluded=np.ones(50, dtype=bool))


def test_cancel_stops_the_run() -> None:
    with pytest.raises(Cancelled):
        covering_curve(unit_rows(500, 8), 100, cancel=lambda: True)


@pytest.mark.parametrize("knee", [3, 17, 40, 120])
def test_knee_of_a_curve_that_falls_then_levels_off(knee: int) -> None:
    k = np.arange(1, 501)
    r = np.where(k <= knee, 1.0 - 0.9 * (k - 1) / (knee - 1), 0.1 - 0.05 * (k - knee) / (500 - knee))
    assert knee_of(k, r) == knee


def test_knee_of_a_smooth_convex_curve_is_where_the_slope_is_minus_one() -> None:
    # y = exp(-x / s) on normalised axes: the farthest point below the chord y = 1 - x is
    # where the curve's slope equals the chord's (-1 once both axes are scaled to 0..1).
    k = np.arange(1, 1001)
    r = np.exp(-(k - 1) / 100.0)
    x = (k - 1) / 999.0
    y = (r - r[-1]) / (r[0] - r[-1])
    slope = np.gradient(y, x)
    expected = int(k[np.argmin(np.abs(slope + 1.0))])
    assert abs(knee_of(k, r) - expected) <= 1


def test_knee_of_flat_or_tiny_curves_is_the_first_k() -> None:
    assert knee_of(np.arange(1, 11), np.full(10, 0.3)) == 1
    assert knee_of(np.array([1, 2]), np.array([0.5, 0.0])) == 1


@pytest.mark.parametrize("clusters", [4, 9, 25])
def test_knee_on_gaussian_blobs_is_the_number_of_blobs(clusters: int) -> None:
    x = blobs(clusters, seed=clusters)
    curve = covering_curve(x, 300)
    assert curve.knee == clusters
    assert curve.radius[clusters - 1] < 0.5 * curve.radius[clusters - 2]


# ------------------------------------------------------------------ cache


def test_cache_is_reused_then_recomputed_when_exclusions_or_pins_change(tmp_path: Path) -> None:
    x = blobs(6, seed=1)
    n = x.shape[0]
    none = np.zeros(n, dtype=bool)
    no_pins = np.empty(0, dtype=np.int64)
    first = ensure_curve(tmp_path, "fp1", x, 100, excluded=none, pinned=no_pins)
    path = tmp_path / CURVE_FILENAME
    stamp = path.stat().st_mtime_ns, path.stat().st_ino
    again = ensure_curve(tmp_path, "fp1", x, 100, excluded=none, pinned=no_pins)
    assert (path.stat().st_mtime_ns, path.stat().st_ino) == stamp  # not rewritten
    np.testing.assert_array_equal(again.radius, first.radius)

    excluded = none.copy()
    excluded[first.picks[:3]] = True
    changed = ensure_curve(tmp_path, "fp1", x, 100, excluded=excluded, pinned=no_pins)
    assert not excluded[changed.picks].any()
    assert path.stat().st_ino != stamp[1]
    assert load_curve(tmp_path, "stale-key") is None
    pinned = ensure_curve(tmp_path, "fp1", x, 100, excluded=none, pinned=np.array([7]))
    assert pinned.picks[0] == 7
    other_index = ensure_curve(tmp_path, "fp2", x, 100, excluded=none, pinned=no_pins)
    np.testing.assert_array_equal(other_index.radius, first.radius)
    assert [p.name for p in tmp_path.iterdir()] == [CURVE_FILENAME]  # no temp files left


def test_damaged_or_pickled_cache_is_recomputed_never_unpickled(tmp_path: Path) -> None:
    x = blobs(3, seed=2)
    none, no_pins = np.zeros(x.shape[0], dtype=bool), np.empty(0, dtype=np.int64)
    good = ensure_curve(tmp_path, "fp", x, 50, excluded=none, pinned=no_pins)
    path = tmp_path / CURVE_FILENAME
    path.write_bytes(b"PK\x03\x04 not a zip at all")
    assert ensure_curve(tmp_path, "fp", x, 50, excluded=none, pinned=no_pins).knee == good.knee
    marker = tmp_path / "unpickled"
    with open(path, "wb") as fh:  # an object array whose unpickling would create a file
        np.savez(fh, k=np.array([_Boom(str(marker))], dtype=object), radius=good.radius,
                 picks=good.picks, key=np.array("x"), version=np.array(1))
    assert load_curve(tmp_path, "x") is None
    assert not marker.exists()


class _Boom:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):  # noqa: ANN204
        return (open, (self.path, "w"))


# ------------------------------------------------------------------ CLI


@pytest.fixture(scope="module")
def demo_album(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from picksel.demo import build_demo_album
    from picksel.index import build_index

    root = tmp_path_factory.mktemp("curve") / "demo-album"
    build_demo_album(root)
    build_index(root)
    return root


@pytest.fixture
def album(demo_album: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "album"
    shutil.copytree(demo_album, dest, symlinks=True)
    return dest




def test_curve_json_matches_the_engine_and_the_saved_count(capsys, album: Path) -> None:
    from picksel.index import load_index

    assert picksel(capsys, "select", album, "--count", "33", "--iterations", "1", "--seed", "1")[0] == 0
    code, out, err = picksel(capsys, "curve", album, "--max", "200", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert set(data) == {"k", "radius", "knee", "count"}
    assert data["k"] == list(range(1, 201)) and data["count"] == 33
    index = load_index(album)
    curve = covering_curve(index.embeddings, 200)
    np.testing.assert_allclose(data["radius"], curve.radius, atol=1e-6)
    assert data["knee"] == curve.knee
    assert (album / ".picksel" / CURVE_FILENAME).is_file()


def test_curve_text_table_names_the_knee_and_exclusions_change_it(capsys, album: Path) -> None:
    code, out, _ = picksel(capsys, "curve", album, "--max", "300")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["k", "radius"]
    assert lines[-1].startswith("suggested count: ")
    knee = int(lines[-1].split(": ")[1])
    assert any(line.split()[0] == str(knee) and "knee" in line for line in lines[1:-1])
    assert 10 <= len(lines) <= 30
    from picksel.index import load_index

    index = load_index(album)
    cache = album / ".picksel" / CURVE_FILENAME
    inode = cache.stat().st_ino
    gone = index.paths[::3]
    assert picksel(capsys, "exclude", album, *gone)[0] == 0
    after = json.loads(picksel(capsys, "curve", album, "--max", "300", "--json")[1])
    assert cache.stat().st_ino != inode  # recomputed, not the stale cache
    mask = np.zeros(len(index), dtype=bool)
    mask[::3] = True
    np.testing.assert_allclose(after["radius"], covering_curve(index.embeddings, 300, excluded=mask).radius,
                               atol=1e-6)


def test_curve_bad_arguments_exit_2_with_one_line(tmp_path: Path, album: Path) -> None:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    for argv in (["--max", "1"], ["--max", "many"]):
        proc = subprocess.run([sys.executable, "-m", "picksel", "curve", str(album), *argv],
                              capture_output=True, text=True, env=env)
        assert proc.returncode == 2
        assert len(proc.stderr.strip().splitlines()) == 1 and "max" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "picksel", "curve", str(tmp_path / "nope")],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 1 and "not found" in proc.stderr
    assert "Traceback" not in proc.stderr
