"""The label stage: ``generated/shard-K.parquet`` -> ``labelled/shard-K.parquet`` (same rows, plus
``meas_*``)."""

from __future__ import annotations

import json
from pathlib import Path

from synthgen.label.config import LabelRun
from synthgen.label.pipeline import get_labelers, label_rows
from synthgen.paths import Layout
from synthgen.shards import (
    MARKER,
    StageResult,
    default_workers,
    list_shards,
    prepare_stage_dir,
    read_parquet,
    run_sharded,
    write_parquet_atomic,
)

STAGE = "labelled"
UPSTREAM = "generated"


def label_shard(params: LabelRun, shard: int) -> Path:
    layout = Layout.from_params(params)
    table = read_parquet(layout.shard_file(UPSTREAM, shard))
    out = label_rows(table, params.label, progress=False)
    return write_parquet_atomic(out, layout.shard_file(STAGE, shard), row_group_size=params.publish.row_group_size)


def upstream_shards(layout: Layout) -> list[int]:
    return list_shards(layout.stage_dir(UPSTREAM), "no generated shards to label",
                       fix="run `synthgen generate` first")


def upstream_fingerprint(layout: Layout) -> str | None:
    marker = layout.stage_dir(UPSTREAM) / MARKER
    try:
        return json.loads(marker.read_text()).get("hash")
    except (OSError, ValueError):
        return None


def prepare_label_dir(params: LabelRun) -> None:
    """Ready the output folder, keeping finished shards when the label params and the generated
    shards' fingerprint are unchanged. The dataset version is not part of the fingerprint: it
    also hashes curate params, which do not change labels. Needs only the generate stage's
    marker, so a flow can call it while shards are still being generated."""
    layout = Layout.from_params(params)
    get_labelers(params.label)  # a list that cannot work fails here, before old shards are discarded
    prepare_stage_dir(
        layout.stage_dir(STAGE),
        {"label": params.label.model_dump(mode="json"), "upstream": upstream_fingerprint(layout)},
    )


def prepare_label(params: LabelRun) -> list[int]:
    """Ready the output folder and list the generated shards to label."""
    prepare_label_dir(params)
    return upstream_shards(Layout.from_params(params))


def run_label(params: LabelRun, shards: list[int] | None = None, progress: bool = True) -> StageResult:
    """Label every generated shard whose labelled copy is missing.

    Parallelism: with several shards to do, one shard per core (each labels its rows in one
    process); with a single shard, that shard's rows are spread over the cores instead."""
    layout = Layout.from_params(params)
    all_shards = prepare_label(params)
    todo = shards if shards is not None else all_shards
    workers = default_workers(params.label.workers)
    pending = [s for s in todo if not layout.shard_file(STAGE, s).exists()]
    shard_workers = workers if len(pending) > 1 else 1
    if shard_workers > 1:
        params = params.model_copy(update={"label": params.label.model_copy(update={"workers": 1})})
    return run_sharded(STAGE, label_shard, params, todo, lambda s: layout.shard_file(STAGE, s),
                       shard_workers, progress)
