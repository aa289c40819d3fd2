"""kill -9 of each stage's main process at random points (several seeds), through the real CLI.

After the kill: the pool workers die with their parent; every shard or version a reader can see is
complete; a later stage refuses an incomplete input with one error line; and a re-run of the
killed stage ends byte-identical to a clean run, with no temp files left behind.
"""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from synthgen.publish.stage import verify_problems
from synthgen.shards import list_versions, marker_hash, shard_hash
from tests.integrity_support import (
    NAME,
    alive,
    cli,
    copy_data,
    descendants,
    one_error,
    run_reference,
    snapshot,
    start_cli,
    wait_for,
    write_params,
)

# stage -> (what must already exist, the folder it writes, the next stage, seconds a run takes here)
KILLS = {
    "generate": ("plan", "generated", "label", 8.0),
    "label": ("generated", "labelled", "curate", 12.0),
    "curate": ("labelled", "curated", "publish", 6.0),
    "publish": ("curated", "publish", None, 5.0),
}


@pytest.fixture(scope="module")
def ref(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("reference")
    data = root / "data"
    run_reference(data, write_params(root, data))
    return {"data": data, "snap": {s: snapshot(data, s) for s in ("generated", "labelled", "curated", "publish")}}


def _visible_outputs_are_complete(data: Path, out: str) -> bool:
    """True when the stage's output is complete; asserts whatever is visible is sound either way."""
    if out == "publish":
        for version in list_versions(data / "datasets" / NAME):
            assert verify_problems(version) == [], version
        return bool(list_versions(data / "datasets" / NAME))
    folder = data / "work" / NAME / out
    shards = sorted(folder.glob("shard-*.parquet"))
    digest = marker_hash(folder)
    for p in shards:  # every visible shard is whole and made by this run's params
        assert pq.read_metadata(p).num_rows == 10 and shard_hash(p) == digest, p
    return len(shards) == 4


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("stage", list(KILLS))
def test_kill_9_then_rerun_is_exact(ref: dict, tmp_path: Path, stage: str, seed: int) -> None:
    upto, out, nxt, typical = KILLS[stage]
    data = copy_data(ref["data"], tmp_path / "data", upto)
    pools = {} if stage == "publish" else {"generate.workers": 2, "label.workers": 2}
    params = write_params(tmp_path, data, **pools)
    delay = random.Random(f"{stage}-{seed}").uniform(0.3, typical)
    proc = start_cli(stage, params)
    workers: set[int] = set()
    start = time.time()
    while time.time() - start < delay and proc.poll() is None:
        workers |= descendants(proc.pid)
        time.sleep(0.05)
    workers |= descendants(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)  # the main process only, as a user's kill -9 would
    proc.communicate()
    assert wait_for(lambda: not any(alive(w) for w in workers), 15), "pool workers outlived their parent"

    complete = _visible_outputs_are_complete(data, out)
    if not complete and nxt is not None:
        line = one_error(cli(nxt, params))
        assert f"{out}/ holds" in line and f"Fix: run `synthgen {stage}`" in line

    again = cli(stage, params)
    assert again.returncode == 0, again.stderr[-3000:]
    if out == "publish":
        assert snapshot(data, "publish") == ref["snap"]["publish"]
        assert [p for p in (data / "datasets").rglob(".tmp-*")] == []
    else:
        assert snapshot(data, out) == ref["snap"][out]
        assert list((data / "work" / NAME / out).glob(".tmp-*")) == []
