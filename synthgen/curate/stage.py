"""The curate stage: all ``labelled`` shards -> ``curated/shard-K.parquet`` (same rows, plus
``accepted`` and ``reject_reasons``) and the controllability report.

Near duplicates span shards, so the decision is made once over the small columns of every
labelled shard (no images), then each shard is rewritten atomically with its rows' decisions.
Decisions are a pure function of the labelled rows and the params, so a resumed run that rewrites
only the missing shards writes the same values the finished ones hold.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from synthgen.curate.config import CurateRun
from synthgen.curate.core import Decisions, decide, decision_columns, with_decisions
from synthgen.curate.report import write_controllability
from synthgen.errors import DataError
from synthgen.io import sha256_file
from synthgen.paths import Layout
from synthgen.shards import (
    MARKER,
    StageResult,
    list_shards,
    prepare_stage_dir,
    read_parquet,
    write_parquet_atomic,
)

STAGE = "curated"
UPSTREAM = "labelled"


def labelled_shards(layout: Layout) -> list[int]:
    return list_shards(layout.stage_dir(UPSTREAM), "no labelled shards to curate",
                       fix="run `synthgen label` first")


def _fingerprint(params: CurateRun, layout: Layout) -> dict:
    try:
        upstream = json.loads((layout.stage_dir(UPSTREAM) / MARKER).read_text()).get("hash")
    except (OSError, ValueError):
        upstream = None
    ref = params.curate.identity_reference
    ref_hash = sha256_file(ref) if ref is not None and Path(ref).is_file() else None
    return {"curate": params.curate.model_dump(mode="json"), "upstream": upstream,
            "identity_reference": ref_hash}


def read_decision_frame(layout: Layout, shards: list[int]) -> tuple[pl.DataFrame, list[int]]:
    """The small columns of every labelled shard, stacked, and each shard's row count."""
    parts, sizes = [], []
    for s in shards:
        path = layout.shard_file(UPSTREAM, s)
        cols = decision_columns(pq.read_schema(path))
        part = read_parquet(path, columns=cols)
        parts.append(part)
        sizes.append(part.num_rows)
    table = pa.concat_tables(parts, promote_options="default")
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame, sizes


def run_curate(params: CurateRun, progress: bool = True) -> StageResult:
    layout = Layout.from_params(params)
    out_dir = layout.stage_dir(STAGE)
    prepare_stage_dir(out_dir, _fingerprint(params, layout))
    shards = labelled_shards(layout)
    frame, sizes = read_decision_frame(layout, shards)
    decisions = decide(frame, params.curate)
    result = StageResult(STAGE, out_dir)
    columns = [TextColumn("[bold]curate[/]"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    start = 0
    with Progress(*columns, disable=not progress, transient=False) as bar:
        task = bar.add_task("curate", total=len(shards))
        for shard, size in zip(shards, sizes):
            part = Decisions(decisions.reasons[start: start + size])
            ids = frame.get_column("sample_id")[start: start + size].to_list()
            start += size
            target = layout.shard_file(STAGE, shard)
            if target.exists():
                result.skipped.append(shard)
            else:
                table = read_parquet(layout.shard_file(UPSTREAM, shard))
                if table.column("sample_id").to_pylist() != ids:
                    raise DataError("labelled shard changed while curating", where=str(target),
                                    fix="re-run `synthgen curate`")
                write_parquet_atomic(with_decisions(table, part), target,
                                     row_group_size=params.publish.row_group_size)
                result.written.append(shard)
            bar.advance(task)
    curated = frame.with_columns(
        pl.Series("accepted", decisions.accepted, dtype=pl.Boolean),
        pl.Series("reject_reasons", decisions.reasons, dtype=pl.List(pl.String)),
    )
    write_controllability(curated, layout.reports_dir / "controllability.json",
                          layout.reports_dir / "controllability", notes=decisions.notes)
    return result
