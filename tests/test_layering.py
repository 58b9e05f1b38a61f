"""The engine stays importable without Textual: the CLI and scripts must stay light."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import picksel

CORE = Path(picksel.__file__).parent


def _core_modules() -> list[str]:
    found = pkgutil.walk_packages(picksel.__path__, "picksel.")
    return sorted(m.name for m in found if not m.name.startswith("picksel.tui"))


def test_core_sources_never_import_textual() -> None:
    offenders = []
    for path in CORE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in ("textual", "textual_image")]
    assert offenders == []


def test_importing_every_core_module_loads_no_textual() -> None:
    modules = _core_modules()
    assert "picksel.cli" in modules
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}:\n"
        "    try:\n        importlib.import_module(m)\n"
        "    except ImportError as e:\n        if 'textual' in str(e): raise\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('textual', 'textual_image')]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
