"""Where shard tasks run and what they may hold: task runners, GPU slots, shard-run dispatch.

Three ways to spread shards, all through Prefect's own machinery (no scheduler of ours):

* a task runner for the shard subflow: a process pool on this machine (default), or Dask through
  prefect-dask (``dask_address`` of a running scheduler, or a ``LocalCluster`` of N workers);
* a deployment of the shard flow (``generate-shards/shards`` in prefect.yaml): the generate flow
  creates one flow run per group of shards, and the workers of the work pool pick them up;
* either way GPU work takes a slot of the global concurrency limit ``synthgen-gpu`` (one slot per
  GPU, created by ``python -m flows.deploy``), so two flows never oversubscribe a card.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timezone
from typing import Any
from uuid import UUID

logger = logging.getLogger(__name__)

GPU_LIMIT = "synthgen-gpu"
SHARD_DEPLOYMENT = "generate-shards/shards"
# The tag every shard run carries: what a caller filters on to find them.
SHARD_RUN_TAG = "synthgen-shards"
# A Dask scheduler to use when none is passed (e.g. tcp://scheduler:8786).
DASK_ADDRESS_ENV = "SYNTHGEN_DASK_ADDRESS"


def task_runner(runner: str = "process", workers: int = 0, dask_address: str | None = None) -> Any:
    """The task runner for shard tasks: ``process`` (a local pool), ``thread`` or ``dask`` (a scheduler address,
    else a LocalCluster of ``workers`` single-threaded worker processes). The shard code is the same."""
    from synthgen.errors import ConfigError
    from synthgen.shards import default_workers

    address = dask_address or os.environ.get(DASK_ADDRESS_ENV) or None
    if runner == "dask" or address:
        try:
            from prefect_dask import DaskTaskRunner
        except ImportError:
            raise ConfigError("the dask runner needs prefect-dask", where="--runner dask",
                              fix="pip install 'synthgen[scale]'") from None
        if address:
            return DaskTaskRunner(address=address)
        return DaskTaskRunner(
            cluster_class="distributed.LocalCluster",
            # Shard work is CPU-bound Python: one thread per worker process, no nanny memory kill.
            cluster_kwargs={"n_workers": default_workers(workers), "threads_per_worker": 1,
                            "processes": True, "dashboard_address": None},
        )
    if runner == "thread":  # in this process: for debugging, and for backends registered at run time
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner(max_workers=default_workers(workers))
    if runner != "process":
        raise ConfigError(f"unknown task runner {runner!r}", where="--runner", fix="use process, thread or dask")
    from prefect.task_runners import ProcessPoolTaskRunner

    return ProcessPoolTaskRunner(max_workers=default_workers(workers))


@contextlib.contextmanager
def gpu_slot(slots: int, limit: str = GPU_LIMIT) -> Iterator[None]:
    """Hold ``slots`` of the global GPU limit while the body runs (nothing when ``slots`` is 0).

    Without the limit on the server (a one-off local run that never ran the deploy step) the body
    runs unguarded, with a warning."""
    if slots <= 0:
        yield
        return
    from prefect.concurrency.sync import concurrency

    try:
        with concurrency(limit, occupy=slots, strict=True):
            yield
    except Exception as err:
        if type(err).__name__ != "ConcurrencySlotAcquisitionError":
            raise
        logger.warning("no global concurrency limit %r (run `python -m flows.deploy`): GPU work unguarded", limit)
        yield


def ran_on() -> str:
    """Where this code runs: the Prefect worker (when a worker started the flow run), host and pid."""
    import socket

    worker = os.environ.get("PREFECT__WORKER_NAME")
    return f"{worker + '@' if worker else ''}{socket.gethostname()}:{os.getpid()}"


def groups(shards: Sequence[int], size: int) -> list[list[int]]:
    size = max(1, size)
    return [list(shards[i:i + size]) for i in range(0, len(shards), size)]


_FAILURE_LINE = re.compile(r"shard (\d+): (.*)")


def failures_from_message(message: str, shards: list[int]) -> dict[int, str]:
    """Per-shard errors from a failed shard run's state message (the shard flow's one line per
    failed shard, ``shard NNNNN: error``); other shards get the message's first line."""
    found = {int(m.group(1)): m.group(2).strip() for m in _FAILURE_LINE.finditer(message or "")}
    first = (message or "shard run failed").strip().splitlines()[0]
    return {s: found.get(s, first) for s in shards}


