"""Plan stage: sample scene specs from params.yaml."""

from synthgen.plan.planner import plan_specs, read_plan, write_plan
from synthgen.plan.spec import SceneSpec

__all__ = ["SceneSpec", "plan_specs", "read_plan", "write_plan"]
