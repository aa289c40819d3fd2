"""The plan stage: params.yaml -> ``work/<name>/plan.parquet`` (one row per scene spec).

The plan carries the hash of the params that made it (seed and plan section), so generate can
refuse a plan made with other params instead of rendering it into this dataset's folders
(``synthgen.lineage.require_plan``).
"""

from __future__ import annotations

from pathlib import Path

from synthgen.lineage import plan_hash
from synthgen.locks import stage_locks
from synthgen.paths import Layout
from synthgen.plan.config import PlanRun
from synthgen.plan.planner import effective_shard_size, plan_specs
from synthgen.spec import write_plan


def run_plan(params: PlanRun) -> Path:
    layout = Layout.from_params(params)
    with stage_locks(layout.work_dir, ["plan"]):
        specs = plan_specs(params.plan, params.seed)
        return write_plan(specs, layout.plan_file, effective_shard_size(params.plan), stage_hash=plan_hash(params))