def offline_workers(client: Any, pools: set[str | None]) -> set[str]:
    """Names of the workers of ``pools`` that the server's foreman has marked offline."""
    names: set[str] = set()
    for pool in filter(None, pools):
        names.update(w.name for w in client.read_workers_for_work_pool(pool)
                     if str(getattr(w.status, "value", w.status)).upper() == "OFFLINE")
    return names


# A run stays Pending for the moment between a worker claiming it and giving it its name label;
# a worker killed inside that moment leaves it Pending with no worker to report it, for ever.
ORPHAN_PENDING_S = 60.0


def why_dead(fr: Any, offline: set[str], now: datetime | None = None,
             orphan_after_s: float = ORPHAN_PENDING_S) -> str | None:
    """Why the shard run ``fr`` (a non-final FlowRun) will never report again, or None while it may.

    Two cases reach no heartbeat-based rule: its worker went offline (the foreman's verdict),
    including a run still Pending on it; or it was claimed (Pending) by a worker that died before it
    wrote its name on the run, so the run names no worker and has never run to send a heartbeat."""
    if fr.state is None or fr.state.is_final():
        return None
    worker = (fr.labels or {}).get("prefect.worker.name")
    if worker in offline:
        return f"worker {worker} went offline"
    if worker is None and fr.state.is_pending():
        age = ((now or datetime.now(timezone.utc)) - fr.state.timestamp).total_seconds()
        if age > orphan_after_s:
            return f"pending for {age:.0f} s with no worker: the worker that claimed it died"
    return None


def run_shard_deployments(
    deployment: str, shard_groups: list[list[int]], parameters: dict[str, Any],
    done: Callable[[int], bool], retries: int = 2, poll_s: float = 1.0,
    orphan_after_s: float = ORPHAN_PENDING_S,
) -> dict[str, Any]:
    """One flow run of ``deployment`` per shard group; wait until all are final.

    A run that crashed is re-submitted, up to ``retries`` times, for its shards that are not
    ``done``. A run crashes when its worker dies: the worker goes offline (no worker heartbeat;
    this function then marks its unfinished runs Crashed, Pending ones included, see ``why_dead``)
    or the run's own heartbeats stop (the automation of ``flows.deploy``). So a shard
    finished before the crash is never redone, and one cut off mid-way runs again on whichever
    worker is free. Returns ``{"failed": {shard: error}, "ran_on": {shard: worker}}``."""
    from prefect import get_client
    from prefect.client.schemas.objects import FlowRun
    from prefect.deployments import run_deployment
    from prefect.states import Crashed

    def submit(group: list[int], attempt: int) -> None:
        fr = run_deployment(deployment, parameters={**parameters, "shards": group}, timeout=0,
                            tags=[SHARD_RUN_TAG])
        assert isinstance(fr, FlowRun)  # the sync call (no running event loop here)
        runs[fr.id] = (group, attempt)

    runs: dict[UUID, tuple[list[int], int]] = {}
    for group in shard_groups:
        submit(group, 0)
    failed: dict[int, str] = {}
    where: dict[int, str] = {}
    pending: set[UUID] = set(runs)
    with get_client(sync_client=True) as client:
        while pending:
            current = {r: client.read_flow_run(r) for r in pending}
            offline = offline_workers(client, {fr.work_pool_name for fr in current.values()})
            for run_id, fr in current.items():
                if (dead := why_dead(fr, offline, orphan_after_s=orphan_after_s)) is not None:
                    client.set_flow_run_state(run_id, Crashed(message=dead), force=True)
                    fr = client.read_flow_run(run_id)
                if fr.state is None or not fr.state.is_final():
                    continue
                pending.discard(run_id)
                group, attempt = runs[run_id]
                worker = str((fr.labels or {}).get("prefect.worker.name", "?"))
                left = [s for s in group if not done(s)]
                for s in group:
                    if s not in left:
                        where.setdefault(s, worker)
                if fr.state.is_completed() or not left:
                    continue
                message = f"{fr.state.type.value}: {fr.state.message or fr.name}"
                if attempt < retries and not fr.state.is_failed():
                    logger.warning("shard run %s (shards %s) ended %s; re-submitting %s", fr.name, group,
                                   message, left)
                    submit(left, attempt + 1)
                    pending.add(next(reversed(runs)))
                else:
                    failed.update(failures_from_message(message, left))
            if pending:
                time.sleep(poll_s)
    return {"failed": failed, "ran_on": where}
