"""The plan stage's core: which planner makes the specs (random, coverage, targeted, sequence).

The planners share their primitives in ``synthgen.plan.sampling``; this module only dispatches, so
no planner imports it back.
"""

from __future__ import annotations

from synthgen.plan.config import PlanParams
from synthgen.plan.coverage import plan_coverage
from synthgen.plan.sampling import plan_random
from synthgen.plan.sequence import plan_sequences
from synthgen.plan.targeted import plan_targeted
from synthgen.spec import SceneSpec


def plan_specs(params: PlanParams, seed: int) -> list[SceneSpec]:
    """The plan stage's core: random sampling, or gap filling when ``mode: targeted``."""
    if params.kind == "sequence":
        return plan_sequences(params, seed)
    if params.mode == "coverage":
        return plan_coverage(params, seed)
    if params.mode == "targeted":
        return plan_targeted(params, seed)
    return plan_random(params, seed)


def effective_shard_size(params: PlanParams) -> int:
    """Specs per shard: for clips, a whole number of clips (at least one), so a shard holds each of
    its clips whole and in frame order."""
    if params.kind != "sequence":
        return params.shard_size
    frames = params.sequence.frames
    return max(1, params.shard_size // frames) * frames
