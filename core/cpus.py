"""How many CPUs this process may run on: the encoder's worker count and K-Means's
parallel iterations both size themselves by it."""

from __future__ import annotations

import os


def usable_cpus() -> int:
    """CPUs in this process's affinity mask (a container or ``taskset`` may allow fewer
    than the machine has), else the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1
