"""One million images: selection and the curator at 1,000,000 x 768 float32 (2.9 GiB).

Not part of ``make bench`` (it needs ~6 GB of disk and ~5 GB of RAM, and minutes):
run it with ``make bench-large`` (``python -m bench large``).

The data is made once and kept in a cache folder (``$PICKSEL_BENCH_CACHE``, default
``bench/.cache/large``): the clustered CLIP-like vectors of ``bench_select`` as a plain
``.npy``, and a synthetic album whose ``.picksel`` holds a 1M-row index, a cached map and
a saved selection (the image files do not exist: opening must not touch every image).

Every measure runs in a fresh child process, so its peak memory is its own (``VmHWM``
from ``/proc/self/status``, interpreter and imports included), against the matrix bytes:

* FPS and K-Means, count 200, 20 iterations, through ``run_selection`` (what ``picksel
  select`` and the TUI call) on the matrix read into memory;
* the curator: from creating the app to the first full screen (map drawn, list filled,
  sidebar counts shown), headless with ``App.run_test``; then in the open app a map
  redraw after a cursor move and after a new result (action plus every line rendered),
  and a list page (``pagedown`` plus every visible line rendered).

Machine load changes the figures (2 cores shared with other work): the load average is
printed with each line.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

N = 1_000_000
DIM = 768
COUNT = 200
ITERATIONS = 20
FPS_TARGET_S = 60.0
KMEANS_TARGET_S = 120.0
MEMORY_TARGET = 1.5
OPEN_TARGET_S = 3.0
MAP_TARGET_MS = 50.0
LIST_TARGET_MS = 50.0


def cache_dir(n: int) -> Path:
    base = os.environ.get("PICKSEL_BENCH_CACHE") or Path(__file__).resolve().parent / ".cache" / "large"
    return Path(base) / f"n{n}-d{DIM}"


def _peak_rss() -> int:
    """This process's peak resident set in bytes (VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _load() -> str:
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


# --------------------------------------------------------------------------- data


def vectors_path(n: int) -> Path:
    return cache_dir(n) / "vectors.npy"


def album_path(n: int) -> Path:
    return cache_dir(n) / "album"


def make_data(n: int) -> None:
    """Vectors and album, made once (each written under a temp name, then renamed)."""
    from bench.bench_select import make_embeddings

    root = cache_dir(n)
    root.mkdir(parents=True, exist_ok=True)
    vec = vectors_path(n)
    if not vec.is_file():
        t0 = time.perf_counter()
        x = make_embeddings(n, DIM, seed=0)
        tmp = vec.with_suffix(".tmp.npy")
        np.save(tmp, x)
        os.replace(tmp, vec)
        del x
        print(f"   made {vec} in {time.perf_counter() - t0:.0f} s", flush=True)
    done = root / "album.done"
    if not done.is_file():
        t0 = time.perf_counter()
        _make_album(album_path(n), np.load(vec, mmap_mode="r"))
        done.write_text("ok\n")
        print(f"   made {album_path(n)} in {time.perf_counter() - t0:.0f} s", flush=True)


