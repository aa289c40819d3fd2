"""The generate deployment on a process work pool served by 2 workers on this machine (a real
`prefect server start`, `prefect deploy` of prefect.yaml, `prefect worker start` x2): shard runs
spread over both workers, and when one worker is killed with -9 in the middle of a shard, that
shard runs again on the other one; the dataset is complete, with no row lost or doubled, and no
shard finished before the kill is made again."""

from __future__ import annotations

import time
from pathlib import Path

import polars as pl
import pytest

from tests.prefect_server import ROOT, kill9_tree, prefect_server, shard_runs, start_worker, stop
from tests.test_scale_flow import published_rows, write_params

pytestmark = pytest.mark.slow


def _stuck(client, parent_id, logs: Path) -> str:  # type: ignore[no-untyped-def]
    """What a run that never finished was waiting on: every shard run's state and worker, and the
    tail of each worker's log."""
    lines = [f"the generate run did not finish: {client.read_flow_run(parent_id).state!r}"]
    for r in shard_runs(client):
        lines.append(f"  {r.name} shards={r.parameters.get('shards')} {r.state.type.value} "
                     f"since {r.state.timestamp} on {(r.labels or {}).get('prefect.worker.name')}: {r.state.message}")
    for log in sorted(logs.glob("w*.log")):
        lines += [f"--- {log.name}", *log.read_text(errors="replace").splitlines()[-15:]]
    return "\n".join(lines)


def test_pool_of_two_workers_survives_kill9_of_one(tmp_path: Path) -> None:
    from prefect import get_client
    from prefect.deployments import run_deployment

    from flows.deploy import deploy_all
    from synthgen.config import load_params
    from synthgen.paths import Layout

    home = tmp_path / "prefect"
    with prefect_server(home):
        deploy_all(ROOT, "synthgen", gpus=1, zombie_after_s=40)
        params_path = write_params(tmp_path / "proj", n=48, shard_size=8)
        layout = Layout.from_params(load_params(params_path))
        workers = {n: start_worker("synthgen", n, home, tmp_path / f"{n}.log") for n in ("w1", "w2")}
        try:
            parent = run_deployment("generate-dataset/generate", timeout=0, parameters={
                "params_path": str(params_path), "record": False, "analyze": False})
            victim = None
            finished_at_kill: dict[Path, int] = {}
            with get_client(sync_client=True) as client:
                deadline = time.time() + 400
                while victim is None and time.time() < deadline:
                    pw = (client.read_flow_run(parent.id).labels or {}).get("prefect.worker.name")
                    runs = shard_runs(client)
                    for run in runs:
                        w = (run.labels or {}).get("prefect.worker.name")
                        shards = run.parameters.get("shards", [])
                        cut = run.state.is_running() and not any(
                            layout.shard_file("labelled", s).exists() for s in shards)
                        others_done = any(r.state.is_completed() and (r.labels or {}).get("prefect.worker.name") == w
                                          for r in runs)
                        if w and w != pw and cut and others_done:
                            finished_at_kill = {p: p.stat().st_mtime_ns
                                                for p in layout.stage_dir("labelled").glob("shard-*.parquet")}
                            kill9_tree(workers[w])
                            victim = w
                            break
                    time.sleep(0.3)
                assert victim is not None, "never saw a worker in the middle of a shard after finishing one"
                while not (state := client.read_flow_run(parent.id).state).is_final():
                    assert time.time() < deadline + 300, _stuck(client, parent.id, tmp_path)
                    time.sleep(1)
                assert state.is_completed(), state
                runs = shard_runs(client)
        finally:
            for w in workers.values():
                stop(w)

    by_worker = {}
    for r in runs:
        by_worker.setdefault((r.labels or {}).get("prefect.worker.name"), []).append(r.state.type.value)
    # A run the victim had claimed but not yet named when it died (Pending, no worker label) is
    # crashed by the flow after 60 s (flows.scale.why_dead) and its shards re-submitted: allowed,
    # but such a run never completes (a run that ran names its worker).
    orphans = by_worker.pop(None, [])
    assert set(orphans) <= {"CRASHED"}, by_worker
    assert set(by_worker) == {"w1", "w2"}, by_worker
    assert "CRASHED" in by_worker[victim] and "COMPLETED" in by_worker[victim], by_worker
    survivor = ({"w1", "w2"} - {victim}).pop()
    assert "COMPLETED" in by_worker[survivor]
    # the dataset is complete: every planned row once
    summary_dir = layout.version_dir
    rows = published_rows(summary_dir)
    plan_ids = pl.read_parquet(layout.plan_file)["sample_id"]
    assert rows.height == 48 and rows["sample_id"].n_unique() == 48
    assert set(rows["sample_id"]) == set(plan_ids)
    # nothing finished before the kill was made again
    assert finished_at_kill and all(p.stat().st_mtime_ns == m for p, m in finished_at_kill.items())
