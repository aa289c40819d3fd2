"""The main job as a Prefect flow: plan -> generate -> label -> curate -> publish -> analyze.

The tasks call the same stage functions as the CLI and ``dvc repro`` and write the same paths;
at the end the run is recorded with DVC (``dvc commit`` of the stages it ran), so ``dvc status``
agrees with a scheduled run. Shards are the unit of parallelism: one task per shard and stage,
run in a process pool (the work is CPU-bound), with retries. A finished shard is never redone,
so a killed run re-run resumes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flows.runtime import apply_defaults

apply_defaults()

from prefect import flow, get_run_logger, task, unmapped  # noqa: E402
from prefect.task_runners import ProcessPoolTaskRunner  # noqa: E402

from synthgen.config import Params, load_params  # noqa: E402
from synthgen.paths import Layout  # noqa: E402
from synthgen.shards import default_workers  # noqa: E402

PUBLISHED_EVENT = "synthgen.dataset.published"
# Stages the flow runs, in dvc.yaml's names; `record` commits exactly these.
FLOW_STAGES = ["plan", "generate", "label", "curate", "publish", "analyze", "train"]


@task(retries=2, retry_delay_seconds=2)
def plan_task(params: Params) -> list[int]:
    from synthgen.stages import prepare_generate, run_plan

    run_plan(params)
    return prepare_generate(params)


# The shard function of each shard stage, by the stage folder it writes.
SHARD_FUNCTIONS = {"generated": "generate_shard", "labelled": "label_shard"}


@task(retries=2, retry_delay_seconds=2, task_run_name="{stage}-{shard}")
def shard_task(params: Params, stage: str, shard: int) -> str:
    """One shard of one stage; a shard already on disk is kept (a re-run resumes)."""
    import synthgen.stages

    out = Layout.from_params(params).shard_file(stage, shard)
    return str(out if out.exists() else getattr(synthgen.stages, SHARD_FUNCTIONS[stage])(params, shard))


@task(retries=1)
def prepare_label_task(params: Params) -> None:
    from synthgen.stages import prepare_label_dir

    prepare_label_dir(params)


@task(retries=1)
def curate_task(params: Params) -> str:
    from synthgen.stages import run_curate
    from synthgen.tracking import export_metrics

    out = str(run_curate(params, progress=False).out_dir)
    export_metrics(params, "curate")
    return out


@task(retries=1)
def publish_task(params: Params) -> dict[str, Any]:
    from synthgen.stages import run_publish

    r = run_publish(params, progress=False)
    return {"version": r.version, "path": str(r.version_dir), "rows": r.rows,
            "accepted": r.accepted, "splits": r.splits}


@task(retries=1)
def analyze_task(params: Params) -> str:
    from synthgen.stages import run_analyze
    from synthgen.tracking import export_metrics

    r = run_analyze(params, progress=False)
    export_metrics(params, "analyze")
    return str(r.files["report"])


@task(retries=1)
def train_task(params: Params) -> dict[str, Any]:
    from synthgen.stages import run_train
    from synthgen.tracking import export_metrics

    r = run_train(params, progress=False)
    export_metrics(params, "train")
    return {"model": str(r.model_path), **{k: v for k, v in r.metrics.items() if k.endswith(("error", "mae", "accuracy"))}}


def check_record(params: Params, params_path: str, overrides: list[str], save_params: bool,
                 root: Path | None) -> str | None:
    """None when dvc.lock may record this run; otherwise why not. DVC records params.yaml, so a
    run on other params (``--set``, another ``-p`` file, a deployment's overrides) is recorded
    only after writing them there (``save_params``); never a lock that claims other params."""
    from synthgen.tracking import params_drift
    from synthgen.tracking import save_params as write_params

    if root is None:
        return None
    drift = params_drift(params, root)
    if not drift:
        return None
    if save_params:
        write_params(params_path, overrides, root)
        drift = params_drift(params, root)
        return None if not drift else "params.yaml still differs after saving: " + "; ".join(drift[:3])
    more = f" (+{len(drift) - 3} more)" if len(drift) > 3 else ""
    return ("this run's params differ from params.yaml, which dvc.lock records: " + "; ".join(drift[:3]) + more
            + ". Re-run with --save-params to write them into params.yaml and record, or put them there"
              " and run `dvc repro`")


@task
def record_task(params: Params, published: dict[str, Any], params_path: str, stages: list[str],
                overrides: list[str] | None = None, save_params: bool = False) -> dict[str, Any]:
    """DVC-commit the stages this run produced (and optionally git-commit/tag), then announce it."""
    from prefect.events import emit_event

    from synthgen.versioning import dvc_root, record_version

    refused = check_record(params, params_path, overrides or [], save_params, dvc_root())
    if refused:
        get_run_logger().warning("version %s not recorded with DVC: %s", published["version"], refused)
        recorded: dict[str, Any] = {"dvc_committed": [], "git_commit": None, "git_tag": None,
                                    "not_recorded": refused}
    else:
        recorded = record_version(params, published["version"], stages)
    emit_event(
        event=PUBLISHED_EVENT,
        resource={"prefect.resource.id": f"synthgen.dataset.{params.dataset.name}"},
        payload={
            "name": params.dataset.name,
            "version": published["version"],
            "path": str(Path(published["path"]).resolve()),
            "params_path": str(Path(params_path).resolve()),
            "project_dir": str(Path.cwd()),
        },
    )
    return recorded


def _workers(params: Params) -> int:
    return default_workers(params.generate.workers)


@flow(
    name="generate-dataset",
    log_prints=True,
    task_runner=ProcessPoolTaskRunner(max_workers=default_workers(0)),
    description="plan -> generate -> label -> curate -> publish -> analyze, recorded with DVC",
)
def generate_dataset_flow(
    params_path: str = "params.yaml",
    overrides: list[str] | None = None,
    record: bool = True,
    analyze: bool = True,
    train: bool = False,
    save_params: bool = False,
) -> dict[str, Any]:
    """``train`` runs training in this flow; without it, a served `train-on-publish` deployment
    (``synthgen serve``) trains on the published event instead, and records it. ``save_params``
    writes the run's params (``overrides``, another params file) into params.yaml so that
    dvc.lock can record them; without it such a run is not recorded."""
    logger = get_run_logger()
    params = load_params(params_path, overrides or [])
    shards = plan_task(params)
    logger.info("%d shards of up to %d specs", len(shards), params.plan.shard_size)
    generated = shard_task.map(unmapped(params), unmapped("generated"), shards)
    prep = prepare_label_task.submit(params)
    labelled = [shard_task.submit(params, "labelled", s, wait_for=[g, prep]) for s, g in zip(shards, generated, strict=True)]
    curated = curate_task.submit(params, wait_for=labelled)
    published = publish_task.submit(params, wait_for=[curated]).result()
    stages = FLOW_STAGES[:5]
    summary: dict[str, Any] = {"dataset": params.dataset.name, **published}
    if analyze:
        summary["report"] = analyze_task.submit(params).result()
        stages = stages + ["analyze"]
    if train:
        summary["train"] = train_task.submit(params).result()
        stages = stages + ["train"]
    if record:
        summary["recorded"] = record_task(params, published, params_path, stages, list(overrides or []),
                                          save_params)
    return summary


def generate_dataset(
    params_path: str = "params.yaml",
    overrides: list[str] | None = None,
    record: bool = True,
    analyze: bool = True,
    train: bool = False,
    save_params: bool = False,
) -> dict[str, Any]:
    """Run the flow with a process pool sized from params (the task runner is chosen per run)."""
    from flows.runtime import prefect_api

    params = load_params(params_path, overrides or [])
    with prefect_api():
        runner = ProcessPoolTaskRunner(max_workers=_workers(params))
        return generate_dataset_flow.with_options(task_runner=runner)(
            params_path=params_path, overrides=overrides, record=record, analyze=analyze, train=train,
            save_params=save_params,
        )


if __name__ == "__main__":
    print(generate_dataset())
