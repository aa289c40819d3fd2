"""The one door into every stage: the CLI, the DVC stages (through the CLI) and the Prefect flows
call these functions and nothing else of the stage packages.

Each stage is a plain function of the assembled ``Params``. Shard stages come in three parts so that
a flow can run shards as tasks: ``prepare_<stage>`` (ready the output folder, list the shards),
``<stage>_shard(params, shard)`` (one shard), and ``run_<stage>`` (all of them, with a process pool).

Stage modules are imported when a function is called, so that ``synthgen --help`` or
``synthgen plan`` does not load the face models, torch or diffusers. This module also wires what
stages must not do themselves: it resolves the real reference (building the offline demo set
through the ``real`` stage) before handing a plain ``Reference`` to ``analyze`` and ``train``.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import pyarrow.parquet as pq

from synthgen.config import Params
from synthgen.reference import Reference
from synthgen.shards import StageResult

if TYPE_CHECKING:
    from synthgen.analyze.result import AnalysisResult
    from synthgen.publish.stage import PublishResult
    from synthgen.train.runner import TrainResult

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")


def _rows(folder: Path) -> int:
    """Rows in a stage folder's shards, from the Parquet footers (no data read)."""
    return sum(pq.ParquetFile(p).metadata.num_rows for p in sorted(folder.glob("shard-*.parquet")))


def _summary(result: Any) -> str:
    if isinstance(result, StageResult):
        return (f"{len(result.written)} shard(s) written, {len(result.skipped)} kept, "
                f"{_rows(result.out_dir)} rows in {result.out_dir}")
    if hasattr(result, "rows") and hasattr(result, "accepted"):
        return f"version {result.version}: {result.rows} rows, {result.accepted} accepted, splits {result.splits}"
    return str(result)


def _logged(stage: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Log a whole-stage summary at INFO (what it wrote, how many rows, how long it took)."""

    def deco(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            start = time.perf_counter()
            result = fn(*args, **kwargs)
            logger.info("%s: %s (%.1f s)", stage, _summary(result), time.perf_counter() - start)
            return result

        return wrapper

    return deco


__all__ = [
    "run_plan",
    "prepare_generate", "generate_shard", "run_generate",
    "prepare_label", "prepare_label_dir", "label_shard", "run_label",
    "run_curate", "run_publish", "run_analyze", "run_train",
    "verify_dataset", "resolve_reference", "Reference", "StageResult",
]


@_logged("plan")
def run_plan(params: Params) -> Path:
    from synthgen.plan.stage import run_plan as fn

    return fn(params)


def prepare_generate(params: Params) -> list[int]:
    from synthgen.generate.stage import prepare_generate as fn

    return fn(params)


def generate_shard(params: Params, shard: int) -> Path:
    from synthgen.generate.stage import generate_shard as fn

    return fn(params, shard)


@_logged("generate")
def run_generate(params: Params, shards: list[int] | None = None, progress: bool = True) -> StageResult:
    from synthgen.generate.stage import run_generate as fn

    return fn(params, shards=shards, progress=progress)


def prepare_label_dir(params: Params) -> None:
    """Ready the label folder without listing shards (a flow calls it while generation runs)."""
    from synthgen.label.stage import prepare_label_dir as fn

    fn(params)


def prepare_label(params: Params) -> list[int]:
    from synthgen.label.stage import prepare_label as fn

    return fn(params)


def label_shard(params: Params, shard: int) -> Path:
    from synthgen.label.stage import label_shard as fn

    return fn(params, shard)


@_logged("label")
def run_label(params: Params, shards: list[int] | None = None, progress: bool = True) -> StageResult:
    from synthgen.label.stage import run_label as fn

    return fn(params, shards=shards, progress=progress)


@_logged("curate")
def run_curate(params: Params, progress: bool = True) -> StageResult:
    import polars as pl

    from synthgen.curate.core import reject_summary
    from synthgen.curate.stage import run_curate as fn

    result = fn(params, progress=progress)
    files = sorted(result.out_dir.glob("shard-*.parquet"))
    if files:
        reasons = {r["reason"]: r["rows"] for r in reject_summary(pl.scan_parquet(files)).iter_rows(named=True)}
        logger.info("curate: rejects by reason %s", reasons or "none")
    return result


@_logged("publish")
def run_publish(params: Params, source_stage: str = "curated", progress: bool = True) -> PublishResult:
    from synthgen.publish.stage import run_publish as fn

    return fn(params, source_stage=source_stage, progress=progress)


def verify_dataset(dataset_dir: Path, version: str | None = None) -> tuple[list[Path], list[str]]:
    """Check published versions against their manifests (``synthgen verify``)."""
    from synthgen.publish.stage import verify_dataset as fn

    return fn(dataset_dir, version)


def resolve_reference(params: Params, setting: str | Path | None, progress: bool = True) -> Reference:
    """The real reference a setting names: a Parquet file/folder, or (None / ``"demo"``) the small
    offline demo set built from face photos shipped in installed packages."""
    if setting is None or str(setting) == "demo":
        from synthgen.real.demo import build_demo_reference

        path = Path(build_demo_reference(params, progress=progress))
        return Reference(path, f"DEMO ({path})", demo=True)
    path = Path(setting).expanduser()
    return Reference(path, str(path))


@_logged("analyze")
def run_analyze(params: Params, progress: bool = True) -> AnalysisResult:
    from synthgen.analyze.stage import run_analyze as fn

    return fn(params, resolve_reference(params, params.analyze.reference, progress), progress=progress)


@_logged("train")
def run_train(params: Params, progress: bool = True) -> TrainResult:
    from synthgen.train.stage import run_train as fn

    return fn(params, progress=progress)
