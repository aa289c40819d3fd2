"""The label and curate stages end to end on procedural renders (plan -> generate -> label -> curate)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from synthgen.config import Params, parse_params
from synthgen.contract import MEAS_SCHEMA
from synthgen.curate.core import reject_summary
from synthgen.curate.stage import run_curate
from synthgen.label.pipeline import label_rows
from synthgen.label.stage import run_label
from synthgen.paths import Layout
from synthgen.plan.stage import run_plan
from synthgen.shards import read_parquet


def _params(tmp: Path) -> Params:
    return parse_params({"data_dir": str(tmp), "plan": {"n": 4, "shard_size": 2},
                         "generate": {"workers": 1}, "label": {"workers": 2}})


@pytest.mark.slow
def test_stages_on_renders_are_deterministic_and_measured(tmp_path: Path, monkeypatch) -> None:
    from synthgen.generate.stage import run_generate

    params = _params(tmp_path)
    layout = Layout.from_params(params)
    run_plan(params)  # the plan carries its params' fingerprint, which generate checks
    run_generate(params, progress=False)
    result = run_label(params, progress=False)  # two shards, one process each
    assert result.shards == [0, 1]
    labelled = read_parquet(layout.shard_file("labelled", 0))
    for f in MEAS_SCHEMA:
        assert labelled.schema.field(f.name).type == f.type
    rows = labelled.to_pylist()
    assert all(r["meas_face_count"] == 1 and r["meas_error"] is None for r in rows)
    for r in rows:
        assert abs(r["meas_head_yaw"] - r["req_head_yaw"]) < 10
        assert abs(r["meas_head_pitch"] - r["req_head_pitch"]) < 10
        assert r["meas_gaze_zone"] is not None, "renders name their cabin camera"

    # Same rows through the process pool (one row per work item): identical labels.
    generated = read_parquet(layout.shard_file("generated", 0))
    again = label_rows(generated, params.label.model_copy(update={"chunk_size": 1, "min_rows_per_worker": 1}), progress=False)
    for name in MEAS_SCHEMA.names:
        assert again.column(name).to_pylist() == labelled.column(name).to_pylist(), name

    # A resumed run keeps finished shards.
    assert run_label(params, progress=False).skipped == [0, 1]
    # A new labeller version (a release of its library, emulated by its declared constant) does not:
    # both shards are labelled again, with the same rows, and the dataset version id changes.
    import synthgen.label.mesh as mesh

    version_before = layout.version
    monkeypatch.setattr(mesh, "MEDIAPIPE_MESH_VERSION", mesh.MEDIAPIPE_MESH_VERSION + ".next")
    relabelled = run_label(params, progress=False)
    assert relabelled.skipped == [] and sorted(relabelled.written) == [0, 1]
    assert Layout.from_params(params).version != version_before
    assert read_parquet(layout.shard_file("labelled", 0)).num_rows == labelled.num_rows
    monkeypatch.undo()
    assert run_label(params, progress=False).skipped == []  # back to the installed version: relabelled

    run_curate(params, progress=False)
    curated = pl.read_parquet(str(layout.stage_dir("curated") / "*.parquet"))
    assert curated.height == 4
    assert all((len(r) == 0) == a for r, a in zip(curated["reject_reasons"].to_list(), curated["accepted"].to_list(), strict=True))
    report = json.loads((layout.reports_dir / "controllability.json").read_text())
    assert report["rows"] == 4 and report["detection"]["one_face_rate"] == 1.0
    assert report["head_yaw"]["n"] == 4
    plots = layout.reports_dir / "controllability"
    for name in ("head_yaw.csv", "gaze_yaw.csv", "expression.csv", "requested_vs_measured.png",
                 "expression_confusion.png", "reject_reasons.png"):
        assert (plots / name).stat().st_size > 0, name
    summary = reject_summary(pl.scan_parquet(str(layout.stage_dir("curated") / "*.parquet")))
    assert summary["rows"].sum() == sum(len(r) for r in curated["reject_reasons"].to_list())
    notes = json.loads((plots / "notes.json").read_text())["notes"]
    assert any("identity_leak skipped" in n for n in notes)
    assert np.isfinite(report["gaze_yaw"]["median"])


@pytest.mark.slow
def test_labelling_workers_stay_warm_between_calls_and_recover(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A second call reuses the spawned worker (no second start-up) with the same labels; a worker
    that died is replaced by the next call; an idle pool stops by itself."""
    import os
    import signal

    from synthgen.generate.stage import run_generate
    from synthgen.label import pipeline
    from tests.integrity_support import descendants, wait_for

    params = _params(tmp_path)
    run_plan(params)
    run_generate(params, progress=False)
    table = read_parquet(Layout.from_params(params).shard_file("generated", 0))
    lp = params.label.model_copy(update={"chunk_size": 1, "min_rows_per_worker": 1})
    pipeline.WORKERS.close()
    try:
        first = label_rows(table, lp, progress=False)
        workers = pipeline.WORKERS.pids
        assert len(workers) == 1 and workers <= descendants(os.getpid())
        again = label_rows(table, lp, progress=False)
        assert pipeline.WORKERS.pids == workers, "the second call spawned a new worker"
        assert again.to_pylist() == first.to_pylist()

        for pid in workers:  # a worker killed between calls: the next call still labels every row
            os.kill(pid, signal.SIGKILL)
        assert wait_for(lambda: not (descendants(os.getpid()) & workers), 10)
        third = label_rows(table, lp, progress=False)
        assert third.to_pylist() == first.to_pylist()
        assert pipeline.WORKERS.pids and not (pipeline.WORKERS.pids & workers)

        monkeypatch.setattr(pipeline, "IDLE_SHUTDOWN_S", 0.2)
        label_rows(table, lp, progress=False)
        last = pipeline.WORKERS.pids
        assert wait_for(lambda: not pipeline.WORKERS.started, 10)
        assert wait_for(lambda: not (descendants(os.getpid()) & last), 20)
    finally:
        pipeline.WORKERS.close()


def _label_in_child(shard: str, out: str) -> None:
    """Label a shard with two processes inside a multiprocessing child and return (exit)."""
    from synthgen.label.config import LabelParams

    table = read_parquet(Path(shard))
    lp = LabelParams(workers=2, chunk_size=1, min_rows_per_worker=1)
    Path(out).write_text(str(label_rows(table, lp, progress=False).num_rows))


@pytest.mark.slow
def test_a_process_that_labels_inside_a_process_pool_still_exits(tmp_path: Path) -> None:
    """A multiprocessing child (what Prefect's process task runner runs tasks in) joins its own
    children at exit: the warm labelling workers it started must stop then, or it never exits."""
    import multiprocessing

    from synthgen.generate.stage import run_generate

    params = _params(tmp_path)
    run_plan(params)
    run_generate(params, progress=False)
    shard = Layout.from_params(params).shard_file("generated", 0)
    child = multiprocessing.get_context("spawn").Process(target=_label_in_child,
                                                         args=(str(shard), str(tmp_path / "n.txt")))
    child.start()
    child.join(timeout=120)
    alive = child.is_alive()
    if alive:
        child.kill()
    assert not alive, "the child hung at exit"
    assert child.exitcode == 0 and (tmp_path / "n.txt").read_text() == "2"
