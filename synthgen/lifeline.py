"""Pool workers die with the process that started them.

A kill -9 of the main process gives its pool no chance to shut the workers down: they keep running
(hundreds of MB each, with models loaded) and keep writing shards for a run that is gone. Every
pool initializer calls :func:`die_with_parent`: on Linux the kernel sends the worker SIGKILL when
its parent dies (``prctl(PR_SET_PDEATHSIG)``); elsewhere, and as a second guard, a daemon thread
polls the parent pid. Shard files are written to unique temp names and renamed when complete, so a
worker killed mid-write leaves only a temp file, which the next run's cleanup removes.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time

logger = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
POLL_S = 1.0


def _prctl_pdeathsig() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def _watch(parent: int) -> None:
    while True:
        time.sleep(POLL_S)
        if os.getppid() != parent:
            os._exit(1)


_watching: list[int] = []


def watch_parent() -> None:
    """Poll-only guard (no prctl): end this process within ``POLL_S`` once its parent is gone.

    For pools whose worker-starting thread may end before the workers do (PR_SET_PDEATHSIG fires
    when the *thread* that forked the worker exits), e.g. a Prefect ``ProcessPoolTaskRunner``
    (``initializer=watch_parent``). Idempotent: one watcher per process."""
    if _watching:
        return
    parent = os.getppid()
    _watching.append(parent)
    threading.Thread(target=_watch, args=(parent,), name="synthgen-lifeline", daemon=True).start()


def watch_parent_if_worker() -> None:
    """``watch_parent`` when this process is a multiprocessing worker (a no-op in a main process)."""
    import multiprocessing

    if multiprocessing.parent_process() is not None:
        watch_parent()


def die_with_parent() -> None:
    """Make this (worker) process end when its parent ends; call it in a pool initializer."""
    parent = os.getppid()
    armed = _prctl_pdeathsig()
    # The parent may have died before prctl took effect; then we were re-parented already.
    if os.getppid() != parent:
        os._exit(1)
    watch_parent()
    logger.debug("worker %d bound to parent %d (pdeathsig=%s)", os.getpid(), parent, armed)
