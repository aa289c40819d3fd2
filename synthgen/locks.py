"""One writer at a time per dataset and stage folder.

Two runs writing the same stage folder mix shards (two param sets under one marker) or delete each
other's files. Each stage takes an OS file lock (``filelock``: ``flock`` on POSIX) on
``work/<name>/.lock-<stage>`` for itself and every stage it reads, always in pipeline order, so
locks never deadlock. The kernel drops a ``flock`` when its process dies, so a kill -9 never
leaves a lock that blocks the next run: there is nothing stale to recover.

A second run waits up to ``SYNTHGEN_LOCK_WAIT`` seconds (default 30), then fails with one line
naming the holder (pid, host, start time, command), read from ``.lock-<stage>.holder.json``.
The holder file is written after the lock is taken and is only advice for that message.

Locks are re-entrant within a process, and in child processes of the holder (the lock paths and
the holder's token travel in ``SYNTHGEN_LOCKS_HELD``), so a stage function called by a run that
already holds the lock (a flow task, a pool worker) does not wait for its own parent.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from synthgen.errors import SynthgenError
from synthgen.io import pid_alive, write_json_atomic

logger = logging.getLogger(__name__)

# Stages in pipeline order: locks are always taken in this order.
LOCK_ORDER = ("plan", "generated", "labelled", "curated", "publish")
ENV_HELD = "SYNTHGEN_LOCKS_HELD"
ENV_WAIT = "SYNTHGEN_LOCK_WAIT"
DEFAULT_WAIT_S = 30.0

_held: dict[str, tuple[FileLock, int]] = {}
_token = uuid.uuid4().hex


class LockBusyError(SynthgenError):
    """Another live run holds the lock of a stage folder this run needs."""


def lock_path(work_dir: Path, stage: str) -> Path:
    return Path(work_dir) / f".lock-{stage}"


def _holder_path(lock: Path) -> Path:
    return lock.with_name(lock.name + ".holder.json")


def _inherited() -> dict[str, dict[str, Any]]:
    try:
        data = json.loads(os.environ.get(ENV_HELD, "{}"))
        return data if isinstance(data, dict) else {}
    except ValueError:
        return {}


def _held_by_ancestor(lock: Path) -> bool:
    """True when a live parent run took this lock and handed it down through the environment."""
    info = _inherited().get(str(lock))
    if not info:
        return False
    try:
        holder = json.loads(_holder_path(lock).read_text())
    except (OSError, ValueError):
        return False
    return holder.get("token") == info.get("token") and pid_alive(int(holder.get("pid", -1)))


def describe_holder(lock: Path) -> str:
    try:
        h = json.loads(_holder_path(lock).read_text())
    except (OSError, ValueError):
        return "another process (no holder information)"
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(float(h.get("started", 0))))
    return f"pid {h.get('pid')} on {h.get('host')}, started {started}: {h.get('command')}"


def wait_seconds(timeout: float | None) -> float:
    if timeout is not None:
        return timeout
    try:
        return float(os.environ.get(ENV_WAIT, DEFAULT_WAIT_S))
    except ValueError:
        return DEFAULT_WAIT_S


def _acquire(lock: Path, timeout: float) -> None:
    key = str(lock)
    if key in _held:
        fl, n = _held[key]
        _held[key] = (fl, n + 1)
        return
    lock.parent.mkdir(parents=True, exist_ok=True)
    fl = FileLock(str(lock), timeout=timeout, thread_local=False)
    try:
        fl.acquire(timeout=timeout, poll_interval=0.2)
    except Timeout:
        raise LockBusyError(
            f"another run holds the {lock.name[len('.lock-'):]} lock: {describe_holder(lock)}",
            where=str(lock.parent),
            fix=f"wait for that run to finish (waited {timeout:g} s; set {ENV_WAIT} to wait longer)",
        ) from None
    _held[key] = (fl, 1)
    try:
        write_json_atomic(_holder_path(lock), {
            "pid": os.getpid(), "host": socket.gethostname(), "started": time.time(),
            "command": " ".join(sys.argv) or sys.executable, "token": _token,
        })
    except (OSError, SynthgenError) as err:  # advice only (e.g. a full disk): the lock itself holds
        logger.warning("could not record the holder of %s: %s", lock, err)
    inherited = _inherited()
    inherited[key] = {"token": _token}
    os.environ[ENV_HELD] = json.dumps(inherited)


def _release(lock: Path) -> None:
    key = str(lock)
    fl, n = _held[key]
    if n > 1:
        _held[key] = (fl, n - 1)
        return
    del _held[key]
    _holder_path(lock).unlink(missing_ok=True)
    inherited = _inherited()
    inherited.pop(key, None)
    if inherited:
        os.environ[ENV_HELD] = json.dumps(inherited)
    else:
        os.environ.pop(ENV_HELD, None)
    fl.release()


def stages_up_to(stage: str) -> list[str]:
    """``stage`` and every stage before it: what a run of ``stage`` writes or reads."""
    return list(LOCK_ORDER[: LOCK_ORDER.index(stage) + 1])


@contextlib.contextmanager
def stage_locks(work_dir: Path, stages: Sequence[str], timeout: float | None = None) -> Iterator[None]:
    """Hold the locks of ``stages`` (taken in pipeline order) for the block."""
    wait = wait_seconds(timeout)
    ordered = sorted(set(stages), key=LOCK_ORDER.index)
    taken: list[Path] = []
    try:
        for stage in ordered:
            lock = lock_path(work_dir, stage)
            if str(lock) not in _held and _held_by_ancestor(lock):
                continue
            _acquire(lock, wait)
            taken.append(lock)
        yield
    finally:
        for lock in reversed(taken):
            _release(lock)


def holds(work_dir: Path, stage: str) -> bool:
    """Whether this process (or a parent run that handed it down) holds ``stage``'s lock."""
    lock = lock_path(work_dir, stage)
    return str(lock) in _held or _held_by_ancestor(lock)
