"""The plan stage: params.yaml -> ``work/<name>/plan.parquet`` (one row per scene spec).

The plan carries the hash of the params that made it (seed and plan section), so generate can
refuse a plan made with other params instead of rendering it into this dataset's folders.
"""

from __future__ import annotations

from pathlib import Path

from synthgen.config import Params
from synthgen.errors import DataError
from synthgen.lineage import plan_hash
from synthgen.locks import stage_locks
from synthgen.paths import Layout
from synthgen.plan.planner import plan_shards, plan_specs, write_plan
from synthgen.shards import shard_hash


def run_plan(params: Params) -> Path:
    layout = Layout.from_params(params)
    with stage_locks(layout.work_dir, ["plan"]):
        specs = plan_specs(params.plan, params.seed)
        return write_plan(specs, layout.plan_file, params.plan.shard_size, stage_hash=plan_hash(params))


def require_plan(params: Params) -> list[int]:
    """The plan's shard numbers, after checking the plan exists and was made with these params."""
    layout = Layout.from_params(params)
    path = layout.plan_file
    if not path.exists():
        raise DataError("plan.parquet not found", where=str(path), fix="run `synthgen plan` first")
    have, want = shard_hash(path), plan_hash(params)
    if have != want:
        raise DataError(f"plan.parquet was made with other params (fingerprint {have}, these params "
                        f"expect {want}: seed or plan section differ)", where=str(path),
                        fix="run `synthgen plan` with these params")
    try:
        return plan_shards(path)
    except (OSError, ValueError) as err:
        raise DataError(f"plan.parquet is damaged ({err})", where=str(path),
                        fix="run `synthgen plan` again") from None
