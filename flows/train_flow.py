"""Downstream training as a Prefect flow, started by each newly published dataset version.

The generate flow emits ``synthgen.dataset.published`` when it publishes a version (payload:
name, version, path, params_path, project_dir). ``train_deployment()`` links this flow to that
event with a deployment trigger, so serving it (``python -m flows.train_flow``) is all it takes
for every new version to be trained and evaluated with no one involved.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flows.runtime import apply_defaults

apply_defaults()

from prefect import flow, get_run_logger, task  # noqa: E402
from prefect.events import DeploymentEventTrigger  # noqa: E402

from synthgen.config import Params, load_params  # noqa: E402

PUBLISHED_EVENT = "synthgen.dataset.published"
DEPLOYMENT_NAME = "train-on-publish"


def _blank(value: str | None) -> bool:
    """Templated parameters render a missing payload field as '' (or 'None')."""
    return value is None or str(value).strip() in ("", "None", "null")


def resolve_params(params_path: str, version: str | None, project_dir: str | None) -> Params:
    """params.yaml as the publishing run saw it: paths relative to its project, pinned to ``version``."""
    base = None if _blank(project_dir) else Path(str(project_dir))
    path = Path(params_path)
    if base is not None and not path.is_absolute():
        path = base / path
    params = load_params(path)
    update: dict[str, Any] = {}
    if base is not None and not params.data_dir.is_absolute():
        update["data_dir"] = base / params.data_dir
    if not _blank(version):
        update["dataset"] = params.dataset.model_copy(update={"version": str(version)})
    return params.model_copy(update=update) if update else params


@task(retries=1, retry_delay_seconds=5)
def train_task(params: Params) -> dict[str, Any]:
    """The one Prefect task that trains (this flow and the generate flow both use it).

    One retry: training resumes from its last epoch checkpoint, so a retry costs little.
    """
    from synthgen.stages import run_train

    result = run_train(params, progress=False)
    return {"out_dir": str(result.out_dir), "model": str(result.model_path), "epochs": result.epochs,
            "steps": result.steps, "metrics": result.metrics}


@flow(name="train-on-dataset", log_prints=True)
def train_flow(params_path: str = "params.yaml", version: str | None = None,
               project_dir: str | None = None) -> dict[str, Any]:
    logger = get_run_logger()
    params = resolve_params(params_path, version, project_dir)
    from synthgen.paths import Layout

    layout = Layout.from_params(params)
    logger.info("training on %s", layout.version_dir)
    summary = train_task(params)
    logger.info("model and metrics in %s", summary["out_dir"])
    summary["recorded"] = record_train(params, project_dir)
    return summary


@task
def record_train(params: Params, project_dir: str | None) -> dict[str, Any]:
    """Record the training like `dvc repro` would (metrics in git, the train stage in dvc.lock), so
    `dvc status` stays clean and a later `dvc checkout` knows the model files. Refused, with the
    reason logged, when the params differ from the project's params.yaml."""
    from synthgen.tracking import export_metrics, params_drift
    from synthgen.versioning import dvc_root, record_version

    root = dvc_root(None if _blank(project_dir) else Path(str(project_dir)))
    if root is None or not params.record.dvc_commit:
        return {"dvc_committed": []}
    drift = params_drift(params, root)
    if drift:  # nor its metrics: the project's metrics/ must describe what its dvc.lock records
        reason = "params differ from params.yaml: " + "; ".join(drift[:3])
        get_run_logger().warning("training not recorded with DVC: %s", reason)
        return {"dvc_committed": [], "not_recorded": reason}
    export_metrics(params, "train", root)
    record = params.record.model_copy(update={"git_commit": False, "git_tag": False})
    return record_version(params.model_copy(update={"record": record}), params.dataset.version, ["train"], root)


def train_deployment(name: str = DEPLOYMENT_NAME) -> Any:
    """A deployment of :func:`train_flow` that every published dataset version triggers."""
    trigger = DeploymentEventTrigger(
        name="on-dataset-published",
        expect={PUBLISHED_EVENT},
        match={"prefect.resource.id": "synthgen.dataset.*"},
        parameters={
            "params_path": "{{ event.payload.params_path }}",
            "version": "{{ event.payload.version }}",
            "project_dir": "{{ event.payload.project_dir }}",
        },
    )
    return train_flow.to_deployment(name=name, triggers=[trigger])


if __name__ == "__main__":
    from prefect import serve

    serve(train_deployment())
