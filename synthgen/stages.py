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
import math
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import pyarrow.parquet as pq

from synthgen.config import Params
from synthgen.paths import topup_params
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
    "prepare_generate", "generate_shard", "gpu_slots", "run_generate",
    "prepare_label", "prepare_label_dir", "label_shard", "run_label",
    "run_curate", "run_publish", "run_analyze", "run_train",
    "topup_params", "plan_topup_round", "run_topup", "clear_topup", "TopupResult",
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


def gpu_slots(params: Params) -> int:
    """GPUs one generate shard holds (the backend declares it): a scheduler takes that many slots."""
    from synthgen.generate.stage import gpu_slots as fn

    return fn(params)


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
def run_curate(params: Params, progress: bool = True, topup: bool = True,
               skip_shards: Collection[int] = ()) -> StageResult:
    """Curate every labelled row. With ``curate.topup.enabled`` (and ``topup``), first run the
    top-up rounds (``run_topup``), so the curated set holds the plan's rows and the rounds' rows.
    A flow that ran the rounds as tasks passes ``topup=False``: the finished rounds are curated
    either way. No top-up runs while plan shards are skipped (failed)."""
    import polars as pl

    from synthgen.curate.core import reject_summary
    from synthgen.curate.stage import run_curate as fn

    if not params.curate.topup.enabled:
        clear_topup(params)
    elif topup and not skip_shards:
        run_topup(params, progress=progress)
    result = fn(params, progress=progress, skip_shards=skip_shards)
    files = sorted(result.out_dir.glob("shard-*.parquet"))
    if files:
        reasons = {r["reason"]: r["rows"] for r in reject_summary(pl.scan_parquet(files)).iter_rows(named=True)}
        logger.info("curate: rejects by reason %s", reasons or "none")
    return result


def clear_topup(params: Params) -> None:
    """Forget earlier top-up rounds (top-up disabled): the top-up plan exists only while top-up is
    on, so the shards a curated folder must hold are always the plan's plus the top-up plan's."""
    from synthgen.paths import Layout

    tplan = Layout.from_params(topup_params(params)).plan_file
    _remove_topup_shards(params, set())
    tplan.unlink(missing_ok=True)


# --- top-up rounds: they cross stages (curate -> plan -> generate -> label), so they live here ---

@dataclass
class TopupRound:
    round: int
    specs: int
    shards: list[int]
    render_s: float = 0.0
    label_s: float = 0.0


@dataclass
class TopupResult:
    rounds: list[TopupRound] = field(default_factory=list)
    budget: int = 0

    @property
    def specs(self) -> int:
        return sum(r.specs for r in self.rounds)


def topup_budget(params: Params) -> int:
    """Most extra specs over all rounds."""
    return int(math.floor(params.curate.topup.budget * params.plan.n))


def _remove_topup_shards(params: Params, keep: set[int]) -> None:
    """Delete top-up shards a rewritten top-up plan no longer lists (their numbers may be reused
    by the new round's specs, and a finished shard file is never re-rendered)."""
    from synthgen.paths import Layout

    layout = Layout.from_params(topup_params(params))
    for stage in ("generated", "labelled"):
        for path in sorted(layout.stage_dir(stage).glob("shard-*.parquet")):
            if int(path.stem.split("-")[1]) not in keep:
                path.unlink()


def plan_topup_round(params: Params, round_: int) -> list[int]:
    """Plan top-up round ``round_`` (1-based) from the curation of the plan and rounds before it;
    the round's shard numbers (in the top-up folder, ``topup_params``), empty when no round is due
    (deficits closed, budget spent, or fewer than ``min_specs`` asked).

    Deterministic: the same params and labelled rows give the same specs, so a re-run finds the
    round already in the top-up plan and only finishes its missing shards. A round that comes out
    differently (params or labels changed) replaces it and every later round."""
    from synthgen.locks import stage_locks
    from synthgen.paths import Layout

    # one planner at a time in the top-up folder (generate and label lock their own stages there)
    with stage_locks(Layout.from_params(topup_params(params)).work_dir, ["plan"]):
        return _plan_topup_round(params, round_)


