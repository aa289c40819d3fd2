"""Integrity under concurrency, partial inputs and corruption (issue 10, items 1-8).

Every case starts from a copy of one reference run made by the real stages, breaks it the way a
user or a machine would (a second run at once, a killed run, a flipped byte, a full disk), runs the
real CLI in a subprocess, and checks: nothing lost, nothing mixed, one error line and exit 2 where
the run cannot go on, and a re-run that ends byte-identical to the reference.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from synthgen.errors import DataError
from synthgen.io import host_tag
from synthgen.lineage import generate_hash
from synthgen.shards import (
    list_versions,
    marker_hash,
    open_dataset,
    read_table,
    shard_hash,
)
from tests.integrity_support import (
    NAME,
    cli,
    cli_env,
    copy_data,
    dead_pid,
    error_lines,
    flip_in_column,
    one_error,
    run_reference,
    snapshot,
    start_cli,
    wait_for,
    write_params,
)

STAGES = ("plan", "generated", "labelled", "curated", "publish")


@pytest.fixture(scope="module")
def ref(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("reference")
    data = root / "data"
    params_file = write_params(root, data)
    run_reference(data, params_file)
    return {"data": data, "snap": {s: snapshot(data, s) for s in STAGES}}


def case(ref: dict, tmp_path: Path, upto: str, **overrides) -> tuple[Path, Path]:
    data = copy_data(ref["data"], tmp_path / "data", upto)
    return data, write_params(tmp_path, data, **overrides)


def stage(name: str, params_file: Path):
    """Run a stage in this process (re-runs after the CLI has shown its error: same code, no start-up)."""
    from synthgen import stages
    from synthgen.config import load_params

    params = load_params(params_file, [])
    if name == "plan":
        return stages.run_plan(params)
    if name == "publish":
        return stages.run_publish(params, progress=False)
    return getattr(stages, f"run_{name}")(params, progress=False)


def versions(data: Path) -> list[Path]:
    return list_versions(data / "datasets" / NAME)


def temp_entries(data: Path) -> list[Path]:
    return [p for p in data.rglob(".tmp-*")]


def test_reference_is_complete(ref: dict) -> None:
    snap = ref["snap"]
    assert len(snap["generated"]) == len(snap["labelled"]) == 5  # 4 shards + marker
    assert len(snap["curated"]) == 7  # 4 shards + marker + _agreement.json + _coverage.json
    (version,) = versions(ref["data"])
    manifest = json.loads((version / "_manifest.json").read_text())
    assert manifest["rows"] == 40 and len(manifest["files"]) == len([k for k in snap["publish"] if k.endswith(".parquet")])


# --- 1. two publishes at once; the lock names its holder ------------------------------------------

def test_two_publishes_at_once_give_one_complete_version(ref: dict, tmp_path: Path) -> None:
    data, params = case(ref, tmp_path, "curated")
    procs = [start_cli("publish", params) for _ in range(2)]
    outs = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    assert snapshot(data, "publish") == ref["snap"]["publish"]
    proc = subprocess.run([sys.executable, "-m", "synthgen", "verify", NAME, "--data-dir", str(data)],
                          capture_output=True, text=True, env=cli_env())
    assert proc.returncode == 0, proc.stderr
    assert temp_entries(data) == []


def test_a_held_lock_names_its_holder_and_a_killed_holder_frees_it(ref: dict, tmp_path: Path) -> None:
    data, params = case(ref, tmp_path, "curated")
    work = data / "work" / NAME
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\nfrom synthgen.locks import stage_locks\n"
         f"with stage_locks(__import__('pathlib').Path({str(work)!r}), ['publish']):\n"
         "    print('held', flush=True)\n    time.sleep(120)\n", "holder-marker"],
        stdout=subprocess.PIPE, text=True, env=cli_env())
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        line = one_error(cli("publish", params, SYNTHGEN_LOCK_WAIT="1"))
        assert f"another run holds the publish lock: pid {holder.pid} on " in line and "started" in line
        assert "holder-marker" in line, line  # the holder's command line
        assert versions(data) == []
    finally:
        holder.kill()
        holder.wait()
    # flock dies with its process: nothing stale to clean by hand.
    stage("publish", params)
    assert snapshot(data, "publish") == ref["snap"]["publish"]


# --- 2. and 6. partial upstream: every later stage refuses; a re-run is exact ----------------------

def test_generate_killed_after_some_shards_is_refused_downstream(ref: dict, tmp_path: Path) -> None:
    data, params = case(ref, tmp_path, "generated")
    gen = data / "work" / NAME / "generated"
    for s in (1, 3):
        (gen / f"shard-{s:05d}.parquet").unlink()
    line = one_error(cli("label", params))
    assert "generated/ holds 2 of 4 shards" in line and "Fix: run `synthgen generate`" in line
    with pytest.raises(DataError, match="labelled/ holds no finished stage"):
        stage("curate", params)
    with pytest.raises(DataError, match="curated/ holds no finished stage"):
        stage("publish", params)
    assert versions(data) == []
    result = stage("generate", params)
    assert (sorted(result.written), sorted(result.skipped)) == ([1, 3], [0, 2])
    assert snapshot(data, "generated") == ref["snap"]["generated"]


def test_curate_after_partial_label_refuses_then_decides_over_all_rows(ref: dict, tmp_path: Path) -> None:
    data, params = case(ref, tmp_path, "labelled")
    lab = data / "work" / NAME / "labelled"
    (lab / "shard-00002.parquet").unlink()
    line = one_error(cli("curate", params))
    assert "labelled/ holds 3 of 4 shards" in line and "Fix: run `synthgen label`" in line
    assert stage("label", params).written == [2]
    assert snapshot(data, "labelled") == ref["snap"]["labelled"]
    stage("curate", params)
    assert snapshot(data, "curated") == ref["snap"]["curated"]


def test_curated_shards_decided_over_other_rows_are_redone(ref: dict, tmp_path: Path) -> None:
    """Curate's fingerprint covers the labelled rows: finished curated shards are kept only when
    they were decided over exactly these rows."""
    from synthgen.config import load_params
    from synthgen.shards import read_parquet, write_parquet_atomic
    from synthgen.stages import run_curate

    data, params_file = case(ref, tmp_path, "curated")
    params = load_params(params_file, [])
    lab = data / "work" / NAME / "labelled" / "shard-00003.parquet"
    table = read_parquet(lab)
    digest = shard_hash(lab)
    # The same labelled shard, one detection less (as a different labeller run would give).
    col = table.column("meas_face_count").to_pylist()
    col[0] = 0 if col[0] else 1
    import pyarrow as pa

    table = table.set_column(table.schema.get_field_index("meas_face_count"), "meas_face_count",
                             pa.array(col, table.schema.field("meas_face_count").type))
    write_parquet_atomic(table, lab, row_group_size=100, stage_hash=digest)
    result = run_curate(params, progress=False)
    assert sorted(result.written) == [0, 1, 2, 3] and result.skipped == []
    accepted = read_table(sorted((data / "work" / NAME / "curated").glob("shard-*.parquet")),
                          columns=["accepted"]).column(0).to_pylist()
    assert len(accepted) == 40


# --- 3. two generates with different params never mix ----------------------------------------------

def test_two_generates_with_different_params_never_mix(ref: dict, tmp_path: Path) -> None:
    data, params_a = case(ref, tmp_path, "plan")
    params_b = write_params(tmp_path, data, name="params-b", **{"generate.width": 80, "generate.height": 80})
    gen = data / "work" / NAME / "generated"
    holder_file = data / "work" / NAME / ".lock-generated.holder.json"
    a = start_cli("generate", params_a, SYNTHGEN_LOCK_WAIT="120")
    assert wait_for(holder_file.exists, 120), "the first generate never took its lock"
    os.kill(a.pid, signal.SIGSTOP)  # hold `a` inside its lock, however fast the machine renders
    try:
        busy = cli("generate", params_b, SYNTHGEN_LOCK_WAIT="0.5")
    finally:
        os.kill(a.pid, signal.SIGCONT)
    line = one_error(busy)
    assert f"another run holds the plan lock: pid {a.pid}" in line and "generate" in line
    b = start_cli("generate", params_b, SYNTHGEN_LOCK_WAIT="120")  # waits for a, then replaces its shards
    out_a, out_b = a.communicate(timeout=240), b.communicate(timeout=240)
    assert (a.returncode, b.returncode) == (0, 0), (out_a[1][-2000:], out_b[1][-2000:])
    assert "generated 4 shards (0 already done)" in out_b[1]
    hashes = {shard_hash(p) for p in gen.glob("shard-*.parquet")}
    assert len(list(gen.glob("shard-*.parquet"))) == 4 and hashes == {marker_hash(gen)}
    widths = {w for p in gen.glob("shard-*.parquet") for w in pq.read_table(p, columns=["width"]).column(0).to_pylist()}
    assert widths == {80}
    # The labeller with a's params refuses b's shards instead of mixing them into a's dataset.
    with pytest.raises(DataError, match="generated/ was made with other params"):
        stage("label", params_a)
    stage("generate", params_a)
    assert snapshot(data, "generated") == ref["snap"]["generated"]


# --- 7. a plan made with other params --------------------------------------------------------------

def test_plan_from_another_seed_is_refused(ref: dict, tmp_path: Path) -> None:
    data, params = case(ref, tmp_path, "generated")
    other = write_params(tmp_path, data, name="seed5", seed=5)
    stage("plan", other)
    line = one_error(cli("generate", params))
    assert "plan.parquet was made with other params" in line and "Fix: run `synthgen plan`" in line
    assert snapshot(data, "generated") == ref["snap"]["generated"]  # nothing rendered, nothing lost
    stage("plan", params)
    assert stage("generate", params).skipped == [0, 1, 2, 3]
    assert snapshot(data, "plan") == ref["snap"]["plan"]


# --- 4. flipped bytes, truncated shards -------------------------------------------------------------

def test_flipped_bytes_in_a_work_shard_are_caught_on_read(ref: dict, tmp_path: Path) -> None:
    data, params = case(ref, tmp_path, "generated")
    victim = data / "work" / NAME / "generated" / "shard-00001.parquet"
    flip_in_column(victim, "req_age")
    line = one_error(cli("label", params))
    assert "shard-00001.parquet" in line and "CRC" in line
    assert not (data / "work" / NAME / "labelled" / "shard-00001.parquet").exists()
    victim.unlink()  # what the error's fix says: delete it and re-run the stage that wrote it
    assert stage("generate", params).written == [1]
    assert snapshot(data, "generated") == ref["snap"]["generated"]


def test_flipped_bytes_in_a_published_part_fail_verify_and_reads(ref: dict, tmp_path: Path) -> None:
    data, params = case(ref, tmp_path, "publish")
    (version,) = versions(data)
    part = sorted(version.glob("split=train/*.parquet"))[0]
    flip_in_column(part, "req_age")
    proc = subprocess.run([sys.executable, "-m", "synthgen", "verify", NAME, "--data-dir", str(data)],
                          capture_output=True, text=True, env=cli_env())
    assert proc.returncode == 2
    bad = [ln for ln in proc.stderr.splitlines() if ln.startswith("bad:")]
    assert len(bad) == 1 and str(part) in bad[0] and "SHA-256" in bad[0]
    with pytest.raises(DataError, match="CRC"):
        read_table(part, columns=["req_age"])
    with pytest.raises((OSError, ValueError), match="CRC"):
        open_dataset(version).to_table(columns=["req_age"])
    stage("publish", params)
    assert snapshot(data, "publish") == ref["snap"]["publish"]


def test_a_truncated_shard_is_redone(ref: dict, tmp_path: Path) -> None:
    data, params = case(ref, tmp_path, "generated")
    victim = data / "work" / NAME / "generated" / "shard-00002.parquet"
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    line = one_error(cli("label", params))
    assert "generated/ holds 3 of 4 shards (1 damaged or from other params, e.g. shard-00002.parquet)" in line
    assert stage("generate", params).written == [2]
    assert snapshot(data, "generated") == ref["snap"]["generated"]


# --- 5. leftovers of killed runs --------------------------------------------------------------------

def test_leftover_temp_folders_are_ignored_by_readers_and_cleaned_when_dead(ref: dict, tmp_path: Path) -> None:
    data, params = case(ref, tmp_path, "publish")
    ds_root = data / "datasets"
    (version,) = versions(data)
    dead, live = dead_pid(), os.getpid()
    stale = ds_root / f".tmp-{host_tag()}-{dead}-{NAME}-{version.name}.abc123"
    running = ds_root / f".tmp-{host_tag()}-{live}-{NAME}-{version.name}.def456"
    for folder in (stale, running):
        shutil.copytree(version, folder)
        (folder / "split=train" / "part-00000.parquet").write_bytes(b"half a file")
        (folder / "_manifest.json").unlink()
    legacy = ds_root / NAME / ".tmp-version=vold"  # what older releases left inside the dataset
    (legacy / "split=train").mkdir(parents=True)
    (legacy / "split=train" / "part-00000.parquet").write_bytes(b"junk")
    half = ds_root / NAME / "version=vhalf"  # a version folder without a manifest
    (half / "split=train").mkdir(parents=True)
    assert versions(data) == [version]
    assert open_dataset(ds_root / NAME).to_table(columns=["sample_id"]).num_rows == 40
    import polars as pl

    lf = pl.scan_parquet(str(ds_root / NAME / "version=*" / "split=*" / "*.parquet"), hive_partitioning=True)
    assert lf.select(pl.len()).collect().item() == 40
    work_tmp_dead = data / "work" / NAME / "curated" / f".tmp-{host_tag()}-{dead}-shard-00000.parquet.x1"
    work_tmp_live = data / "work" / NAME / "curated" / f".tmp-{host_tag()}-{live}-shard-00000.parquet.x2"
    work_tmp_dead.write_bytes(b"partial")
    work_tmp_live.write_bytes(b"partial")
    stage("publish", params)
    assert not stale.exists() and running.exists(), "only dead runs' temp folders are removed"
    stage("curate", params)
    assert not work_tmp_dead.exists() and work_tmp_live.exists()
    assert snapshot(data, "publish") == {**ref["snap"]["publish"]}


# --- disk full ---------------------------------------------------------------------------------------

@pytest.fixture
def small_disk(tmp_path: Path):
    """A small tmpfs (root only); tests that need it skip where mounting is not permitted."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.decode().strip()}); "
                    "see test_enospc_simulated_when_no_tmpfs")

    def resize(nbytes: int) -> None:
        subprocess.run(["mount", "-o", f"remount,size={nbytes}", str(mnt)], check=True)

    yield mnt, resize
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def test_disk_full_during_publish_then_rerun_is_exact(ref: dict, tmp_path: Path, small_disk) -> None:
    mnt, resize = small_disk
    work_size = _du(ref["data"] / "work")
    pub_size = _du(ref["data"] / "datasets")
    resize(work_size + pub_size // 2 + 256 * 1024)
    data = copy_data(ref["data"], mnt / "data", "curated")
    params = write_params(tmp_path, data)
    line = one_error(cli("publish", params))
    assert "no space left on the device" in line
    assert versions(data) == [] and temp_entries(data / "datasets") == []
    resize(work_size + 3 * pub_size + 1024 * 1024)
    stage("publish", params)
    assert snapshot(data, "publish") == ref["snap"]["publish"]


def test_disk_full_during_generate_then_rerun_is_exact(ref: dict, tmp_path: Path, small_disk) -> None:
    mnt, resize = small_disk
    gen_size = _du(ref["data"] / "work" / NAME / "generated")
    resize(gen_size // 2 + 128 * 1024)
    data = copy_data(ref["data"], mnt / "data", "plan")
    params = write_params(tmp_path, data)
    line = one_error(cli("generate", params))
    assert "no space left on the device" in line
    gen = data / "work" / NAME / "generated"
    assert list(gen.glob(".tmp-*")) == []
    for p in gen.glob("shard-*.parquet"):  # what is there is complete
        assert pq.read_metadata(p).num_rows == 10
    resize(4 * gen_size + 1024 * 1024)
    stage("generate", params)
    assert snapshot(data, "generated") == ref["snap"]["generated"]


def test_enospc_simulated_when_no_tmpfs(ref: dict, tmp_path: Path, monkeypatch) -> None:
    """Where a tmpfs cannot be mounted: the write raising ENOSPC (what the kernel would do)."""
    from synthgen.config import load_params
    from synthgen.publish import stage
    from synthgen.stages import run_publish

    data, params_file = case(ref, tmp_path, "curated")
    real = stage.write_parquet_atomic
    calls = {"n": 0}

    def full(*a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*a, **k)

    monkeypatch.setattr(stage, "write_parquet_atomic", full)
    params = load_params(params_file, [])
    with pytest.raises(OSError):
        run_publish(params, progress=False)
    assert versions(data) == [] and temp_entries(data / "datasets") == []
    monkeypatch.setattr(stage, "write_parquet_atomic", real)
    run_publish(params, progress=False)
    assert snapshot(data, "publish") == ref["snap"]["publish"]


def test_verify_one_version_and_unknown_version(ref: dict) -> None:
    from synthgen.stages import verify_dataset

    data = ref["data"]
    (version,) = versions(data)
    checked, problems = verify_dataset(data / "datasets" / NAME, version.name.split("=", 1)[1])
    assert checked == [version] and problems == []
    args = [sys.executable, "-m", "synthgen", "verify", NAME, "--data-dir", str(data)]
    bad = subprocess.run(args + ["--version", "vnope"], capture_output=True, text=True, env=cli_env())
    assert bad.returncode == 2 and len(error_lines(bad.stderr)) == 1
    assert version.name.split("=", 1)[1] in bad.stderr


def test_generated_shard_from_other_params_is_refused_per_shard(ref: dict, tmp_path: Path) -> None:
    """A flow labels shard by shard: each shard is checked against the fingerprint its params expect."""
    from synthgen.config import load_params
    from synthgen.stages import label_shard

    data, params_file = case(ref, tmp_path, "generated")
    params = load_params(params_file, [])
    other = params.model_copy(update={"generate": params.generate.model_copy(update={"width": 64})})
    assert generate_hash(other) != generate_hash(params)
    with pytest.raises(DataError, match="generated shard was made with other params"):
        label_shard(other, 0)


# --- locks handed down to a run's own processes; workers that outlive nothing ---------------------

def test_a_lock_is_handed_down_to_child_processes_only(tmp_path: Path) -> None:
    """A run holding a lock (e.g. a flow) lets its own worker processes into the stage; any other
    process still waits and then fails with the holder named."""
    from synthgen.locks import stage_locks

    work = tmp_path / "work"
    probe = ("import sys, pathlib\nfrom synthgen.locks import stage_locks\n"
             f"with stage_locks(pathlib.Path({str(work)!r}), ['curated'], timeout=0.2):\n    print('in')\n")
    with stage_locks(work, ["curated"]):
        child = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                               env={**cli_env(), "SYNTHGEN_LOCKS_HELD": os.environ["SYNTHGEN_LOCKS_HELD"]})
        stranger = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=cli_env())
    assert child.returncode == 0 and child.stdout.strip() == "in", child.stderr[-2000:]
    assert stranger.returncode != 0 and "another run holds the curated lock" in stranger.stderr
    assert "SYNTHGEN_LOCKS_HELD" not in os.environ  # released, and no longer handed down


