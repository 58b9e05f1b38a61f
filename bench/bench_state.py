"""One exclusion saved in an album with 150,000 exclusions, as every ``x`` in the curator does.

Times one whole ``edit_state`` cycle (lock, re-read, apply, journal, atomic save): the
wait a user feels per key, which grows with the size of state.json. Target <= 0.5 s.
No baseline: this line watches a cost that has no faster reference implementation yet.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

TARGET_CYCLE_S = 0.5


def _best(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main(quick: bool = False) -> None:
    from picksel.state import AlbumState, SavedSelection, save_state
    from picksel.statelock import edit_state

    n = 15_000 if quick else 150_000
    state = AlbumState()
    state.excluded = {f"photos/{i // 500:04d}/IMG_{i:06d}.jpg" for i in range(n)}
    consensus = [f"keep/{i:05d}.jpg" for i in range(1000)]
    state.selection = SavedSelection("fps", 1000, 100, 1, "f", consensus, dict.fromkeys(consensus, 73))
    with tempfile.TemporaryDirectory() as tmp:
        save_state(Path(tmp), state)
        flip = iter(range(10**9))

        def cycle() -> None:
            with edit_state(Path(tmp), action="exclude 1") as s:
                s.excluded.add(f"new/{next(flip)}.jpg")

        took = _best(cycle)
    verdict = "OK" if took <= TARGET_CYCLE_S else "MISS"
    print(f"one exclusion saved (lock, re-read, save, undo), {n:,} exclusions: {took * 1000:.0f} ms  "
          f"target <= {TARGET_CYCLE_S * 1000:.0f} ms {verdict}")


if __name__ == "__main__":
    main()
