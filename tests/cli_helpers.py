"""Running the CLI in-process for tests, with its output captured."""

from __future__ import annotations

import pytest

from picksel.cli import run


def picksel(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``picksel ARGV...`` run in this process."""
    code = run([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err
