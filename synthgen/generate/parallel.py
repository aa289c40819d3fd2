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

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from synthgen.errors import ConfigError
from synthgen.shards import ParamsT, StageResult, run_sharded

logger = logging.getLogger(__name__)


def launched_processes() -> int:
    """How many processes a launcher (``accelerate launch``, torchrun) started for this run."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def shards_for_process(shards: Sequence[int], process_index: int, num_processes: int) -> list[int]:
    """This process's share of ``shards``: every ``num_processes``-th one, starting at its index."""
    if num_processes < 1 or not 0 <= process_index < num_processes:
        raise ValueError(f"process {process_index} of {num_processes} is not a valid rank")
    return sorted(shards)[process_index::num_processes]


def _state() -> Any:
    """accelerate's view of this process. ``accelerate launch --cpu`` (``ACCELERATE_USE_CPU``) runs
    the processes on CPUs with gloo; without that flag and without GPUs it sees one process."""
    from accelerate import PartialState

    return PartialState(cpu=os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes"))


def my_shards(shards: Sequence[int]) -> list[int]:
    """The shards of the current process as accelerate sees it (all of them when not launched)."""
    state = _state()
    return shards_for_process(shards, state.process_index, state.num_processes)


def run_distributed(stage: str, prepare: Callable[[], object], shard_fn: Callable[[ParamsT, int], Path],
                    params: ParamsT, shards: Sequence[int], out_file: Callable[[int], Path],
                    progress: bool = True) -> StageResult:
    """A shard stage split over the processes of an ``accelerate launch``.

    The main process prepares the stage folder (it clears shards made with other params), then
    every process runs its own shards; the result lists this process's shards only."""
    state = _state()
    if state.num_processes != launched_processes():
        raise ConfigError(f"launched as {launched_processes()} processes, but accelerate sees {state.num_processes}",
                          where="WORLD_SIZE", fix="start the processes with `accelerate launch` (add --cpu without GPUs)")
    if state.is_main_process:
        prepare()  # prepares (or clears) the stage folder and its marker, renders nothing
    # Nobody writes before the folder is ready, and nobody prepares it again afterwards
    # (preparing removes temp files, which would be other processes' shards in flight).
    state.wait_for_everyone()
    mine = shards_for_process(shards, state.process_index, state.num_processes)
    logger.info("process %d of %d runs %d of %d %s shard(s) on %s", state.process_index, state.num_processes,
                len(mine), len(shards), stage, state.device)
    result = run_sharded(stage, shard_fn, params, mine, out_file, workers=1,
                         progress=progress and state.is_local_main_process)
    state.wait_for_everyone()
    return result
