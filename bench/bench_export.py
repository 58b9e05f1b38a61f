"""Export naming with many clashes: 3,000 images, two file names shared 1,500 times each.

Target: planning the names takes <= 5 s (it took 33 s when each clash walked past every
number its predecessors took). Only the plan is timed (no copying); the files are tiny.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

TARGET_S = 5.0


def main(quick: bool = False) -> None:
    from picksel.export import plan_export

    n = 600 if quick else 3000
    with tempfile.TemporaryDirectory() as tmp:
        album = Path(tmp) / "album"
        rels = [f"f{i:05d}/p/{'a' if i % 2 else 'b'}.png" for i in range(n)]
        for i, rel in enumerate(rels):
            path = album / rel
            path.parent.mkdir(parents=True)
            path.write_bytes(str(i).encode())
        t0 = time.perf_counter()
        items = plan_export(album, rels, Path(tmp) / "dest")
        took = time.perf_counter() - t0
    assert len({it.dest_name for it in items}) == n
    verdict = "OK" if took <= TARGET_S else "MISS"
    print(f"export naming N={n} ({n // 2}-way clashes): {took:.2f} s  target <= {TARGET_S} s {verdict}")


if __name__ == "__main__":
    main()
