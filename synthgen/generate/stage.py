"""The generate stage: plan shard K -> ``work/<name>/generated/shard-K.parquet``.

The plan must carry these params' plan fingerprint; each shard carries the generate fingerprint's
hash, and the run holds the plan and generated locks, so two runs never mix shards in one folder.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pyarrow as pa

from synthgen.contract import conform, generated_schema, image_struct
from synthgen.generate.base import GENERATORS, Generator
from synthgen.generate.config import GenerateRun
from synthgen.generate.parallel import launched_processes, run_distributed
from synthgen.images import encode_png
from synthgen.lifeline import watch_parent_if_worker
from synthgen.lineage import generate_fingerprint, generate_hash, require_plan
from synthgen.locks import stage_locks, stages_up_to
from synthgen.paths import Layout
from synthgen.shards import StageResult, default_workers, prepare_stage_dir, run_sharded, write_parquet_atomic
from synthgen.spec import read_plan

STAGE = "generated"


@lru_cache(maxsize=2)
def _generator(generate_json: str) -> Generator:
    # Cached per process: diffusion pipelines take seconds to load, renderers precompute meshes.
    from synthgen.generate.config import GenerateParams

    cfg = GenerateParams.model_validate_json(generate_json)
    return GENERATORS.create(cfg.backend, cfg)


def get_generator(params: GenerateRun) -> Generator:
    return _generator(params.generate.model_dump_json())


def generate_shard(params: GenerateRun, shard: int) -> Path:
    watch_parent_if_worker()  # a pool worker (e.g. a flow task) ends when its run is killed
    layout = Layout.from_params(params)
    specs = read_plan(layout.plan_file, shard=shard)
    gen = get_generator(params)
    samples = gen.generate(specs)
    rows = []
    for spec, s in zip(specs, samples, strict=True):
        assert s.sample_id == spec.sample_id, "generator returned samples out of order"
        h, w = s.image.shape[:2]
        rows.append(
            {
                "sample_id": spec.sample_id,
                "source": "synthetic",
                # dataset and dataset_version are set by publish: the version hashes params
                # (label, curate) that must not force a re-render when they change.
                "split": spec.split,
                "generator": gen.name,
                "generator_version": gen.version,
                "seed": spec.seed,
                "image": image_struct(encode_png(s.image), f"{spec.sample_id}.png"),
                "control_image": image_struct(
                    None if s.control is None else encode_png(s.control), f"{spec.sample_id}_control.png"
                ),
                "width": w,
                "height": h,
                "prompt": s.prompt,
                **spec.req_columns(),
                **s.labels,
            }
        )
    table = conform(pa.Table.from_pylist(rows), generated_schema())
    return write_parquet_atomic(
        table, layout.shard_file(STAGE, shard), row_group_size=params.publish.row_group_size,
        stage_hash=generate_hash(params),
    )


# What a generated shard depends on; a change discards the old shards.
fingerprint = generate_fingerprint


def prepare_generate(params: GenerateRun) -> list[int]:
    """Ready the output folder (keeping finished shards when params are unchanged); list the shards.

    Refuses a plan made with other params (run `synthgen plan`)."""
    layout = Layout.from_params(params)
    with stage_locks(layout.work_dir, stages_up_to("generated")):
        shards = require_plan(params)
        get_generator(params)  # missing weights or a bad config fail here, before old shards are discarded
        prepare_stage_dir(layout.stage_dir(STAGE), fingerprint(params), generate_hash(params))
        return shards


def run_generate(params: GenerateRun, shards: list[int] | None = None, progress: bool = True) -> StageResult:
    """Render every planned shard whose output is missing.

    Under ``accelerate launch`` (``WORLD_SIZE`` > 1) each process renders its own share of the
    shards (``synthgen.generate.parallel``); otherwise shards run in as many processes as the
    backend declares it can use (``Generator.max_processes``)."""
    layout = Layout.from_params(params)
    if launched_processes() > 1:
        # One process per device under `accelerate launch`: the main one prepares the folder (with
        # the locks); the processes are siblings, so the render phase does not take them.
        todo = list(shards) if shards is not None else require_plan(params)
        return run_distributed(STAGE, lambda: prepare_generate(params), generate_shard, params, todo,
                               lambda s: layout.shard_file(STAGE, s), progress)
    with stage_locks(layout.work_dir, stages_up_to("generated")):
        all_shards = prepare_generate(params)
        todo = shards if shards is not None else all_shards
        workers = default_workers(params.generate.workers)
        cap = get_generator(params).max_processes
        if cap is not None:
            workers = min(workers, cap)
        return run_sharded(
            STAGE, generate_shard, params, todo, lambda s: layout.shard_file(STAGE, s), workers, progress,
            stage_hash=generate_hash(params),
        )
