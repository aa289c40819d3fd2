"""The curate stage: all ``labelled`` shards -> ``curated/shard-K.parquet`` (same rows, plus
``accepted`` and ``reject_reasons``) and the controllability report.

Near duplicates span shards, so the decision is made once over the small columns of every
labelled shard (no images), then each shard is rewritten atomically with its rows' decisions.
Decisions are a pure function of the labelled rows and the params, so a resumed run that rewrites
only the missing shards writes the same values the finished ones hold.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
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
from synthgen.paths import Layout, topup_params
from synthgen.shards import (
    MARKER,
    StageResult,
    list_shards,
    prepare_stage_dir,
    read_parquet,
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


def sources(params: CurateRun, max_round: int | None = None) -> list[Source]:
    """The plan's labelled shards, then (top-up enabled) those of every top-up round in its plan
    (up to ``max_round``)."""
    layout = Layout.from_params(params)
    out = [Source(s, layout.shard_file(UPSTREAM, s), 0) for s in labelled_shards(layout)]
    plan = topup_plan_file(params)
    if params.curate.topup.enabled and plan.exists():
        top = Layout.from_params(topup_params(params))
        for shard, round_ in plan_rounds(plan).items():
            if max_round is not None and round_ > max_round:
                continue
            path = top.shard_file(UPSTREAM, shard)
            if not path.exists():
                raise DataError(f"top-up round {round_} is not labelled (shard {shard} missing)", where=str(path),
                                fix="run `synthgen curate` again (it finishes the top-up rounds)")
            out.append(Source(shard, path, round_))
    return out


def _fingerprint(params: CurateRun, layout: Layout) -> dict:
    try:
        upstream = json.loads((layout.stage_dir(UPSTREAM) / MARKER).read_text()).get("hash")
    except (OSError, ValueError):
        upstream = None
    ref = params.curate.identity_reference
    ref_hash = sha256_file(ref) if ref is not None and Path(ref).is_file() else None
    plan = topup_plan_file(params)
    topup = sha256_file(plan) if params.curate.topup.enabled and plan.exists() else None
    return {"curate": params.curate.model_dump(mode="json"), "upstream": upstream,
            "identity_reference": ref_hash, "topup_plan": topup}


def read_decision_frame(srcs: list[Source]) -> tuple[pl.DataFrame, list[int]]:
    """The small columns of every labelled shard, stacked, with each row's ``topup_round``, and
    each shard's row count."""
    parts, sizes = [], []
    for src in srcs:
        cols = decision_columns(pq.read_schema(src.path))
        part = read_parquet(src.path, columns=cols)
        part = part.append_column("topup_round", pa.array([src.round] * part.num_rows, pa.int32()))
        parts.append(part)
        sizes.append(part.num_rows)
    table = pa.concat_tables(parts, promote_options="default")
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame, sizes


def curation_frame(params: CurateRun, max_round: int | None = None,
                   ) -> tuple[pl.DataFrame, Decisions, list[Source], list[int]]:
    """Every labelled row (plan and top-up rounds up to ``max_round``) with ``accepted`` and
    ``reject_reasons``. Decisions are made over all rows together (near duplicates span shards and
    rounds)."""
    srcs = sources(params, max_round)
    frame, sizes = read_decision_frame(srcs)
    decisions = decide(frame, params.curate)
    curated = frame.with_columns(
        pl.Series("accepted", decisions.accepted, dtype=pl.Boolean),
        pl.Series("reject_reasons", decisions.reasons, dtype=pl.List(pl.String)),
    )
    return curated, decisions, srcs, sizes


def run_curate(params: CurateRun, progress: bool = True) -> StageResult:
    layout = Layout.from_params(params)
    out_dir = layout.stage_dir(STAGE)
    layout.topup_root.mkdir(parents=True, exist_ok=True)  # an output of the DVC curate stage, even when empty
    prepare_stage_dir(out_dir, _fingerprint(params, layout))
    curated, decisions, srcs, sizes = curation_frame(params)
    result = StageResult(STAGE, out_dir)
    columns = [TextColumn("[bold]curate[/]"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    start = 0
    with Progress(*columns, disable=not progress, transient=False) as bar:
        task = bar.add_task("curate", total=len(srcs))
        for src, size in zip(srcs, sizes):
            shard = src.shard
            part = Decisions(decisions.reasons[start: start + size])
            ids = curated.get_column("sample_id")[start: start + size].to_list()
            start += size
            target = layout.shard_file(STAGE, shard)
            if target.exists():
                result.skipped.append(shard)
            else:
                table = read_parquet(src.path)
                if table.column("sample_id").to_pylist() != ids:
                    raise DataError("labelled shard changed while curating", where=str(target),
                                    fix="re-run `synthgen curate`")
                write_parquet_atomic(with_decisions(table, part), target,
                                     row_group_size=params.publish.row_group_size)
                result.written.append(shard)
            bar.advance(task)
    write_controllability(curated, layout.reports_dir / "controllability.json",
                          layout.reports_dir / "controllability", notes=decisions.notes,
                          coverage_attributes=_report_attributes(params))
    return result


def _report_attributes(params: CurateRun) -> list[str]:
    """Planned vs accepted is reported for the top-up's attributes (age, expression, gaze zone by
    default) whether or not the top-up runs, so a run without it shows what it would fix."""
    return list(dict.fromkeys([*params.curate.topup.attributes, "age_group", "expression", "gaze_zone"]))
