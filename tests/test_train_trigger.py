"""End to end against a real local Prefect server: a published-dataset event starts training.

Starts ``prefect server start`` and ``python -m flows.train_flow`` (which serves the deployment
with its event trigger) as subprocesses, emits ``synthgen.dataset.published`` for a tiny dataset
on disk, and waits for the triggered flow run to complete and write metrics.json.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from synthgen.train.toydata import write_toy_dataset

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    fh = open(log, "wb")
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=fh, stderr=subprocess.STDOUT,
                            start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    """Stop a process we started and everything it started (its own session), politely first."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


def _wait(what: str, check, timeout: float, logs: list[Path], interval: float = 1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    tails = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in logs if p.exists())
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{tails}")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, dict[str, str], list[Path], list[subprocess.Popen]]]:
    env = dict(os.environ)
    env.pop("PREFECT_API_URL", None)
    env.update({"PREFECT_HOME": str(tmp_path / "prefect-home"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                "PREFECT_UI_ENABLED": "false", "HF_HUB_OFFLINE": "1"})
    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    logs = [tmp_path / "server.log"]
    procs = [_start([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                     "--port", str(port)], env, logs[0])]
    try:
        def healthy() -> bool:
            if procs[0].poll() is not None:
                pytest.fail("prefect server exited:\n" + logs[0].read_text()[-3000:])
            try:
                return httpx.get(f"{url}/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        t0 = time.monotonic()
        _wait("the Prefect server's /api/health", healthy, 120, logs)
        print(f"server healthy: {time.monotonic() - t0:.1f} s")
        env["PREFECT_API_URL"] = url
        yield url, env, logs, procs
    finally:
        for p in reversed(procs):
            _stop(p)


def test_publish_event_triggers_training(server, tmp_path: Path) -> None:
    url, env, logs, procs = server
    project = tmp_path / "project"
    version = "vtrig"
    version_dir = project / "data" / "datasets" / "toy" / f"version={version}"
    write_toy_dataset(version_dir, n={"train": 16, "val": 4}, size=48, seed=5, row_group_size=8)
    params = {
        "data_dir": "data",
        "dataset": {"name": "toy"},
        "train": {"backbone": "resnet10t", "image_size": 32, "epochs": 1, "batch_size": 8, "workers": 0,
                  "threads": 1, "eval_splits": ["val"], "ood": None, "balance": []},
    }
    (project / "params.yaml").write_text(yaml.safe_dump(params))

    logs.append(tmp_path / "serve.log")
    procs.append(_start([sys.executable, "-m", "flows.train_flow"], env, logs[-1]))

    def deployment_and_trigger_ready() -> str | None:
        if procs[-1].poll() is not None:
            pytest.fail("serving the deployment failed:\n" + logs[-1].read_text()[-3000:])
        r = httpx.get(f"{url}/deployments/name/train-on-dataset/train-on-publish", timeout=5)
        if r.status_code != 200:
            return None
        dep_id = r.json()["id"]
        autos = httpx.post(f"{url}/automations/filter", json={}, timeout=5).json()
        linked = [a for a in autos if any(act.get("deployment_id") == dep_id for act in a["actions"])]
        return dep_id if linked else None

    t0 = time.monotonic()
    dep_id = _wait("the deployment and its trigger", deployment_and_trigger_ready, 120, logs)
    print(f"deployment served: {time.monotonic() - t0:.1f} s")
    time.sleep(2)  # the triggers service picks up new automations on its next refresh

    payload = {"name": "toy", "version": version, "path": str(version_dir),
               "params_path": str(project / "params.yaml"), "project_dir": str(project)}
    emit = (
        "from prefect.events import emit_event\n"
        "import json, sys\n"
        "emit_event(event='synthgen.dataset.published', resource={'prefect.resource.id': 'synthgen.dataset.toy'},"
        " payload=json.loads(sys.argv[1]))\n"
    )
    subprocess.run([sys.executable, "-c", emit, json.dumps(payload)], env=env, check=True, timeout=60)

    def run_state() -> dict | None:
        runs = httpx.post(f"{url}/flow_runs/filter",
                          json={"deployments": {"id": {"any_": [dep_id]}}}, timeout=5).json()
        if not runs:
            return None
        state = runs[0]["state"]["type"]
        if state in ("FAILED", "CRASHED", "CANCELLED"):
            pytest.fail(f"triggered run ended {state}:\n" + logs[-1].read_text()[-4000:])
        return runs[0] if state == "COMPLETED" else None

    t0 = time.monotonic()
    run = _wait("the triggered training run to complete", run_state, 300, logs, interval=2)
    print(f"event -> completed run: {time.monotonic() - t0:.1f} s")
    assert run["parameters"]["version"] == version
    assert run["parameters"]["project_dir"] == str(project)
    metrics = project / "data" / "models" / "toy" / version / "metrics.json"
    assert metrics.is_file()
    m = json.loads(metrics.read_text())
    assert m["val.n"] == 4 and "val.gaze.angular_error_deg" in m
