"""``picksel check``: near-duplicate search at scale, and the check of the demo album.

* Near-duplicate search (N=100,000 64-bit perceptual hashes): ``hamming_pairs`` (multi-
  index hashing, exact) vs ``hamming_pairs_brute`` (every pair) on a subsample of
  ``BRUTE_N`` hashes, scaled by (N/BRUTE_N)² to the full size; both must find the same
  pairs on the subsample. The hashes are random with planted near copies (1–8 bits
  flipped) for 5 % of them, so both the bucket look-ups and the confirmation run. The
  whole ``near_pairs`` step (both hash variants, thumbnail confirmation) is timed too,
  with the tracemalloc peak. Target: ≤ 60 s and ≤ 2 GB.
* Near duplicates by CLIP cosine (N=100,000 × 768 float32 unit vectors, clustered with a
  power-law spectrum like image embeddings, 2 % planted near copies at cosine ≈ 0.97):
  ``cosine_pairs`` (projection-bounded, exact) vs ``cosine_pairs_brute`` on ``COS_BRUTE_N``
  rows scaled by (N/n)²; same pairs on the subsample, every planted pair found. Wall and
  CPU time (CPU / 2 is what two idle cores would take), tracemalloc peak. Target ≤ 60 s,
  ≤ 2 GB.
* Demo album (built into a temp folder): cold check (nothing cached, nothing measured at
  index time, as after a PhotoMapAI import: every image decoded and measured), re-check
  (``quality.npz`` up to date), and check right after ``build_index`` (indexing measured
  everything: should cost what a re-check does), all through ``check_album`` in this
  process. Targets: ≤ 10 s cold, ≤ 1 s warm. Then indexing's decode stage with and
  without the measures (the price of measuring at index time, as a ratio from the same
  run). On a busy 2-core box (other users) the figures are mostly decoding time shared.
"""

from __future__ import annotations

import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

from picksel.duplicates import hamming_pairs, hamming_pairs_brute, near_pairs
from picksel.quality import THUMB_SIDE, Thresholds

SEARCH_TARGET = 60.0
MEMORY_TARGET = 2 * 1024**3
COLD_TARGET = 10.0
WARM_TARGET = 1.0
BRUTE_N = 20_000
COS_BRUTE_N = 10_000