def _make_album(album: Path, emb: np.ndarray) -> None:
    """index.npz, map.npz and state.json through the real save functions."""
    import shutil

    from bench.bench_launch import save_album
    from picksel.mapping import pca_map

    if album.exists():
        shutil.rmtree(album)
    album.mkdir(parents=True)
    n = emb.shape[0]
    paths = [f"folder{i // 1000:04d}/img_{i:07d}.jpg" for i in range(n)]
    rng = np.random.default_rng(0)
    voted = rng.choice(n, min(600, n // 2), replace=False)
    votes = rng.integers(1, 21, voted.size)
    excluded = rng.choice(n, min(1000, n // 100), replace=False)
    save_album(album, emb, paths, pca_map(emb), "pca", voted, votes, excluded, COUNT, ITERATIONS)


# --------------------------------------------------------------------------- child stages


def stage_select(n: int, method: str) -> dict:
    from picksel.select import run_selection

    base = _peak_rss()
    t0 = time.perf_counter()
    x = np.load(vectors_path(n))
    load_s = time.perf_counter() - t0
    t0, c0 = time.perf_counter(), time.process_time()
    result = run_selection(x, method=method, count=COUNT, iterations=ITERATIONS, seed=1)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {
        "seconds": elapsed, "cpu": cpu, "load": load_s, "peak": _peak_rss(), "base": base,
        "matrix": x.nbytes, "picked": len(result.consensus), "loadavg": _load(),
    }


async def _open_and_draw(album: Path, size: tuple[int, int]) -> dict:
    from bench.bench_launch import open_and_draw
    from picksel.tui.app import PickselApp

    t0, c0 = time.perf_counter(), time.process_time()
    app = PickselApp(album, graphics="text", compute_umap=False)
    out: dict = {}
    async with app.run_test(size=size) as pilot:
        await open_and_draw(app, pilot)
        m, t = app.map_view, app.thumbs
        out["open"] = time.perf_counter() - t0
        out["open cpu"] = time.process_time() - c0  # both threads (the vectors' read has begun)
        out["n"] = app.curator.n
        index = app.curator.index
        while not index.verified:  # the vectors are read in the background after the open
            await pilot.pause(0.05)
        out["vectors"] = time.perf_counter() - t0
        await pilot.pause()

        samples = []
        for d in ["right", "down", "left", "up"] * 10:
            start = time.perf_counter()
            m.action_move(d)
            m.build_all_rows()
            samples.append(time.perf_counter() - start)
        out["map move"] = samples
        await pilot.pause()

        rng = np.random.default_rng(1)
        base_states = app._vm.states
        samples = []
        for _ in range(10):
            states = base_states.copy()
            states[rng.choice(len(states), size=COUNT, replace=False)] = rng.integers(1, 5)
            start = time.perf_counter()
            m.set_states(states)
            m.build_all_rows()
            samples.append(time.perf_counter() - start)
        out["map result"] = samples
        await pilot.pause()

        t.focus()
        await pilot.pause()
        samples = []
        for _ in range(40):
            start = time.perf_counter()
            t.action_page(1)
            for y in range(t.size.height):
                t.render_line(y)
            samples.append(time.perf_counter() - start)
            await pilot.pause()
        out["list page"] = samples
        await pilot.press("q")
    return out


def stage_open(n: int) -> dict:
    import picksel.tui.app  # noqa: F401  (imports are not part of the open figure)

    out = asyncio.run(_open_and_draw(album_path(n) if n else _small_album(), (120, 40)))
    out["peak"] = _peak_rss()
    out["loadavg"] = _load()
    return out


def stage_load(n: int) -> dict:
    """What ``picksel select`` pays before selecting: the index read and fully checked."""
    from picksel.index import load_index

    t0 = time.perf_counter()
    load_index(album_path(n), verify=False)
    lazy_s = time.perf_counter() - t0
    t0, c0 = time.perf_counter(), time.process_time()
    index = load_index(album_path(n))
    return {
        "seconds": time.perf_counter() - t0, "cpu": time.process_time() - c0, "lazy": lazy_s,
        "n": len(index), "peak": _peak_rss(), "matrix": index.embeddings.nbytes, "loadavg": _load(),
    }


def _small_album() -> Path:
    """The baseline: the same kind of album with 1,000 images (what Textual's own start-up
    costs on this machine now)."""
    import tempfile

    from bench.bench_select import make_embeddings

    album = Path(tempfile.mkdtemp(prefix="picksel-bench-small-")) / "album"
    _make_album(album, make_embeddings(1000, DIM, seed=0))
    return album


def _child(stage: str, n: int) -> dict:
    cmd = [sys.executable, "-m", "bench.bench_large", "--stage", stage, "--n", str(n)]
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"stage {stage} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- report


def _ok(ok: bool) -> str:
    return "OK" if ok else "MISS"


def _ms(samples: list[float]) -> tuple[float, float]:
    return statistics.median(samples) * 1000, max(samples) * 1000


def main(quick: bool = False) -> None:
    n = 50_000 if quick else N
    make_data(n)
    gib = n * DIM * 4 / 2**30
    for method, target in (("fps", FPS_TARGET_S), ("kmeans", KMEANS_TARGET_S)):
        r = _child(method, n)
        mem = r["peak"] / r["matrix"]
        print(
            f"{method} N={n:,} D={DIM} ({gib:.1f} GiB) count {COUNT} x {ITERATIONS}: {r['seconds']:.1f} s "
            f"(target <= {target:g} s) {_ok(r['seconds'] <= target)} (CPU {r['cpu']:.1f} s, all threads); peak RSS {mem:.2f}x the matrix "
            f"({r['peak'] / 2**30:.2f} GiB, interpreter {r['base'] / 2**20:.0f} MiB; target <= "
            f"{MEMORY_TARGET:g}x) {_ok(mem <= MEMORY_TARGET)}; .npy read {r['load']:.1f} s; "
            f"load avg {r['loadavg']}",
            flush=True,
        )
    r = _child("load", n)
    print(
        f"index load N={n:,} as `picksel select` does (read, CRC, NaN check): {r['seconds']:.1f} s "
        f"(CPU {r['cpu']:.1f} s); as the curator opens it (vectors left for later): {r['lazy']:.2f} s; "
        f"peak RSS {r['peak'] / r['matrix']:.2f}x the matrix; load avg {r['loadavg']}",
        flush=True,
    )
    small = _child("open", 0)
    r = _child("open", n)
    print(
        f"curator open N={n:,} (cached map, saved selection): {r['open']:.2f} s (CPU {r['open cpu']:.2f} s) "
        f"(target <= {OPEN_TARGET_S:g} s) {_ok(r['open'] <= OPEN_TARGET_S)}; baseline N=1,000 "
        f"{small['open']:.2f} s (CPU {small['open cpu']:.2f} s), ratio {r['open'] / small['open']:.1f}x; vectors read and checked "
        f"in the background by {r['vectors']:.1f} s; peak RSS {r['peak'] / 2**30:.2f} GiB; "
        f"load avg {r['loadavg']}",
        flush=True,
    )
    for label, target in (("map move", MAP_TARGET_MS), ("map result", MAP_TARGET_MS), ("list page", LIST_TARGET_MS)):
        med, worst = _ms(r[label])
        print(
            f"  {label} N={n:,}: {med:.1f} ms (worst {worst:.1f}; target median <= {target:g} ms) "
            f"{_ok(med <= target)}",
            flush=True,
        )


def _stage_main(argv: list[str]) -> None:
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--stage", choices=("fps", "kmeans", "open", "load"), required=True)
    parser.add_argument("--n", type=int, default=N)
    args = parser.parse_args(argv)
    if args.stage == "open":
        out = stage_open(args.n)
    elif args.stage == "load":
        out = stage_load(args.n)
    else:
        out = stage_select(args.n, args.stage)
    print(json.dumps(out))


if __name__ == "__main__":
    if "--stage" in sys.argv:
        _stage_main(sys.argv[1:])
    else:
        main(quick="--quick" in sys.argv)
