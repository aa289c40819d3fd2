"""The main job as a Prefect flow: plan -> generate -> label -> curate -> publish -> analyze.

The tasks call the same stage functions as the CLI and ``dvc repro`` and write the same paths;
at the end the run is recorded with DVC (``dvc commit`` of the stages it ran), so ``dvc status``
agrees with a scheduled run. Shards are the unit of parallelism: one task per shard and stage,
with retries, inside the ``generate-shards`` subflow. That subflow runs in this process with a
process pool or a Dask cluster (``runner``), or, with ``shard_deployment``, as one deployment run
per shard group picked up by the work pool's workers (see flows/scale.py and prefect.yaml).
A finished shard is never redone, so a killed run re-run resumes. A shard that still fails after
its retries is left out and named, with its error, in the published manifest and card.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from flows.runtime import apply_defaults

apply_defaults()

from prefect import flow, get_run_logger, task  # noqa: E402
from prefect.task_runners import ThreadPoolTaskRunner  # noqa: E402

from flows.train_flow import train_task  # noqa: E402
from synthgen.config import Params, load_params  # noqa: E402
from synthgen.paths import Layout  # noqa: E402

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
def shard_task(params: Params, stage: str, shard: int) -> dict[str, str]:
    """One shard of one stage; a shard already on disk is kept (a re-run resumes). Generation
    holds the GPU slots its generator declares (0 for CPU backends) for its whole duration."""
    import synthgen.stages
    from flows.scale import gpu_slot, ran_on

    out = Layout.from_params(params).shard_file(stage, shard)
    if not out.exists():
        slots = synthgen.stages.gpu_slots(params) if stage == "generated" else 0
        with gpu_slot(slots):
            out = getattr(synthgen.stages, SHARD_FUNCTIONS[stage])(params, shard)
    return {"path": str(out), "ran_on": ran_on()}


class ShardFailures(RuntimeError):
    """Raised by the shard flow after the others finished: one ``shard NNNNN: error`` line each."""


@flow(name="generate-shards", task_runner=ThreadPoolTaskRunner(max_workers=1))  # type: ignore[arg-type]
def shard_flow(params_path: str, overrides: list[str] | None = None,
               shards: list[int] | None = None) -> dict[str, Any]:
    """Generate then label the given shards. As a deployment run (one per shard group) the
    worker's process is the unit of parallelism; in-process the parent picks the task runner."""
    params = load_params(params_path, overrides or [])
    todo = list(shards or [])
    gen = {s: shard_task.submit(params, "generated", s) for s in todo}
    lab = {s: shard_task.submit(params, "labelled", s, wait_for=[gen[s]]) for s in todo}  # type: ignore[call-overload]
    where: dict[int, str] = {}
    errors: dict[int, str] = {}
    for s in todo:
        for fut in (gen[s], lab[s]):
            fut.wait()
            state = fut.state
            if state.is_completed():
                where[s] = fut.result()["ran_on"]
            elif s not in errors:
                exc = state.result(raise_on_failure=False) if state.is_failed() else None
                errors[s] = f"{type(exc).__name__}: {exc}" if isinstance(exc, BaseException) else \
                    (state.message or state.type.value)
    if errors:
        raise ShardFailures("\n".join(f"shard {s:05d}: {e}" for s, e in sorted(errors.items())))
    return {"ran_on": where}


@task(retries=1)
def prepare_label_task(params: Params) -> None:
    from synthgen.stages import prepare_label_dir

    prepare_label_dir(params)


@task(retries=1)
def curate_task(params: Params, skip_shards: list[int] | None = None) -> str:
    from synthgen.stages import run_curate

    # the flow ran the top-up rounds as tasks before (topup_rounds)
    return str(run_curate(params, progress=False, topup=False, skip_shards=skip_shards or []).out_dir)


@task(retries=1, task_run_name="topup-round-{round_}")
def topup_round_task(params: Params, round_: int) -> list[int]:
    """Plan one top-up round (the same function `synthgen curate` runs)."""
    from synthgen.stages import plan_topup_round

    return plan_topup_round(params, round_)


