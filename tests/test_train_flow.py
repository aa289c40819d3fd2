"""The train flow's parameter handling and its deployment trigger (no server needed)."""

from __future__ import annotations

from pathlib import Path

import yaml

from flows.train_flow import PUBLISHED_EVENT, resolve_params, train_deployment
from synthgen.paths import Layout


def test_event_parameters_resolve_against_the_publishing_project(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"data_dir": "data", "dataset": {"name": "cab"}}))
    p = resolve_params("params.yaml", "v42", str(tmp_path))
    layout = Layout.from_params(p)
    assert layout.version_dir == tmp_path / "data" / "datasets" / "cab" / "version=v42"
    assert layout.models_dir / layout.version == tmp_path / "data" / "models" / "cab" / "v42"
    # a payload without a version renders as '' or 'None': the params decide the version then
    for blank in ("", "None", None):
        assert resolve_params(str(tmp_path / "params.yaml"), blank, None).dataset.version == "auto"


def test_deployment_is_triggered_by_the_publish_event() -> None:
    dep = train_deployment()
    assert dep.name == "train-on-publish"
    (trigger,) = dep.triggers
    assert trigger.expect == {PUBLISHED_EVENT} == {"synthgen.dataset.published"}
    assert trigger.parameters == {
        "params_path": "{{ event.payload.params_path }}",
        "version": "{{ event.payload.version }}",
        "project_dir": "{{ event.payload.project_dir }}",
    }
