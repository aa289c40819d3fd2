"""When the generate flow gives up waiting for a shard run (``flows.scale.why_dead``), on Prefect's
own flow-run and state objects: a worker killed between claiming a run (Pending) and writing its
name on it leaves a run that names no worker and never runs; the dispatcher must crash and
re-submit it, and must leave alone every run that can still report."""

from __future__ import annotations

from datetime import timedelta
from uuid import uuid4

from prefect.client.schemas.objects import FlowRun
from prefect.states import Completed, Pending, Running, Scheduled

from flows.scale import ORPHAN_PENDING_S, why_dead


def _run(state, worker: str | None = None) -> FlowRun:  # type: ignore[no-untyped-def]
    labels = {"prefect.worker.name": worker} if worker else {}
    return FlowRun(flow_id=uuid4(), state=state, labels=labels)


def test_a_pending_run_no_worker_named_is_dead_only_after_the_grace_period() -> None:
    fr = _run(Pending())
    t0 = fr.state.timestamp
    assert why_dead(fr, set(), now=t0 + timedelta(seconds=5)) is None
    reason = why_dead(fr, set(), now=t0 + timedelta(seconds=ORPHAN_PENDING_S + 1))
    assert reason is not None and "no worker" in reason


def test_runs_that_can_still_report_are_left_alone() -> None:
    late = timedelta(seconds=10 * ORPHAN_PENDING_S)
    # Pending on a live worker: its process is starting.
    fr = _run(Pending(), worker="w1")
    assert why_dead(fr, set(), now=fr.state.timestamp + late) is None
    # Scheduled: no worker has claimed it yet; any live worker still can.
    fr = _run(Scheduled())
    assert why_dead(fr, set(), now=fr.state.timestamp + late) is None
    # Running: its own heartbeats (and the automation of flows.deploy) decide.
    fr = _run(Running())
    assert why_dead(fr, set(), now=fr.state.timestamp + late) is None
    # Final runs are never touched, whatever their worker.
    assert why_dead(_run(Completed(), worker="w1"), {"w1"}) is None


def test_any_unfinished_run_of_an_offline_worker_is_dead() -> None:
    for state in (Pending(), Running()):
        reason = why_dead(_run(state, worker="w2"), {"w2"})
        assert reason == "worker w2 went offline"
    assert why_dead(_run(Running(), worker="w1"), {"w2"}) is None
