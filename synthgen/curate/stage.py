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
import logging
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from synthgen.curate.config import CurateRun
from synthgen.curate.core import Decisions, decide, decision_columns, with_decisions
from synthgen.curate.report import label_agreement, write_controllability
from synthgen.errors import DataError
from synthgen.io import sha256_file, stable_hash, write_json_atomic
from synthgen.lineage import label_hash, require_plan
from synthgen.locks import stage_locks, stages_up_to
from synthgen.paths import CURATED_AGREEMENT, CURATED_COVERAGE, Layout, topup_params
from synthgen.shards import (
    StageResult,
    list_shards,
    prepare_stage_dir,
    read_parquet,
    require_stage,
    shard_done,
    write_parquet_atomic,
)
from synthgen.spec import plan_rounds

logger = logging.getLogger(__name__)

STAGE = "curated"
UPSTREAM = "labelled"


def labelled_shards(layout: Layout) -> list[int]:
    return list_shards(layout.stage_dir(UPSTREAM), "no labelled shards to curate",
                       fix="run `synthgen label` first")


@dataclass(frozen=True)
class Source:
    """One labelled shard to curate: its number (also the curated shard's), file and top-up round
    (0: the plan's own shards)."""

    shard: int
    path: Path
    round: int


def topup_plan_file(params: CurateRun) -> Path:
    return Layout.from_params(topup_params(params)).plan_file


def sources(params: CurateRun, max_round: int | None = None, skip: Collection[int] = ()) -> list[Source]:
    """The plan's labelled shards, then (top-up enabled) those of every top-up round in the top-up
    plan (up to ``max_round``), after checking each folder is complete and made with these params."""
    layout = Layout.from_params(params)
    shards = [s for s in require_plan(params) if s not in skip]
    require_stage(layout.stage_dir(UPSTREAM), shards, lambda s: layout.shard_file(UPSTREAM, s),
                  label_hash(params), "synthgen label")
    out = [Source(s, layout.shard_file(UPSTREAM, s), 0) for s in shards]
    # max_round 0 (planning round 1) reads no top-up row, so a top-up folder left by other params
    # (another seed) is not checked here: round 1 replaces it.
    if params.curate.topup.enabled and topup_plan_file(params).exists() and (max_round is None or max_round > 0):
        tparams = topup_params(params)
        top = Layout.from_params(tparams)
        require_plan(tparams)
        rounds = {s: r for s, r in plan_rounds(top.plan_file).items() if max_round is None or r <= max_round}
        if rounds:  # planning round 1 reads no top-up shard (and a killed round 1 may have labelled none)
            require_stage(top.stage_dir(UPSTREAM), list(rounds), lambda s: top.shard_file(UPSTREAM, s),
                          label_hash(tparams), "synthgen curate")
        out += [Source(s, top.shard_file(UPSTREAM, s), r) for s, r in rounds.items()]
    return out


def _content_digest(table: pa.Table) -> str:
    """SHA-256 of the rows curation decides over (Arrow IPC bytes of the small columns)."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest()


def _fingerprint(params: CurateRun, rows_digest: str) -> dict:
    """The rows' digest covers the top-up rows too (and their rounds, a column of the table)."""
    ref = params.curate.identity_reference
    ref_hash = sha256_file(ref) if ref is not None and Path(ref).is_file() else None
    return {"curate": params.curate.model_dump(mode="json"), "upstream": label_hash(params),
            "identity_reference": ref_hash, "rows": rows_digest}


def read_decision_table(srcs: list[Source]) -> tuple[pa.Table, list[int]]:
    """The small columns of every labelled shard, stacked (Arrow), with each row's
    ``topup_round``, and each shard's row count."""
    parts, sizes = [], []
    for src in srcs:
        cols = decision_columns(pq.read_schema(src.path))
        part = read_parquet(src.path, columns=cols)
        part = part.append_column("topup_round", pa.array([src.round] * part.num_rows, pa.int32()))
        parts.append(part)
        sizes.append(part.num_rows)
    return pa.concat_tables(parts, promote_options="default"), sizes


def _decide(table: pa.Table, params: CurateRun) -> tuple[pl.DataFrame, Decisions]:
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    decisions = decide(frame, params.curate)
    curated = frame.with_columns(
        pl.Series("accepted", decisions.accepted, dtype=pl.Boolean),
        pl.Series("reject_reasons", decisions.reasons, dtype=pl.List(pl.String)),
    )
    return curated, decisions


