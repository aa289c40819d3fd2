"""Data-parallel generation over several devices: one process per device, each rendering its own shards.

Launch the same command once per device (``accelerate launch --num_processes N -m synthgen generate``,
or N processes with ``LOCAL_RANK``/``RANK``/``WORLD_SIZE`` set); ``run_generate`` sees ``WORLD_SIZE``
and comes here. Nothing here is specific to a backend. Each process
loads the pipeline on its own device (``device: auto`` picks ``PartialState().device``) and
writes whole shard files, so no tensors cross processes and the shard runner's atomic writes
keep a killed run resumable. Shard k goes to process ``k % num_processes``: a fixed, even split
that every process computes alone, with no coordinator.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from synthgen.generate.config import GenerateRun
from synthgen.shards import StageResult


def launched_processes() -> int:
    """How many processes a launcher (``accelerate launch``, torchrun) started for this run."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def shards_for_process(shards: Sequence[int], process_index: int, num_processes: int) -> list[int]:
    """This process's share of ``shards``: every ``num_processes``-th one, starting at its index."""
    if num_processes < 1 or not 0 <= process_index < num_processes:
        raise ValueError(f"process {process_index} of {num_processes} is not a valid rank")
    return sorted(shards)[process_index::num_processes]


def my_shards(shards: Sequence[int]) -> list[int]:
    """The shards of the current process as accelerate sees it (all of them when not launched)."""
    from accelerate import PartialState

    state = PartialState()
    return shards_for_process(shards, state.process_index, state.num_processes)


def run_generate_distributed(params: GenerateRun, shards: Sequence[int] | None = None,
                             progress: bool = True) -> StageResult:
    """The generate stage, split over the processes of an ``accelerate launch``.

    The main process prepares the stage folder (it clears shards made with other params), then
    every process renders its own shards; the result lists this process's shards only."""
    from accelerate import PartialState

    from synthgen.generate.stage import STAGE, generate_shard, prepare_generate
    from synthgen.paths import Layout
    from synthgen.shards import run_sharded
    from synthgen.spec import plan_shards

    state = PartialState()
    layout = Layout.from_params(params)
    todo = list(shards) if shards is not None else plan_shards(layout.plan_file)
    if state.is_main_process:
        # Prepares (or clears) the stage folder and its marker, renders nothing.
        prepare_generate(params)
    # Nobody writes before the folder is ready, and nobody prepares it again afterwards
    # (preparing removes temp files, which would be other processes' shards in flight).
    state.wait_for_everyone()
    mine = shards_for_process(todo, state.process_index, state.num_processes)
    result = run_sharded(STAGE, generate_shard, params, mine, lambda s: layout.shard_file(STAGE, s),
                         workers=1, progress=progress and state.is_local_main_process)
    state.wait_for_everyone()
    return result
