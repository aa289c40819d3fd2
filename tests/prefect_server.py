"""A real Prefect server (`prefect server start`) on a free 127.0.0.1 port, and worker processes."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from tests.s3server import free_port

ROOT = Path(__file__).parents[1]


def prefect_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "prefect", *args]


def wait_healthy(api_url: str, proc: subprocess.Popen[bytes], timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"prefect server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(api_url + "/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError("prefect server did not become healthy")


def start_server(home: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               PREFECT_UI_ENABLED="false", PREFECT_SERVER_SERVICES_FOREMAN_LOOP_SECONDS="5")
    env.pop("PREFECT_API_URL", None)
    return subprocess.Popen(prefect_cmd("server", "start", "--host", "127.0.0.1", "--port", str(port)),
                            env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)


@contextlib.contextmanager
def prefect_server(home: Path) -> Iterator[str]:
    """Start a server with its own PREFECT_HOME (database included) and point this process at it."""
    # Import Prefect before PREFECT_API_URL is set: it reads the environment once, at import, into
    # its root settings, which would keep pointing at this server after it is gone.
    from prefect.settings import PREFECT_API_URL, temporary_settings

    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    proc = start_server(home, port, home / "server.log")
    saved = os.environ.get("PREFECT_API_URL")
    try:
        wait_healthy(api_url, proc)
        os.environ["PREFECT_API_URL"] = api_url  # for subprocesses
        # ... and an already-imported Prefect needs the URL set in its settings too.
        with temporary_settings(updates={PREFECT_API_URL: api_url}):
            yield api_url
    finally:
        stop(proc)
        if saved is None:
            os.environ.pop("PREFECT_API_URL", None)
        else:
            os.environ["PREFECT_API_URL"] = saved


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    """Stop a process started with start_new_session=True, with everything it started (flow runs
    start their own sessions, so they are found through /proc)."""
    if proc.poll() is None:
        others = descendants(proc.pid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        for pid in others:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def descendants(pid: int) -> list[int]:
    """Every process started (directly or not) by ``pid`` (flow runs start their own sessions)."""
    from integrity_support import descendants as tree

    return sorted(tree(pid))


def kill9_tree(proc: subprocess.Popen[bytes]) -> None:
    """kill -9 a worker and every process it started, as when its node dies."""
    for pid in [proc.pid, *descendants(proc.pid)]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    proc.wait(timeout=30)


def start_worker(pool: str, name: str, home: Path, log: Path, limit: int = 2) -> subprocess.Popen[bytes]:
    """``prefect worker start`` polling every second; flow runs send a heartbeat every 30 s (the least)."""
    env = dict(os.environ, PREFECT_WORKER_QUERY_SECONDS="1", PREFECT_WORKER_PREFETCH_SECONDS="1",
               PREFECT_WORKER_HEARTBEAT_SECONDS="5",  # offline 3 heartbeats after a kill
               PREFECT_FLOWS_HEARTBEAT_FREQUENCY="30", PREFECT_HOME=str(home),
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    return subprocess.Popen(prefect_cmd("worker", "start", "--pool", pool, "--name", name, "--limit", str(limit)),
                            env=env, cwd=ROOT, stdout=log.open("ab"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def shard_runs(client) -> list:  # type: ignore[no-untyped-def]
    """Every shard flow run the generate flow has submitted (``flows.scale.SHARD_RUN_TAG``)."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags

    from flows.scale import SHARD_RUN_TAG

    return client.read_flow_runs(flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[SHARD_RUN_TAG])))
