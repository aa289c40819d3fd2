"""The Prefect flow on a real local Prefect server: every stage as tasks, resumable, recorded in
DVC so that `dvc status` agrees with the flow run."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from tests.test_dvc import ROOT, _run


@pytest.mark.slow
def test_flow_runs_all_stages_and_records_with_dvc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from flows.generate_dataset import generate_dataset

    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "dvc.yaml").write_text((ROOT / "dvc.yaml").read_text())
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["plan"].update(n=6, shard_size=3, identities=3)
    params["generate"].update(width=128, height=128, workers=2)
    (proj / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _run(["git", "init", "-q"], proj)
    _run([sys.executable, "-m", "dvc", "init", "-q"], proj)
    monkeypatch.chdir(proj)

    summary = generate_dataset("params.yaml", analyze=False)
    assert summary["rows"] == 6
    version_dir = Path(summary["path"])
    assert version_dir.is_dir() and (version_dir / "_manifest.json").exists()
    committed = summary["recorded"]["dvc_committed"]
    assert {"plan", "generate", "publish"} <= set(committed)
    lock = yaml.safe_load((proj / "dvc.lock").read_text())
    assert set(committed) <= set(lock["stages"])
    status = _run([sys.executable, "-m", "dvc", "status", *committed], proj)
    assert "changed" not in status and "modified" not in status, status

    # a second run resumes: every shard is already there, the published bytes are the same
    manifest = (version_dir / "_manifest.json").read_text()
    again = generate_dataset("params.yaml", analyze=False, record=False)
    assert again["version"] == summary["version"]
    assert (version_dir / "_manifest.json").read_text() == manifest


def test_scheduled_deployment_definition() -> None:
    """The served deployment runs the same flow on a cron schedule with the given params file."""
    from flows.deploy import generate_deployment

    d = generate_deployment("/abs/params.yaml", cron="15 2 * * *")
    assert d.name == "scheduled" and d.parameters == {"params_path": "/abs/params.yaml"}
    assert d.schedules[0].schedule.cron == "15 2 * * *"
    assert d.entrypoint.endswith("flows/generate_dataset.py:generate_dataset_flow")
