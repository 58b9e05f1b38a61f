"""Map + demo timings: UMAP with a cold vs. a warm numba cache, PCA, demo album build.

Each UMAP run happens in a fresh interpreter (that is what a user pays on start-up):
"cold" uses an empty NUMBA_CACHE_DIR so every kernel is compiled, "warm" reuses it.
The embeddings are the 64-pixel vectors of scikit-learn's digits (real data, N=1797).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_CHILD = """
import sys, time
t0 = time.perf_counter()
import numpy as np
from sklearn.datasets import load_digits
from picksel.mapping import umap_map
x = load_digits().data[: int(sys.argv[1])].astype(np.float32)
x /= np.linalg.norm(x, axis=1, keepdims=True)
stages = {}
def progress(done, total, message):
    stages.setdefault(message.split(" ")[0], time.perf_counter() - t0)
c = umap_map(x, progress=progress)
assert c.shape == (len(x), 2)
print(time.perf_counter() - t0, stages.get("importing", 0), stages.get("nearest", 0), stages.get("optimising", 0))
"""


def _umap_run(n: int, cache: Path) -> tuple[float, float, float, float]:
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache))
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(n)], env=env, capture_output=True, text=True, check=True
    )
    total, imp, nn, opt = (float(v) for v in out.stdout.split())
    return total, imp, nn, opt


def main(quick: bool = False) -> None:
    import numpy as np

    from picksel.demo import build_demo_album
    from picksel.mapping import pca_map

    n = 300 if quick else 1797
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "numba"
        cache.mkdir()
        cold = _umap_run(n, cache)
        warm = _umap_run(n, cache)
        for label, (total, imp, nn, opt) in (("cold numba cache", cold), ("warm numba cache", warm)):
            print(
                f"umap N={n} D=64 {label}: {total:.2f} s  "
                f"(import done {nn:.1f} s, layout started {opt:.1f} s; progress from {imp:.1f} s)"
            )
        ratio = cold[0] / warm[0]
        status = "OK" if ratio >= 1.5 else "SLOW"
        print(
            f"umap N={n} warm vs cold: {warm[0]:.2f} s  baseline {cold[0]:.2f} s  "
            f"ratio {ratio:.1f}x  (target >= 1.5x) {status}"
        )

        rng = np.random.default_rng(0)
        big = rng.normal(size=(20_000 if quick else 150_000, 512)).astype(np.float32)
        start = time.perf_counter()
        pca_map(big)
        pca = time.perf_counter() - start
        print(f"pca N={len(big)} D=512: {pca:.2f} s  (target <= 10 s) {'OK' if pca <= 10 else 'SLOW'}")

        start = time.perf_counter()
        report = build_demo_album(Path(tmp) / "demo")
        first = time.perf_counter() - start
        start = time.perf_counter()
        build_demo_album(Path(tmp) / "demo")
        again = time.perf_counter() - start
        print(
            f"demo build {report.total} images + {report.captions} captions: {first:.2f} s  "
            f"re-run {again:.2f} s  (target <= 15 s) {'OK' if first <= 15 else 'SLOW'}"
        )


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
