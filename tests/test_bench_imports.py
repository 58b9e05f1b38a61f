"""Benchmarks import picksel inside their functions (so one broken bench does not stop the
others); nothing runs them in ``make test``, so a renamed function broke ``make bench``
unnoticed (bench_index imported ``_make_pool`` for a session after it moved). Every
``from picksel... import name`` in bench/ must resolve."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


def _imports() -> list[tuple[str, str, str]]:
    out = []
    for path in sorted(BENCH.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("picksel"):
                out += [(path.name, node.module, alias.name) for alias in node.names]
    return out


@pytest.mark.parametrize(("bench", "module", "name"), _imports())
def test_bench_imports_resolve(bench: str, module: str, name: str) -> None:
    mod = importlib.import_module(module)
    if not hasattr(mod, name):
        importlib.import_module(f"{module}.{name}")  # a submodule
