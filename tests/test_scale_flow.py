"""Shard tasks on a Dask cluster (prefect-dask, a LocalCluster of 2 worker processes), GPU work
under a Prefect global concurrency limit, and a shard that fails for good: the rest publishes and
the failure is written into the manifest and the card. All on a real local Prefect server."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
import yaml

from tests.prefect_server import ROOT, prefect_server, shard_runs

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with prefect_server(tmp_path_factory.mktemp("prefect")) as url:
        yield url


def write_params(folder: Path, n: int, shard_size: int) -> Path:
    """Tiny params with a light labeller set (the flow mechanics, not the labellers, are tested)."""
    folder.mkdir(parents=True, exist_ok=True)
    p = yaml.safe_load((ROOT / "params.yaml").read_text())
    p["data_dir"] = str(folder / "data")
    p["plan"].update(n=n, shard_size=shard_size, identities=max(3, n // 4))
    p["generate"].update(width=96, height=96, workers=1)
    p["label"].update(labelers=["mediapipe_detector"], workers=1)
    p["curate"].update(filters=["label_error", "face_count"])
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(p, sort_keys=False))
    return path


def published_rows(version_dir: Path) -> pl.DataFrame:
    return pl.read_parquet(str(version_dir / "**" / "*.parquet"), hive_partitioning=True,
                           columns=["sample_id", "split"])


def test_dask_local_cluster_runs_shards_on_two_worker_processes(api: str, tmp_path: Path) -> None:
    pytest.importorskip("prefect_dask")
    from flows.generate_dataset import generate_dataset

    params = write_params(tmp_path, n=12, shard_size=3)
    summary = generate_dataset(str(params), record=False, analyze=False, runner="dask", workers=2)
    assert summary["failed_shards"] == {}
    where = summary["ran_on"]
    assert sorted(where) == [0, 1, 2, 3]
    assert len(set(where.values())) == 2, where  # two Dask worker processes shared the shards
    assert os.getpid() not in {int(w.rsplit(":", 1)[1]) for w in where.values()}
    rows = published_rows(Path(summary["path"]))
    assert rows.height == 12 and rows["sample_id"].n_unique() == 12


def test_permanent_shard_failure_publishes_the_rest_and_records_it(api: str, tmp_path: Path) -> None:
    """A generated shard that is corrupt on disk fails its label task on every retry: that shard
    is left out, named with its error in the manifest and card; the other shards publish, and the
    run ends with an error, not a success."""
    from flows.generate_dataset import generate_dataset
    from synthgen.config import load_params
    from synthgen.generate.stage import prepare_generate
    from synthgen.paths import Layout
    from synthgen.stages import run_plan

    path = write_params(tmp_path, n=9, shard_size=3)
    params = load_params(path)
    run_plan(params)
    prepare_generate(params)
    bad = Layout.from_params(params).shard_file("generated", 1)
    bad.write_bytes(b"not parquet")  # e.g. a disk error: the label task fails on every retry

    from synthgen.errors import DataError

    with pytest.raises(DataError, match="without 1 failed shard") as err:  # never a silent success
        generate_dataset(str(path), record=False, analyze=False, runner="thread", workers=2)
    assert "shard 00001: DataError" in str(err.value)
    version_dir = Layout.from_params(params).version_dir
    manifest = json.loads((version_dir / "_manifest.json").read_text())
    assert manifest["rows"] == 6 and list(manifest["failed_shards"]) == ["00001"]
    assert "not a readable Parquet file" in manifest["failed_shards"]["00001"]
    card = (version_dir / "README.md").read_text()
    assert "1 shard(s) failed" in card and "| 00001 |" in card
    rows = published_rows(version_dir)
    assert rows.height == 6 and rows["sample_id"].n_unique() == 6
    lost = set(pl.read_parquet(Layout.from_params(params).plan_file).filter(
        pl.col("sample_id").is_in(rows["sample_id"].to_list()).not_())["sample_id"].to_list())
    assert len(lost) == 3  # exactly the failed shard's rows are missing


def test_gpu_limit_of_one_slot_serialises_two_flows(api: str, tmp_path: Path) -> None:
    """Two flow runs (separate processes) each run two GPU tasks at once; with one slot in the
    global limit, no two GPU intervals overlap. The GPU work itself is a sleep (no GPU here)."""
    from flows.deploy import ensure_gpu_limit

    ensure_gpu_limit(1)
    log = tmp_path / "intervals.txt"
    script = textwrap.dedent(f"""
        import sys, time
        from prefect import flow, task
        from flows.scale import gpu_slot

        @task
        def gpu_work(tag: str) -> None:
            with gpu_slot(1):
                t0 = time.time(); time.sleep(1.0); t1 = time.time()
            with open({str(log)!r}, "a") as fh:
                fh.write(f"{{tag}} {{t0}} {{t1}}\\n")

        @flow
        def two_gpu_tasks(name: str) -> None:
            for f in [gpu_work.submit(name + "-a"), gpu_work.submit(name + "-b")]:
                f.result()

        two_gpu_tasks(sys.argv[1])
    """)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    procs = [subprocess.Popen([sys.executable, "-c", script, name], env=env, cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for name in ("one", "two")]
    for p in procs:
        out = p.communicate(timeout=300)[0]
        assert p.returncode == 0, out.decode()[-3000:]
    spans = sorted((float(a), float(b), tag) for tag, a, b in (line.split() for line in log.read_text().splitlines()))
    assert len(spans) == 4 and {t.split("-")[0] for *_, t in spans} == {"one", "two"}
    for (_, e0, t0), (s1, _, t1) in itertools.pairwise(spans):
        assert s1 >= e0, f"{t0} and {t1} held the GPU at once"


def test_server_restart_mid_run_then_rerun_completes_without_duplicates(tmp_path: Path) -> None:
    """`synthgen run` against a server that is stopped and started again (same database) while
    shards are being made: the run either resumes (Prefect's client retries) or exits 2 with one
    error message; a re-run then completes the dataset, every row once, no finished shard redone."""
    from tests.prefect_server import start_server, stop, wait_healthy
    from tests.s3server import free_port

    home = tmp_path / "prefect"
    home.mkdir()
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    server = start_server(home, port, home / "server.log")
    params = write_params(tmp_path / "proj", n=24, shard_size=3)
    labelled = tmp_path / "proj" / "data" / "work" / "incabin-faces" / "labelled"
    env = dict(os.environ, PREFECT_API_URL=api_url, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "synthgen", "run", "-p", str(params), "--no-record", "--no-analyze",
           "--runner", "thread", "--workers", "1"]
    try:
        wait_healthy(api_url, server)
        run = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 300
        while len(list(labelled.glob("shard-*.parquet"))) < 2:
            assert run.poll() is None and time.time() < deadline, run.communicate()
            time.sleep(0.2)
        stop(server)
        server = start_server(home, port, home / "server.log")
        wait_healthy(api_url, server)
        out, err = run.communicate(timeout=400)
        if run.returncode != 0:
            assert run.returncode == 2, err[-3000:]
            assert "error:" in out + err and "Traceback" not in out + err
        done = {p: p.stat().st_mtime_ns for p in labelled.glob("shard-*.parquet")}
        again = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=400, check=False)
        assert again.returncode == 0, again.stderr[-3000:]
    finally:
        stop(server)
    version_dir = next((tmp_path / "proj" / "data" / "datasets" / "incabin-faces").glob("version=*"))
    rows = published_rows(version_dir)
    assert rows.height == 24 and rows["sample_id"].n_unique() == 24
    assert all(p.stat().st_mtime_ns == m for p, m in done.items())  # nothing finished was redone


def test_a_run_orphaned_in_pending_is_crashed_and_resubmitted(api: str, tmp_path: Path) -> None:
    """On the real server: a shard run that a worker claimed (Pending) and never named itself on,
    as when the worker is killed between the two calls, is crashed by the dispatcher and its shard
    re-submitted; when the re-submitted run is orphaned too, the shard is reported failed with
    why, and the dispatcher returns instead of waiting for ever. No worker runs here: the test
    plays the dying worker's part by proposing Pending itself."""
    import contextvars
    import threading

    from prefect import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.states import Pending

    from flows.scale import run_shard_deployments

    with get_client(sync_client=True) as client:
        client.create_work_pool(WorkPoolCreate(name="orphans", type="process"))
        flow_id = client.create_flow_from_name("orphan-shards")
        client.create_deployment(flow_id=flow_id, name="shards", work_pool_name="orphans",
                                 entrypoint="flows/generate_dataset.py:shard_flow")
    result: dict[str, object] = {}
    # Prefect's settings (this server's URL) live in a context variable: the thread gets a copy.
    dispatcher = threading.Thread(target=contextvars.copy_context().run, args=(lambda: result.update(
        run_shard_deployments("orphan-shards/shards", [[7]], {}, done=lambda s: False, retries=1, poll_s=0.2,
                              orphan_after_s=1.0)),), daemon=True)
    dispatcher.start()
    claimed: set[object] = set()
    with get_client(sync_client=True) as client:
        deadline = time.time() + 60
        while dispatcher.is_alive() and time.time() < deadline:
            runs = shard_runs(client)
            for run in runs:
                if run.id not in claimed and run.state.is_scheduled():
                    client.set_flow_run_state(run.id, Pending(), force=True)  # claimed, then the worker died
                    claimed.add(run.id)
            time.sleep(0.2)
        dispatcher.join(timeout=5)
        runs = shard_runs(client)
    assert not dispatcher.is_alive(), "the dispatcher kept waiting on an orphaned run"
    assert len(claimed) == 2 and len(runs) == 2  # the first try and one re-submission
    assert all(r.state.is_crashed() and "no worker" in (r.state.message or "") for r in runs)
    assert list(result["failed"]) == [7] and "no worker" in result["failed"][7]  # type: ignore[index]
