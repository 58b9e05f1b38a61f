"""Run every ``bench/bench_*.py`` (or the ones named): ``python -m bench [NAME...] [--quick]``.

Benchmarks in ``ON_REQUEST`` (``large``: one million images, minutes and gigabytes) run
only when named: ``python -m bench large`` (``make bench-large``)."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import time
import traceback
from pathlib import Path

ON_REQUEST = frozenset({"large"})


def discover() -> list[str]:
    """The benchmarks ``python -m bench`` runs by default (every module but ON_REQUEST)."""
    here = Path(__file__).parent
    names = (m.name[len("bench_") :] for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_"))
    return sorted(n for n in names if n not in ON_REQUEST)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "names",
        nargs="*",
        help=f"benchmarks to run (default: {', '.join(discover())}; on request: {', '.join(sorted(ON_REQUEST))})",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke test of the benchmarks")
    args = parser.parse_args(argv)
    names = args.names or discover()
    if args.quick:
        print(
            "--quick: small sizes to check that every benchmark runs; the targets are set for the\n"
            "full sizes, so OK/MISS below says nothing about them (run `make bench` for the figures).\n",
            flush=True,
        )
    failed = []
    for name in names:
        print(f"== bench {name} ==", flush=True)
        start = time.perf_counter()
        try:
            importlib.import_module(f"bench.bench_{name}").main(quick=args.quick)
        except Exception:
            traceback.print_exc()
            failed.append(name)
        print(f"   ({name}: {time.perf_counter() - start:.1f} s)\n", flush=True)
    if failed:
        print(f"benchmarks that failed to run: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
