"""``python -m picksel`` and the ``picksel`` console script."""

from __future__ import annotations

import signal
import sys
from types import FrameType


def _terminate(signum: int, frame: FrameType | None) -> None:
    from picksel.errors import Terminated

    raise Terminated()


def main(argv: list[str] | None = None) -> int:
    """The process entry point: SIGTERM (``kill``, a service manager, a closing tmux
    pane) unwinds like Ctrl-C instead of killing picksel mid-write."""
    signal.signal(signal.SIGTERM, _terminate)
    from picksel.cli import run

    return run(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
