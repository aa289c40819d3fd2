"""The curate stage: all ``labelled`` shards -> ``curated/shard-K.parquet`` (same rows, plus
``accepted`` and ``reject_reasons``) and the controllability report.

Near duplicates span shards, so the decision is made once over the small columns of every
labelled shard (no images), then each shard is rewritten atomically with its rows' decisions.
Decisions are a pure function of the labelled rows and the params, so a resumed run that rewrites
only the missing shards writes the same values the finished ones hold. To keep that true, curate
refuses an incomplete labelled folder (or one made with other params), and its fingerprint covers
the content of the rows it decided over: curated shards decided over another labelled set are
redone, never kept.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from synthgen.curate.config import CurateRun
from synthgen.curate.core import Decisions, decide, decision_columns, with_decisions
from synthgen.curate.report import write_controllability
from synthgen.errors import DataError
from synthgen.io import sha256_file, stable_hash
from synthgen.lineage import label_hash, require_plan
from synthgen.locks import stage_locks, stages_up_to
from synthgen.paths import Layout
from synthgen.shards import (
    StageResult,
    list_shards,
    prepare_stage_dir,
    read_parquet,
    require_stage,
    shard_done,
    write_parquet_atomic,
)

STAGE = "curated"
UPSTREAM = "labelled"


def labelled_shards(layout: Layout) -> list[int]:
    return list_shards(layout.stage_dir(UPSTREAM), "no labelled shards to curate",
                       fix="run `synthgen label` first")


def _content_digest(table: pa.Table) -> str:
    """SHA-256 of the rows curation decides over (Arrow IPC bytes of the small columns)."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest()


def _fingerprint(params: CurateRun, rows_digest: str) -> dict:
    ref = params.curate.identity_reference
    ref_hash = sha256_file(ref) if ref is not None and Path(ref).is_file() else None
    return {"curate": params.curate.model_dump(mode="json"), "upstream": label_hash(params),
            "identity_reference": ref_hash, "rows": rows_digest}


def read_decision_table(layout: Layout, shards: list[int]) -> tuple[pa.Table, list[int]]:
    """The small columns of every labelled shard, stacked (Arrow), and each shard's row count."""
    parts, sizes = [], []
    for s in shards:
        path = layout.shard_file(UPSTREAM, s)
        cols = decision_columns(pq.read_schema(path))
        part = read_parquet(path, columns=cols)
        parts.append(part)
        sizes.append(part.num_rows)
    return pa.concat_tables(parts, promote_options="default"), sizes


def read_decision_frame(layout: Layout, shards: list[int]) -> tuple[pl.DataFrame, list[int]]:
    """The small columns of every labelled shard, stacked, and each shard's row count."""
    table, sizes = read_decision_table(layout, shards)
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame, sizes


def run_curate(params: CurateRun, progress: bool = True) -> StageResult:
    layout = Layout.from_params(params)
    with stage_locks(layout.work_dir, stages_up_to("curated")):
        return _run_curate(params, layout, progress)


def _run_curate(params: CurateRun, layout: Layout, progress: bool) -> StageResult:
    out_dir = layout.stage_dir(STAGE)
    shards = require_plan(params)
    require_stage(layout.stage_dir(UPSTREAM), shards, lambda s: layout.shard_file(UPSTREAM, s),
                  label_hash(params), "synthgen label")
    table, sizes = read_decision_table(layout, shards)
    fingerprint = _fingerprint(params, _content_digest(table))
    digest = stable_hash(fingerprint)
    prepare_stage_dir(out_dir, fingerprint, digest)
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    decisions = decide(frame, params.curate)
    result = StageResult(STAGE, out_dir)
    columns = [TextColumn("[bold]curate[/]"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    start = 0
    with Progress(*columns, disable=not progress, transient=False) as bar:
        task = bar.add_task("curate", total=len(shards))
        for shard, size in zip(shards, sizes, strict=True):
            part = Decisions(decisions.reasons[start: start + size])
            ids = frame.get_column("sample_id")[start: start + size].to_list()
            start += size
            target = layout.shard_file(STAGE, shard)
            if shard_done(target, digest):
                result.skipped.append(shard)
            else:
                full = read_parquet(layout.shard_file(UPSTREAM, shard))
                if full.column("sample_id").to_pylist() != ids:
                    raise DataError("labelled shard changed while curating", where=str(target),
                                    fix="re-run `synthgen curate`")
                write_parquet_atomic(with_decisions(full, part), target,
                                     row_group_size=params.publish.row_group_size, stage_hash=digest)
                result.written.append(shard)
            bar.advance(task)
    curated = frame.with_columns(
        pl.Series("accepted", decisions.accepted, dtype=pl.Boolean),
        pl.Series("reject_reasons", decisions.reasons, dtype=pl.List(pl.String)),
    )
    write_controllability(curated, layout.reports_dir / "controllability.json",
                          layout.reports_dir / "controllability", notes=decisions.notes)
    _write_ncap(params, layout, curated)
    return result


def _write_ncap(params: CurateRun, layout: Layout, curated: pl.DataFrame) -> None:
    """The Euro NCAP coverage matrix of this run (synthgen.curate.ncap_report)."""
    from synthgen.curate.ncap_report import write_ncap_report
    from synthgen.plan.coverage import coverage_cells
    from synthgen.spec import read_plan

    if "req_occluder" not in curated.columns:
        return  # rows made before the conditions existed
    coverage = params.plan.mode == "coverage"
    planned = [s.model_dump() for s in read_plan(layout.plan_file)] if layout.plan_file.exists() else []
    rows = curated.select([c for c in curated.columns if c.startswith("req_")]).to_dicts()
    write_ncap_report(planned, rows, curated.get_column("accepted").to_list(), layout.reports_dir,
                      coverage_cells(params.plan) if coverage else (),
                      params.plan.coverage.min_count if coverage else 1)
