"""Deployments: the generate flow on a cron schedule, and (when available) the training flow
triggered by each publish. ``synthgen serve`` runs :func:`serve_all` from the project root.

For several machines, ``python -m flows.deploy`` sets up a Prefect server for prefect.yaml: the
process work pool, the global concurrency limit that gives each GPU one slot, and the
deployments; then ``prefect worker start --pool synthgen`` on each node runs them.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from flows.runtime import apply_defaults

apply_defaults()

logger = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[1]
POOL = "synthgen"


def generate_deployment(params_path: str, cron: str = "0 3 * * *") -> Any:
    from flows.generate_dataset import generate_dataset_flow

    return generate_dataset_flow.to_deployment(
        name="scheduled",
        cron=cron,
        parameters={"params_path": params_path},
        description="Regenerate, curate, publish and analyse the dataset from params.yaml.",
        tags=["synthgen"],
    )


def serve_all(params_path: str, cron: str = "0 3 * * *", with_training: bool = True) -> None:
    """Serve until interrupted (needs PREFECT_API_URL, e.g. a `prefect server start`)."""
    from prefect import serve

    deployments = [generate_deployment(params_path, cron)]
    if with_training:
        from flows.train_flow import train_deployment

        deployments.append(train_deployment())
    serve(*deployments)


def ensure_work_pool(name: str = POOL) -> None:
    """A process work pool: each worker runs flow runs as subprocesses on its own node."""
    from prefect import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists

    with get_client(sync_client=True) as client:
        try:
            client.create_work_pool(WorkPoolCreate(name=name, type="process"))
        except ObjectAlreadyExists:
            pass


def ensure_gpu_limit(slots: int, name: str | None = None) -> None:
    """The global concurrency limit GPU work holds (flows/scale.py): one slot per GPU."""
    from prefect import get_client
    from prefect.client.schemas.actions import (
        GlobalConcurrencyLimitCreate,
        GlobalConcurrencyLimitUpdate,
    )
    from prefect.exceptions import ObjectNotFound

    from flows.scale import GPU_LIMIT

    name = name or GPU_LIMIT
    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=slots))
        else:
            client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(limit=slots, active=True))


ZOMBIE_AUTOMATION = "synthgen-crash-silent-flow-runs"


def ensure_zombie_automation(within_s: float = 90.0) -> None:
    """Mark a flow run Crashed when its heartbeats stop for ``within_s`` seconds (its worker or node
    died: kill -9, power loss), so the generate flow re-submits its shards to another worker.
    Workers must send heartbeats more often than that: PREFECT_FLOWS_HEARTBEAT_FREQUENCY (>= 30 s)."""
    from datetime import timedelta

    from prefect.automations import Automation
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import EventTrigger, Posture

    try:
        old = Automation.read(name=ZOMBIE_AUTOMATION)
    except ValueError:
        old = None
    if isinstance(old, Automation):
        old.delete()
    Automation(
        name=ZOMBIE_AUTOMATION,
        trigger=EventTrigger(
            # Running too: a run killed before its first heartbeat (sent after one period) is caught.
            after={"prefect.flow-run.Running", "prefect.flow-run.heartbeat"},
            expect={"prefect.flow-run.heartbeat", "prefect.flow-run.Completed", "prefect.flow-run.Failed",
                    "prefect.flow-run.Cancelled", "prefect.flow-run.Crashed"},
            match={"prefect.resource.id": ["prefect.flow-run.*"]},
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=within_s),
        ),
        actions=[ChangeFlowRunState(state=StateType.CRASHED,
                                    message=f"no heartbeat for {within_s:.0f} s: its worker or node died")],
    ).create()


def deploy_all(project_dir: Path = ROOT, pool: str = POOL, gpus: int = 1, names: list[str] | None = None,
               zombie_after_s: float = 90.0) -> None:
    """Create the pool, the GPU limit and the dead-run automation, then apply prefect.yaml
    (``prefect deploy``) from ``project_dir``, the folder the workers will run the flows from."""
    ensure_work_pool(pool)
    ensure_gpu_limit(gpus)
    ensure_zombie_automation(zombie_after_s)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(project_dir), os.environ.get("PYTHONPATH")])))
    base = [sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--prefect-file", str(ROOT / "prefect.yaml")]
    if pool == POOL and not names:
        commands = [base + ["--all"]]  # prefect.yaml names this pool
    else:  # prefect deploy takes --pool for one deployment at a time
        import yaml

        listed = [d["name"] for d in yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]]
        commands = [base + ["--name", n, "--pool", pool] for n in (names or listed)]
    for cmd in commands:
        r = subprocess.run(cmd, cwd=project_dir, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                           check=False)
        if r.returncode != 0:
            raise RuntimeError(f"prefect deploy failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    logger.info("deployed from %s to pool %s with %d GPU slot(s)", project_dir, pool, gpus)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Set up a Prefect server for prefect.yaml: work pool, "
                                             "GPU concurrency limit, deployments.")
    ap.add_argument("--pool", default=POOL, help="process work pool name (default %(default)s)")
    ap.add_argument("--gpus", type=int, default=1, help="GPUs in the fleet: one limit slot each")
    ap.add_argument("--project-dir", type=Path, default=ROOT, help="folder the workers run flows from")
    ap.add_argument("--dead-after", type=float, default=90.0,
                    help="seconds without heartbeat before a flow run is marked crashed (default %(default)s)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    deploy_all(args.project_dir.resolve(), args.pool, args.gpus, zombie_after_s=args.dead_after)


if __name__ == "__main__":
    main()
