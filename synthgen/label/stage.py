"""The label stage: ``generated/shard-K.parquet`` -> ``labelled/shard-K.parquet`` (same rows, plus
``meas_*``).

``synthgen label`` refuses a generated folder that is incomplete (a killed generate) or was made
with other params than its own; ``label_shard`` (one shard, as a flow task runs it) refuses a
generated shard that does not carry the generate fingerprint these params expect."""

from __future__ import annotations

from pathlib import Path

from synthgen.errors import DataError
from synthgen.label.config import LabelRun
from synthgen.label.pipeline import get_labelers, label_rows
from synthgen.lifeline import watch_parent_if_worker
from synthgen.lineage import generate_hash, label_fingerprint, label_hash, require_plan
from synthgen.locks import stage_locks, stages_up_to
from synthgen.paths import Layout
from synthgen.shards import (
    StageResult,
    default_workers,
    list_shards,
    marker_hash,
    prepare_stage_dir,
    read_parquet,
    require_stage,
    run_sharded,
    shard_done,
    shard_hash,
    write_parquet_atomic,
)

STAGE = "labelled"
UPSTREAM = "generated"


def label_shard(params: LabelRun, shard: int) -> Path:
    watch_parent_if_worker()  # a pool worker (e.g. a flow task) ends when its run is killed
    layout = Layout.from_params(params)
    src = layout.shard_file(UPSTREAM, shard)
    table = read_parquet(src)
    if shard_hash(src) != generate_hash(params):
        raise DataError(f"generated shard was made with other params (fingerprint {shard_hash(src)}, "
                        f"these params expect {generate_hash(params)})", where=str(src),
                        fix="run `synthgen generate` with these params")
    out = label_rows(table, params.label, progress=False)
    return write_parquet_atomic(out, layout.shard_file(STAGE, shard), row_group_size=params.publish.row_group_size,
                                stage_hash=label_hash(params))


def upstream_shards(layout: Layout) -> list[int]:
    return list_shards(layout.stage_dir(UPSTREAM), "no generated shards to label",
                       fix="run `synthgen generate` first")


def upstream_fingerprint(layout: Layout) -> str | None:
    return marker_hash(layout.stage_dir(UPSTREAM))


def prepare_label_dir(params: LabelRun) -> None:
    """Ready the output folder, keeping finished shards when the label params and the generated
    shards' fingerprint are unchanged. The dataset version is not part of the fingerprint: it
    also hashes curate params, which do not change labels. Needs only the generate stage's
    marker, so a flow can call it while shards are still being generated."""
    layout = Layout.from_params(params)
    get_labelers(params.label)  # a list that cannot work fails here, before old shards are discarded
    with stage_locks(layout.work_dir, ["labelled"]):
        prepare_stage_dir(layout.stage_dir(STAGE), label_fingerprint(params), label_hash(params))


def prepare_label(params: LabelRun) -> list[int]:
    """Check the generated folder is complete and made with these params, ready the output folder,
    and list the shards to label."""
    layout = Layout.from_params(params)
    expected = require_plan(params)
    require_stage(layout.stage_dir(UPSTREAM), expected, lambda s: layout.shard_file(UPSTREAM, s),
                  generate_hash(params), "synthgen generate")
    prepare_label_dir(params)
    return expected


def run_label(params: LabelRun, shards: list[int] | None = None, progress: bool = True) -> StageResult:
    """Label every generated shard whose labelled copy is missing.

    Parallelism: with several shards to do, one shard per core (each labels its rows in one
    process); with a single shard, that shard's rows are spread over the cores instead."""
    layout = Layout.from_params(params)
    with stage_locks(layout.work_dir, stages_up_to("labelled")):
        all_shards = prepare_label(params)
        todo = shards if shards is not None else all_shards
        workers = default_workers(params.label.workers)
        digest = label_hash(params)
        pending = [s for s in todo if not shard_done(layout.shard_file(STAGE, s), digest)]
        shard_workers = workers if len(pending) > 1 else 1
        if shard_workers > 1:
            params = params.model_copy(update={"label": params.label.model_copy(update={"workers": 1})})
        return run_sharded(STAGE, label_shard, params, todo, lambda s: layout.shard_file(STAGE, s),
                           shard_workers, progress, stage_hash=digest)
