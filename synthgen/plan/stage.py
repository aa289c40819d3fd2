"""The plan stage: params.yaml -> ``work/<name>/plan.parquet`` (one row per scene spec)."""

from __future__ import annotations

from pathlib import Path

from synthgen.paths import Layout
from synthgen.plan.config import PlanRun
from synthgen.plan.planner import plan_specs
from synthgen.spec import write_plan


def run_plan(params: PlanRun) -> Path:
    layout = Layout.from_params(params)
    specs = plan_specs(params.plan, params.seed)
    return write_plan(specs, layout.plan_file, params.plan.shard_size)
