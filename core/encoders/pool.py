"""Worker processes that never outlive picksel and never hold up its exit.

Why this exists: a plain ``ProcessPoolExecutor`` hung in about half the Ctrl-C runs
(the terminal sends SIGINT to the whole process group, so workers died with
KeyboardInterrupt mid-task while holding the call queue's lock) and, after SIGKILL or
SIGTERM of picksel, left its workers (~25 MB each) waiting on a queue nobody would ever
write to again — forever, together with the forkserver they keep alive.

So each worker ignores SIGINT (Ctrl-C is the parent's to handle), and exits as soon as
the process that started it is gone: the parent sentinel multiprocessing gives every
spawn/forkserver child (readable when the parent dies, however it dies) is watched by a
daemon thread, with a ``getppid`` check as a fallback for the fork start method, and on
Linux ``PR_SET_PDEATHSIG`` also kills the worker when its direct parent (the forkserver)
dies. On an interrupt the parent does not wait for running tasks:
:func:`terminate_pool` cancels what is queued and kills the workers.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
import threading
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout
from multiprocessing.connection import wait
from typing import TypeVar

from picksel.errors import CancelFn, Cancelled

WATCH_INTERVAL = 0.5
"""Seconds between parent checks when there is no sentinel to block on."""
KILL_GRACE = 1.0
"""Seconds a worker gets to exit after SIGTERM before it is killed outright."""

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Linux: have the kernel send SIGKILL when the parent (the forkserver) exits."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)


def _watch_parent(ppid: int) -> None:
    parent = multiprocessing.parent_process()
    sentinel = getattr(parent, "sentinel", None)
    while True:
        if sentinel is not None:
            try:
                if wait([sentinel], timeout=WATCH_INTERVAL):
                    os._exit(1)  # parent gone: nothing will ever read our results
            except OSError:
                sentinel = None
        else:
            threading.Event().wait(WATCH_INTERVAL)
        if os.getppid() != ppid:
            os._exit(1)


def _worker_init() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    ppid = os.getppid()
    _die_with_parent()
    if os.getppid() != ppid:  # the parent died before prctl took effect
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(ppid,), name="picksel-watch-parent", daemon=True).start()


def _start_resource_tracker() -> None:
    """Start multiprocessing's resource tracker with a real stderr descriptor.

    It hands ``sys.stderr.fileno()`` to the helper process it spawns; under the TUI,
    Textual's stderr capture answers -1, the spawn failed with ValueError and the TUI
    silently indexed on one core. The tracker then gets /dev/null: its only output is
    shutdown warnings, which must not land on the TUI's screen either."""
    try:
        if sys.stderr is not None and sys.stderr.fileno() >= 0:
            return
    except (AttributeError, OSError, ValueError):
        pass
    from multiprocessing import resource_tracker

    saved = sys.stderr
    with open(os.devnull, "w") as null:
        sys.stderr = null
        try:
            resource_tracker.ensure_running()
        finally:
            sys.stderr = saved


def make_pool(workers: int, preload: list[str]) -> Executor | None:
    """``workers`` processes, started via forkserver (``preload`` imported once in the
    server): forking a multi-threaded process (the TUI) is unsafe, and spawn would
    import numpy and Pillow again per worker. None when processes are unavailable."""
    methods = multiprocessing.get_all_start_methods()
    method = "forkserver" if "forkserver" in methods else "spawn"
    try:
        ctx = multiprocessing.get_context(method)
        if method == "forkserver":
            ctx.set_forkserver_preload(preload)
        _start_resource_tracker()
        return ProcessPoolExecutor(workers, mp_context=ctx, initializer=_worker_init)
    except (OSError, ValueError, NotImplementedError):  # pragma: no cover - sandboxed hosts
        return None


T = TypeVar("T")

CANCEL_POLL = 0.1
"""Seconds between cancel checks while waiting for the workers."""


def wait_result(fut: Future[T], cancel: CancelFn | None) -> T:
    """``fut``'s result, checking ``cancel`` every :data:`CANCEL_POLL` s meanwhile (Ctrl-C
    in the curator must not wait for a whole batch of decodes)."""
    while True:
        try:
            return fut.result(timeout=None if cancel is None else CANCEL_POLL)
        except FuturesTimeout:
            if cancel is not None and cancel():
                raise Cancelled() from None


def terminate_pool(pool: Executor) -> None:
    """Stop ``pool`` now: drop queued tasks and kill the workers instead of waiting for
    their current task (an interrupted run must exit within a second or two)."""
    # shutdown() forgets both, so take them first (private attributes: without them
    # the workers still die with their parent, just not as promptly).
    processes = list((getattr(pool, "_processes", None) or {}).values())
    manager = getattr(pool, "_executor_manager_thread", None)
    with contextlib.suppress(Exception):
        pool.shutdown(wait=False, cancel_futures=True)
    for p in processes:
        with contextlib.suppress(Exception):
            p.terminate()
    for p in processes:
        with contextlib.suppress(Exception):
            p.join(KILL_GRACE)
            if p.is_alive():
                p.kill()
                p.join(KILL_GRACE)
    # The manager thread notices the dead workers and finishes; join it so interpreter
    # exit does not wait on it.
    if isinstance(manager, threading.Thread) and manager is not threading.current_thread():
        manager.join(KILL_GRACE)
