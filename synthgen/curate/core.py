"""Deciding acceptance: run the filters over a table, collect every reason per row.

A row is accepted when no filter rejects it; rejected rows are kept with their reasons, so the
rejects stay queryable (``reject_summary``, ``synthgen query --reasons``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl
import pyarrow as pa

from synthgen.curate.base import build_filters
from synthgen.curate.config import CurateParams
from synthgen.errors import DataError

# Large columns no filter reads: left out of the decision frame to keep the cross-shard view small.
HEAVY_COLUMNS = frozenset({"image", "control_image", "meas_landmarks_478", "meas_landmarks_68",
                           "req_landmarks_478", "req_landmarks_68", "prompt",
                           "req_landmarks_478_visible", "req_occluder_mask", "sequence_events"})
CURATION_COLUMNS = ("accepted", "reject_reasons")


@dataclass
class Decisions:
    reasons: list[list[str]]
    notes: list[str] = field(default_factory=list)
    #: every reason code the configured filters can give, in report order
    codes: list[str] = field(default_factory=list)

    @property
    def accepted(self) -> list[bool]:
        return [not r for r in self.reasons]


def decision_columns(schema: pa.Schema) -> list[str]:
    return [n for n in schema.names if n not in HEAVY_COLUMNS and n not in CURATION_COLUMNS]


def decide(frame: pl.DataFrame, params: CurateParams) -> Decisions:
    """Reasons for every row of a labelled frame (needs the ``meas_*`` columns)."""
    if "meas_face_count" not in frame.columns:
        raise DataError("rows carry no meas_* columns: they were not labelled",
                        fix="run `synthgen label` (or synthgen.label.pipeline.label_rows) before curating")
    reasons: list[list[str]] = [[] for _ in range(frame.height)]
    notes: list[str] = []
    codes: list[str] = []
    for flt in build_filters(params):
        result = flt.apply(frame, reasons)
        notes += result.notes
        for code in flt.reasons:
            codes.append(code)
            mask = result.masks.get(code)
            if mask is None:
                continue
            for i in mask.nonzero()[0]:
                reasons[int(i)].append(code)
    return Decisions(reasons, notes, codes)


def with_decisions(table: pa.Table, decisions: Decisions) -> pa.Table:
    out = table.select([c for c in table.column_names if c not in CURATION_COLUMNS])
    out = out.append_column(pa.field("accepted", pa.bool_()), pa.array(decisions.accepted, pa.bool_()))
    return out.append_column(pa.field("reject_reasons", pa.list_(pa.string())),
                             pa.array(decisions.reasons, pa.list_(pa.string())))


def curate_table(table: pa.Table, params: CurateParams) -> pa.Table:
    """``table`` plus ``accepted`` (bool) and ``reject_reasons`` (list<string>, empty when accepted).
    Near duplicates are judged within this table only; the stage judges all shards together."""
    frame = pl.from_arrow(table.select(decision_columns(table.schema)))
    assert isinstance(frame, pl.DataFrame)
    return with_decisions(table, decide(frame, params))


def reject_summary(data: pl.LazyFrame | pl.DataFrame | pa.Table) -> pl.DataFrame:
    """Rows per reject reason (a row with two reasons counts under both), most frequent first:
    columns ``reason``, ``rows``, ``fraction`` (of all rows). Reads only ``reject_reasons``, so it is
    cheap on a lazy scan of many shards."""
    if isinstance(data, pa.Table):
        data = pl.DataFrame(pl.from_arrow(data.select(["reject_reasons"])))
    lazy = data.lazy() if isinstance(data, pl.DataFrame) else data
    if "reject_reasons" not in lazy.collect_schema().names():
        raise DataError("no reject_reasons column: these rows were not curated",
                        fix="run `synthgen curate` first")
    lazy = lazy.select("reject_reasons")
    total = lazy.select(pl.len()).collect().item()
    counts = (
        lazy.explode("reject_reasons")
        .drop_nulls("reject_reasons")
        .group_by("reject_reasons")
        .agg(pl.len().alias("rows"))
        .rename({"reject_reasons": "reason"})
        .collect()
    )
    return (counts.with_columns(rows=pl.col("rows").cast(pl.Int64),
                                fraction=pl.col("rows") / max(total, 1))
            .sort(["rows", "reason"], descending=[True, False]))