def curation_frame(params: CurateRun, max_round: int | None = None) -> pl.DataFrame:
    """Every labelled row (plan and top-up rounds up to ``max_round``) with ``accepted`` and
    ``reject_reasons``. Decisions are made over all rows together (near duplicates span shards and
    rounds)."""
    return _decide(read_decision_table(sources(params, max_round))[0], params)[0]


def run_curate(params: CurateRun, progress: bool = True, skip_shards: Collection[int] = ()) -> StageResult:
    """``skip_shards``: planned shards a run could not make (named as failed at publish)."""
    layout = Layout.from_params(params)
    with stage_locks(layout.work_dir, stages_up_to("curated")):
        return _run_curate(params, layout, progress, set(skip_shards))


def _run_curate(params: CurateRun, layout: Layout, progress: bool, skip: set[int]) -> StageResult:
    out_dir = layout.stage_dir(STAGE)
    layout.topup_root.mkdir(parents=True, exist_ok=True)  # an output of the DVC curate stage, even when empty
    srcs = sources(params, skip=skip)
    table, sizes = read_decision_table(srcs)
    fingerprint = _fingerprint(params, _content_digest(table))
    digest = stable_hash(fingerprint)
    prepare_stage_dir(out_dir, fingerprint, digest)
    curated, decisions = _decide(table, params)
    result = StageResult(STAGE, out_dir)
    columns = [TextColumn("[bold]curate[/]"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    start = 0
    with Progress(*columns, disable=not progress, transient=False) as bar:
        task = bar.add_task("curate", total=len(srcs))
        for src, size in zip(srcs, sizes, strict=True):
            shard = src.shard
            part = Decisions(decisions.reasons[start: start + size])
            ids = curated.get_column("sample_id")[start: start + size].to_list()
            start += size
            target = layout.shard_file(STAGE, shard)
            if shard_done(target, digest):
                result.skipped.append(shard)
            else:
                full = read_parquet(src.path)
                if full.column("sample_id").to_pylist() != ids:
                    raise DataError("labelled shard changed while curating", where=str(target),
                                    fix="re-run `synthgen curate`")
                write_parquet_atomic(with_decisions(full, part), target,
                                     row_group_size=params.publish.row_group_size, stage_hash=digest)
                result.written.append(shard)
            bar.advance(task)
    report = write_controllability(curated, layout.reports_dir / "controllability.json",
                                   layout.reports_dir / "controllability", notes=decisions.notes,
                                   coverage_attributes=_report_attributes(params))
    _write_ncap(params, layout, curated)
    # The label agreement and planned-vs-accepted figures travel with the curated shards (publish
    # puts them in the manifest and the card); coverage is written last, so a killed curate leaves
    # none and publish refuses.
    write_json_atomic(out_dir / CURATED_AGREEMENT, label_agreement(report))
    write_json_atomic(out_dir / CURATED_COVERAGE, report.get("planned_vs_accepted", {}))
    return result


def _report_attributes(params: CurateRun) -> list[str]:
    """Planned vs accepted is reported for the top-up's attributes (age, expression, gaze zone by
    default) whether or not the top-up runs, so a run without it shows what it would fix."""
    return list(dict.fromkeys([*params.curate.topup.attributes, "age_group", "expression", "gaze_zone"]))


def _write_ncap(params: CurateRun, layout: Layout, curated: pl.DataFrame) -> None:
    """The Euro NCAP coverage matrix of this run (synthgen.curate.ncap_report)."""
    from synthgen.curate.ncap_report import write_ncap_report
    from synthgen.ncap import matrix_cells
    from synthgen.spec import read_plan

    if "req_occluder" not in curated.columns:
        return  # rows made before the conditions existed
    coverage = params.plan.mode == "coverage"
    planned = [s.model_dump() for s in read_plan(layout.plan_file)] if layout.plan_file.exists() else []
    rows = curated.select([c for c in curated.columns if c.startswith("req_")]).to_dicts()
    write_ncap_report(planned, rows, curated.get_column("accepted").to_list(), layout.reports_dir,
                      matrix_cells(params.plan.coverage) if coverage else (),
                      params.plan.coverage.min_count if coverage else 1)
