"""Every stage as a plain function: the CLI, the DVC stages and the Prefect flows call these.

Heavy stages are imported lazily so that ``synthgen --help`` or ``synthgen plan`` stays fast.
Shard stages come in two forms: ``<stage>_shard(params, shard)`` for one shard (a Prefect task)
and ``run_<stage>(params, ...)`` for all shards (the CLI, with a process pool).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from synthgen.config import Params
from synthgen.generate.stage import generate_shard, gpu_slots, run_generate
from synthgen.plan.stage import run_plan
from synthgen.publish.stage import PublishResult, run_publish
from synthgen.shards import StageResult

__all__ = [
    "run_plan", "run_generate", "generate_shard", "gpu_slots", "run_label", "label_shard", "run_curate",
    "run_publish", "run_analyze", "run_train", "PublishResult", "StageResult",
]


def label_shard(params: Params, shard: int) -> Path:
    from synthgen.label.stage import label_shard as fn

    return fn(params, shard)


def run_label(params: Params, shards: list[int] | None = None, progress: bool = True) -> StageResult:
    from synthgen.label.stage import run_label as fn

    return fn(params, shards=shards, progress=progress)


def run_curate(params: Params, progress: bool = True) -> StageResult:
    from synthgen.curate.stage import run_curate as fn

    return fn(params, progress=progress)


def run_analyze(params: Params, progress: bool = True) -> Any:
    from synthgen.analyze.stage import run_analyze as fn

    return fn(params, progress=progress)


def run_train(params: Params, progress: bool = True) -> Any:
    from synthgen.train.stage import run_train as fn

    return fn(params, progress=progress)