@task(retries=1, task_run_name="topup-render-label-{round_}")
def topup_shards_task(params: Params, round_: int, shards: list[int]) -> None:
    """Render and label one top-up round's shards (in the top-up folder)."""
    from synthgen.stages import run_generate, run_label, topup_params

    tparams = topup_params(params)
    run_generate(tparams, shards=shards, progress=False)
    run_label(tparams, shards=shards, progress=False)


def topup_rounds(params: Params) -> None:
    """The top-up rounds as tasks: plan a round, render and label it, plan the next from their
    curation. One more planning call trims rounds a previous run planned beyond this one's."""
    if not params.curate.topup.enabled:
        return
    for round_ in range(1, params.curate.topup.max_rounds + 2):
        shards = topup_round_task(params, round_)
        if not shards:
            break
        topup_shards_task(params, round_, shards)


@task(retries=1)
def publish_task(params: Params, failed_shards: dict[int, str] | None = None) -> dict[str, Any]:
    from synthgen.stages import run_publish

    r = run_publish(params, progress=False, failed_shards=failed_shards)
    return {"version": r.version, "path": str(r.version_dir), "rows": r.rows,
            "accepted": r.accepted, "splits": r.splits}


@task(retries=1)
def analyze_task(params: Params) -> str:
    from synthgen.stages import run_analyze

    return str(run_analyze(params, progress=False).files["report"])


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
    """DVC-commit the stages this run produced (and optionally git-commit/tag), then announce it.

    The headline metrics (``metrics/``, DVC outputs of curate, analyze and train) are written here,
    with the record, and only when it is made: a run that dvc.lock does not record (other params
    without ``save_params``, a data_dir outside the project) must not replace the recorded ones."""
    from prefect.events import emit_event

    from synthgen.tracking import export_metrics
    from synthgen.versioning import dvc_root, record_version

    refused = check_record(params, params_path, overrides or [], save_params, dvc_root())
    if refused:
        get_run_logger().warning("version %s not recorded with DVC: %s", published["version"], refused)
        recorded: dict[str, Any] = {"dvc_committed": [], "git_commit": None, "git_tag": None,
                                    "not_recorded": refused}
    else:
        for stage in ("curate", "analyze", "train"):
            if stage in stages:
                export_metrics(params, stage)
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


def run_shard_stages(params: Params, params_path: str, overrides: list[str] | None, shards: list[int],
                     runner: str, workers: int, dask_address: str | None,
                     shard_deployment: str | None, shards_per_run: int) -> dict[str, Any]:
    """Run the shard flow where asked; returns which shards failed (with their errors) and where
    each finished one ran. Done-ness comes from the shard files, not from messages."""
    from flows.scale import (
        failures_from_message,
        groups,
        run_shard_deployments,
        task_runner,
    )

    layout = Layout.from_params(params)
    if shard_deployment:
        out = run_shard_deployments(shard_deployment, groups(shards, shards_per_run),
                                    {"params_path": params_path, "overrides": overrides or []},
                                    done=lambda s: layout.shard_file("labelled", s).exists())
        failed = out["failed"]
        ran_on: dict[int, str] = out["ran_on"]
    else:
        sub = shard_flow.with_options(task_runner=task_runner(runner, workers or params.generate.workers,
                                                               dask_address))
        state = sub(params_path, overrides, shards, return_state=True)
        failed = {} if state.is_completed() else failures_from_message(state.message or "", shards)
        ran_on = state.result()["ran_on"] if state.is_completed() else {}
    missing = [s for s in shards if not layout.shard_file("labelled", s).exists()]
    return {"failed": {s: failed.get(s, "shard run ended without output") for s in missing},
            "ran_on": {int(k): v for k, v in ran_on.items()}}


