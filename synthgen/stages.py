"""Every stage as a plain function: the CLI, the DVC stages and the Prefect flows call these.

Heavy stages are imported lazily so that ``synthgen --help`` or ``synthgen plan`` stays fast.
Shard stages come in two forms: ``<stage>_shard(params, shard)`` for one shard (a Prefect task)
and ``run_<stage>(params, ...)`` for all shards (the CLI, with a process pool).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from synthgen.config import Params
from synthgen.generate.stage import generate_shard, run_generate
from synthgen.plan.stage import run_plan
from synthgen.publish.stage import PublishResult, run_publish
from synthgen.shards import StageResult

__all__ = [
    "run_plan", "run_generate", "generate_shard", "run_label", "label_shard", "run_curate",
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
    """Train; ``train.ood: demo`` is resolved here (the real stage builds it), so the train stage
    only ever sees a path to real rows and never imports the real stage."""
    from synthgen.train.stage import run_train as fn

    return fn(params, progress=progress, ood=_demo_ood(params, progress))


def _demo_ood(params: Params, progress: bool) -> Any:
    from synthgen.train.stage import OodSet

    if params.train.ood != "demo":
        return None  # a path or null: the train stage reads it as given
    try:
        from synthgen.real.demo import build_demo_reference
    except ImportError as err:
        return OodSet(None, f"skipped: demo real set unavailable ({err})")
    path = Path(build_demo_reference(params, out_dir=None, progress=progress))
    return OodSet(path, f"demo real faces (`{path}`)")
