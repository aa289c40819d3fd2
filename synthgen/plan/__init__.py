"""Plan stage: sample scene specs from params.yaml."""

from synthgen.plan.planner import plan_specs
from synthgen.spec import SceneSpec, read_plan, write_plan

__all__ = ["SceneSpec", "plan_specs", "read_plan", "write_plan"]