def _plan_topup_round(params: Params, round_: int) -> list[int]:
    from synthgen.balance import accepted_needed, renders_needed, unreachable
    from synthgen.curate.report import planned_vs_accepted
    from synthgen.curate.stage import curation_frame
    from synthgen.lineage import plan_hash
    from synthgen.paths import Layout
    from synthgen.plan.topup import plan_topup
    from synthgen.spec import read_plan, read_plan_rounds, write_plan

    cfg = params.curate.topup
    base = Layout.from_params(params)
    tplan = Layout.from_params(topup_params(params)).plan_file
    old_specs, old_rounds = (read_plan(tplan), read_plan_rounds(tplan)) if tplan.exists() else ([], [])
    prior = [(s, k) for s, k in zip(old_specs, old_rounds, strict=True) if k < round_]
    specs: list = []
    left = topup_budget(params) - len(prior)
    if round_ <= cfg.max_rounds and left >= cfg.min_specs:
        frame = curation_frame(params, max_round=round_ - 1)
        quotas = {}
        for a, cov in planned_vs_accepted(frame, cfg.attributes).items():
            need = accepted_needed(cov.planned, cov.accepted)
            quotas[a] = renders_needed(need, cov.acceptance(), cfg.min_rate, cov.requested, cfg.give_up_after)
            logger.info("top-up round %d: %s JSD %.4f bits, accepted rows needed %s%s", round_, a, cov.jsd,
                        {k: v for k, v in need.items() if v},
                        "".join(f"; {k} unreachable (0 of {cov.requested[k]} accepted)"
                                for k in unreachable(need, cov.acceptance(), cov.requested, cfg.give_up_after)))
        # Spread the budget over the rounds left: a later round plans with the acceptance rates
        # the earlier ones measured, instead of one round spending everything on a guess.
        share = math.ceil(left / (cfg.max_rounds - round_ + 1))
        n = min(share, max((sum(q.values()) for q in quotas.values()), default=0))
        if n >= cfg.min_specs:
            specs = plan_topup(params.plan, params.seed, round_, read_plan(base.plan_file) + [s for s, _ in prior],
                               quotas, n)
    new = [(s, k) for s, k in prior] + [(s, round_) for s in specs]
    if [(s.sample_id, k) for s, k in new] != [(s.sample_id, k) for s, k in zip(old_specs, old_rounds, strict=True)]:
        keep = {s.index // params.plan.shard_size for s, _ in prior}
        _remove_topup_shards(params, keep)  # before the plan is rewritten: a kill in between stays safe
        if new:
            # the plan params' hash, as the plan stage writes it: generate and label check it
            write_plan([s for s, _ in new], tplan, params.plan.shard_size, rounds=[k for _, k in new],
                       stage_hash=plan_hash(params))
        elif tplan.exists():
            tplan.unlink()
    if not specs:
        return []
    return sorted({s.index // params.plan.shard_size for s in specs})


def run_topup(params: Params, progress: bool = True) -> TopupResult:
    """The top-up rounds: plan a round, render and label its shards, repeat until no round is due.
    At most ``curate.topup.max_rounds`` rounds and ``budget * plan.n`` extra specs in all."""
    from synthgen.paths import Layout
    from synthgen.spec import read_plan_rounds

    result = TopupResult(budget=topup_budget(params))
    tparams = topup_params(params)
    tplan = Layout.from_params(tparams).plan_file
    for round_ in range(1, params.curate.topup.max_rounds + 2):  # the last call only trims the plan
        shards = plan_topup_round(params, round_)
        if not shards:
            break
        info = TopupRound(round_, sum(1 for k in read_plan_rounds(tplan) if k == round_), shards)
        t0 = time.perf_counter()
        run_generate(tparams, shards=shards, progress=progress)
        t1 = time.perf_counter()
        run_label(tparams, shards=shards, progress=progress)
        info.render_s, info.label_s = t1 - t0, time.perf_counter() - t1
        logger.info("top-up round %d: %d specs in shards %s (render %.1fs, label %.1fs)",
                    round_, info.specs, shards, info.render_s, info.label_s)
        result.rounds.append(info)
    return result



@_logged("publish")
def run_publish(params: Params, source_stage: str = "curated", progress: bool = True,
                failed_shards: dict[int, str] | None = None) -> PublishResult:
    from synthgen.publish.stage import run_publish as fn

    return fn(params, source_stage=source_stage, progress=progress, failed_shards=failed_shards)


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

    # train.ood: demo is built here, through the real stage; the train stage only reads rows.
    ref = resolve_reference(params, "demo", progress) if params.train.ood == "demo" else None
    return fn(params, progress=progress, ood=ref)