@flow(
    name="generate-dataset",
    log_prints=True,
    description="plan -> generate -> label -> curate -> publish -> analyze, recorded with DVC",
)
def generate_dataset_flow(
    params_path: str = "params.yaml",
    overrides: list[str] | None = None,
    record: bool = True,
    analyze: bool = True,
    train: bool = False,
    runner: str = "process",
    workers: int = 0,
    dask_address: str | None = None,
    shard_deployment: str | None = None,
    shards_per_run: int = 1,
    save_params: bool = False,
) -> dict[str, Any]:
    """``train`` runs training in this flow; without it, a served `train-on-publish` deployment
    (``synthgen serve``) trains on the published event instead, and records it. ``runner``/``workers``/
    ``dask_address`` choose where shard tasks run; ``shard_deployment`` (e.g.
    ``generate-shards/shards``) sends them to a work pool as one flow run per ``shards_per_run``.
    ``save_params`` writes the run's params (``overrides``, another params file) into params.yaml so
    that dvc.lock can record them; without it such a run is not recorded."""
    logger = get_run_logger()
    params = load_params(params_path, overrides or [])
    shards = plan_task(params)
    prepare_label_task(params)
    logger.info("%d shards of up to %d specs", len(shards), params.plan.shard_size)
    outcome = run_shard_stages(params, params_path, overrides, shards, runner, workers, dask_address,
                               shard_deployment, shards_per_run)
    failed = outcome["failed"]
    if failed:
        logger.warning("%d of %d shards failed: %s", len(failed), len(shards),
                       "; ".join(f"shard {s}: {e}" for s, e in sorted(failed.items())))
    if len(failed) == len(shards):
        raise ShardFailures("every shard failed: " + "; ".join(f"shard {s:05d}: {e}" for s, e in sorted(failed.items())))
    if not failed:
        topup_rounds(params)
    curate_task(params, sorted(failed))
    published = publish_task(params, failed)
    stages = FLOW_STAGES[:5]
    summary: dict[str, Any] = {"dataset": params.dataset.name, **published,
                               "failed_shards": failed, "ran_on": outcome["ran_on"]}
    if analyze:
        summary["report"] = analyze_task(params)
        stages = stages + ["analyze"]
    if failed:
        # Published and named in its manifest and card, but never recorded, nor reported as success.
        raise ShardFailures(f"published version {published['version']} without {len(failed)} failed "
                            "shard(s), listed in its manifest and card: "
                            + "; ".join(f"shard {s:05d}: {e}" for s, e in sorted(failed.items())))
    if train:
        summary["train"] = train_task(params)
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
    runner: str = "process",
    workers: int = 0,
    dask_address: str | None = None,
    save_params: bool = False,
) -> dict[str, Any]:
    """Run the flow on this machine (shard tasks in a process pool or on a Dask cluster).

    The run holds every stage lock of its dataset for its whole length, as the CLI stages do: a
    concurrent `synthgen generate` or second `synthgen run` waits, then fails naming this run.
    Shard workers this process starts (a process pool, a local Dask cluster) inherit the locks;
    a remote Dask scheduler's workers are not its children, so with ``dask_address`` the shard
    writes rely on the per-shard fingerprints alone."""
    from flows.runtime import prefect_api
    from synthgen.locks import LOCK_ORDER, stage_locks

    params = load_params(params_path, overrides or [])
    locks = (contextlib.nullcontext() if dask_address
             else stage_locks(Layout.from_params(params).work_dir, LOCK_ORDER))
    with locks, prefect_api() as url:
        try:
            return generate_dataset_flow(params_path=params_path, overrides=overrides, record=record,
                                         analyze=analyze, train=train, runner=runner, workers=workers,
                                         dask_address=dask_address, save_params=save_params)
        except ShardFailures as err:
            from synthgen.errors import DataError

            raise DataError(str(err).splitlines()[0], where=params_path,
                            fix="fix the cause and re-run: only the missing shards are made") from None
        except Exception as err:
            if not lost_api(err):
                raise
            from synthgen.errors import SynthgenError

            raise SynthgenError(f"lost the Prefect server during the run ({type(err).__name__}: {err})",
                                where=url, fix="check that the server is up, then re-run: finished shards "
                                               "are kept and not redone") from None


def lost_api(err: BaseException) -> bool:
    """The Prefect API went away (server restarted past the client's retries, network cut)."""
    import httpx
    from prefect.exceptions import PrefectHTTPStatusError

    if isinstance(err, PrefectHTTPStatusError):
        return err.response.status_code >= 500
    return isinstance(err, (httpx.TransportError, ConnectionError))


if __name__ == "__main__":
    print(generate_dataset())