def planted_hashes(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    h = rng.integers(0, 2**63, n, dtype=np.int64).astype(np.uint64) * np.uint64(2) + rng.integers(
        0, 2, n).astype(np.uint64)
    copies = rng.choice(n, n // 20, replace=False)
    for i in copies:
        src = h[rng.integers(0, n)]
        for bit in rng.choice(64, rng.integers(1, 9), replace=False):
            src ^= np.uint64(1) << np.uint64(int(bit))
        h[i] = src
    return h


def ok(value: float, target: float) -> str:
    return "OK" if value <= target else "MISS"


def bench_search(n: int, brute_n: int) -> None:
    h = planted_hashes(n)
    start = time.perf_counter()
    pairs = hamming_pairs(h)
    fast = time.perf_counter() - start
    sub = h[:brute_n]
    start = time.perf_counter()
    brute = hamming_pairs_brute(sub, 8)
    brute_t = (time.perf_counter() - start) * (n / brute_n) ** 2
    assert np.array_equal(hamming_pairs(sub), brute), "multi-index search differs from brute force"
    print(f"hamming_pairs N={n:,} radius 8: {fast:.2f} s, {len(pairs):,} pairs "
          f"[{ok(fast, SEARCH_TARGET)} ≤ {SEARCH_TARGET:.0f} s]; brute force scaled from "
          f"{brute_n:,}: {brute_t:.1f} s (ratio {brute_t / fast:.0f}×, same pairs on the subsample)")
    rng = np.random.default_rng(1)
    both = np.stack([h, planted_hashes(n, 2)], axis=1)
    thumbs = rng.integers(0, 256, (n, 2, THUMB_SIDE, THUMB_SIDE), dtype=np.uint8)
    tracemalloc.start()
    start = time.perf_counter()
    near = near_pairs(both, thumbs)
    took = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(f"near_pairs N={n:,} (2 hash variants + thumbnail check): {took:.2f} s, {len(near):,} pairs, "
          f"peak {peak / 1024**2:.0f} MB [{ok(took, SEARCH_TARGET)} time, {ok(peak, MEMORY_TARGET)} memory]")


def clip_like(n: int, d: int = 768, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors shaped like image embeddings (clusters, a power-law spectrum, one
    shared direction) with n // 50 planted near copies; returns (vectors, planted pairs)."""
    rng = np.random.default_rng(seed)
    scale = np.sqrt(1.0 / np.arange(1, d + 1)).astype(np.float32)
    centres = rng.standard_normal((2000, d), dtype=np.float32) * scale
    x = centres[rng.integers(0, len(centres), n)]
    x += 0.6 * rng.standard_normal((n, d), dtype=np.float32) * scale
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    shared = rng.standard_normal(d).astype(np.float32)
    x += shared / np.linalg.norm(shared)
    k = n // 50
    src = rng.choice(n, k, replace=False)
    dst = rng.choice(np.setdiff1d(np.arange(n), src), k, replace=False)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    noise = rng.standard_normal((k, d), dtype=np.float32)
    x[dst] = x[src] + 0.25 * noise / np.linalg.norm(noise, axis=1, keepdims=True)
    x[dst] /= np.linalg.norm(x[dst], axis=1, keepdims=True)
    return x, np.sort(np.stack([src, dst], axis=1), axis=1)


def bench_cosine(n: int, brute_n: int) -> None:
    from picksel.embeddingdups import NEAR_COSINE, cosine_pairs, cosine_pairs_brute

    x, planted = clip_like(n)
    tracemalloc.start()
    start, cpu = time.perf_counter(), time.process_time()
    pairs = cosine_pairs(x, NEAR_COSINE)
    took, cpu = time.perf_counter() - start, time.process_time() - cpu
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    found = {tuple(p) for p in pairs.tolist()}
    recall = sum(1 for p in planted.tolist() if tuple(p) in found) / max(1, len(planted))
    sub = x[:brute_n]
    start = time.perf_counter()
    brute = cosine_pairs_brute(sub, NEAR_COSINE)
    brute_t = (time.perf_counter() - start) * (n / brute_n) ** 2
    assert np.array_equal(cosine_pairs(sub, NEAR_COSINE), brute), "cosine search differs from brute force"
    print(f"cosine_pairs N={n:,} × {x.shape[1]} ≥ {NEAR_COSINE}: {took:.1f} s wall, {cpu:.1f} s CPU, "
          f"peak {peak / 1024**2:.0f} MB, {len(pairs):,} pairs, planted found {recall:.0%} "
          f"[{ok(took, SEARCH_TARGET)} ≤ {SEARCH_TARGET:.0f} s, {ok(peak, MEMORY_TARGET)} memory]; "
          f"N×N brute force scaled from {brute_n:,}: {brute_t:.0f} s (same pairs on the subsample)")


def _timed(fn):  # noqa: ANN001, ANN202
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def bench_demo() -> None:
    import shutil

    from picksel.check import check_album
    from picksel.demo import build_demo_album
    from picksel.encoders.builtin import BuiltinEncoder
    from picksel.index import build_index
    from picksel.scan import scan_album

    with tempfile.TemporaryDirectory() as tmp:
        album = Path(tmp) / "album"
        build_demo_album(album)
        shutil.rmtree(album / ".picksel", ignore_errors=True)
        rels = [e.rel for e in scan_album(album)]
        state = album / ".picksel"
        cold, r = _timed(lambda: check_album(album, rels, state, Thresholds()))
        warm, again = _timed(lambda: check_album(album, rels, state, Thresholds()))
        assert again.measured == 0
        shutil.rmtree(state)
        index_t, (index, _) = _timed(lambda: build_index(album))
        after, fresh = _timed(lambda: check_album(album, index.paths, state, Thresholds()))
        assert fresh.measured == 0 and fresh.flags == r.flags
        counts = ", ".join(f"{k} {v}" for k, v in r.counts().items())
        print(f"demo check ({len(rels)} images): cold {cold:.1f} s [{ok(cold, COLD_TARGET)} ≤ "
              f"{COLD_TARGET:.0f} s], after index {after:.2f} s, re-check {warm:.2f} s "
              f"[{ok(max(warm, after), WARM_TARGET)} ≤ {WARM_TARGET:.0f} s]")
        print(f"   flags: {counts}; {len(r.groups)} duplicate groups")
        # The decode stage of indexing with and without the measures, alternated so both
        # see the same machine load; one pool (started beforehand) for both.
        paths = [album / rel for rel in rels]
        enc = BuiltinEncoder()
        try:
            enc.encode_paths(paths[:64])
            plain, measured = [], []
            for _ in range(3):
                plain.append(_timed(lambda: enc.encode_paths(paths))[0])
                measured.append(_timed(lambda: enc.encode_paths(paths, measures={}))[0])
        finally:
            enc.close()
        a, b = min(plain), min(measured)
        print(f"demo index: build_index {index_t:.1f} s (with measures); decode stage "
              f"{a:.2f} s without measures, {b:.2f} s with (ratio {b / a:.2f}, best of 3, "
              f"{enc.workers} workers)")


def main(quick: bool = False) -> None:
    if quick:
        bench_search(5_000, 2_000)
        bench_cosine(5_000, 2_000)
        return
    bench_search(100_000, BRUTE_N)
    bench_cosine(100_000, COS_BRUTE_N)
    bench_demo()


if __name__ == "__main__":
    main()