def test_a_pool_worker_ends_when_its_parent_is_killed(tmp_path: Path) -> None:
    """What a flow's task worker does through ``watch_parent_if_worker`` (poll-only, no prctl)."""
    import signal

    from tests.integrity_support import alive

    pidfile = tmp_path / "worker.pid"
    script = (
        "import multiprocessing as mp, pathlib, time\n"
        "def work(path):\n"
        "    import os\n"
        "    from synthgen.lifeline import watch_parent_if_worker\n"
        "    watch_parent_if_worker()\n"
        "    pathlib.Path(path).write_text(str(os.getpid()))\n"
        "    time.sleep(120)\n"
        "if __name__ == '__main__':\n"
        f"    p = mp.get_context('spawn').Process(target=work, args=({str(pidfile)!r},))\n"
        "    p.start(); p.join()\n"
    )
    (tmp_path / "run_pool.py").write_text(script)  # spawn re-imports the main module: it needs a file
    main = subprocess.Popen([sys.executable, str(tmp_path / "run_pool.py")], env=cli_env())
    try:
        assert wait_for(lambda: pidfile.exists() and pidfile.read_text().strip().isdigit(), 60)
        worker = int(pidfile.read_text())
        assert alive(worker)
        os.kill(main.pid, signal.SIGKILL)
        main.wait()
        assert wait_for(lambda: not alive(worker), 10), "the worker outlived its parent"
    finally:
        main.kill()
        if pidfile.exists() and pidfile.read_text().strip().isdigit() and alive(int(pidfile.read_text())):
            os.kill(int(pidfile.read_text()), signal.SIGKILL)


def test_flow_run_holds_the_stage_locks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`synthgen run` takes every stage lock of its dataset before it starts (no Prefect server is
    started when another run holds them), so a concurrent CLI stage cannot write under it."""
    import subprocess
    import sys

    from flows.generate_dataset import generate_dataset
    from synthgen.config import load_params
    from synthgen.locks import LOCK_ORDER, LockBusyError, stage_locks
    from synthgen.paths import Layout

    monkeypatch.setenv("SYNTHGEN_LOCK_WAIT", "1")
    sets = [f"data_dir={tmp_path / 'data'}", "plan.n=4", "plan.shard_size=2"]
    work = Layout.from_params(load_params("params.yaml", sets)).work_dir
    holder = subprocess.Popen(  # another process holds the generate lock, as a running stage would
        [sys.executable, "-c", "import sys, time; from pathlib import Path; from synthgen.locks import stage_locks\n"
         f"with stage_locks(Path({str(work)!r}), ['plan', 'generated']):\n print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(LockBusyError, match="another run holds the plan lock: pid"):
            generate_dataset(params_path="params.yaml", overrides=sets)
    finally:
        holder.kill()
        holder.wait()
    with stage_locks(work, LOCK_ORDER, timeout=5):  # released: free for the next run
        pass
