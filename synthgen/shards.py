"""Shard files: atomic Parquet writes, and the resumable shard-by-shard stage runner.

A shard stage maps ``<in stage>/shard-K.parquet`` (or the plan's shard K) to
``<out stage>/shard-K.parquet``. A shard file exists only when complete (temp + rename), so a
killed run re-run skips what is done and redoes the rest, with no duplicates. Each stage folder
holds ``_stage.json`` with a hash of the params it was made with; when the params change, the old
shards are discarded instead of being mixed with new ones.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.parquet as pq
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from synthgen.errors import DataError
from synthgen.io import atomic_path, clean_stale_temps, stable_hash, write_json_atomic

MARKER = "_stage.json"


# PNG bytes are already deflate-compressed: a second codec only costs time.
_STORED_AS_IS = ("image.bytes", "control_image.bytes")


def column_codecs(schema: pa.Schema, codec: str) -> dict[str, str] | str:
    """Per-leaf-column codecs: ``codec`` everywhere except the image bytes, which stay as they are."""
    if not any(f.name in ("image", "control_image") for f in schema):
        return codec
    import io

    buf = io.BytesIO()
    pq.write_table(schema.empty_table(), buf)
    leaves = pq.ParquetFile(io.BytesIO(buf.getvalue())).schema
    return {leaves.column(i).path: ("none" if leaves.column(i).path in _STORED_AS_IS else codec)
            for i in range(len(leaves))}


def write_parquet_atomic(
    table: pa.Table,
    path: str | os.PathLike[str],
    row_group_size: int = 100,
    compression: str = "zstd",
    compression_level: int | None = 3,
) -> Path:
    codecs = column_codecs(table.schema, compression)
    level: int | dict[str, int] | None = compression_level
    if isinstance(codecs, dict) and compression_level is not None:
        level = {col: compression_level for col, c in codecs.items() if c != "none"}
    with atomic_path(path) as tmp:
        pq.write_table(
            table,
            tmp,
            row_group_size=row_group_size,
            compression=codecs,
            compression_level=level,
            write_statistics=True,
        )
    return Path(path)


def read_parquet(path: str | os.PathLike[str], columns: Sequence[str] | None = None) -> pa.Table:
    path = Path(path)
    if not path.exists():
        raise DataError("shard not found", where=str(path), fix="run the stage that writes it first")
    try:
        return pq.read_table(path, columns=list(columns) if columns else None)
    except (pa.ArrowInvalid, OSError) as err:
        raise DataError(f"not a readable Parquet file ({err})", where=str(path),
                        fix="delete it and re-run the stage that wrote it") from None


def default_workers(requested: int) -> int:
    return requested if requested > 0 else max(1, os.cpu_count() or 1)


def prepare_stage_dir(out_dir: Path, fingerprint: dict[str, Any]) -> bool:
    """Make ``out_dir`` ready for this fingerprint; True when earlier shards can be kept."""
    marker = out_dir / MARKER
    digest = stable_hash(fingerprint)
    if out_dir.exists():
        clean_stale_temps(out_dir)
        try:
            same = json.loads(marker.read_text()).get("hash") == digest
        except (OSError, ValueError):
            same = False
        if same:
            return True
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(marker, {"hash": digest, "fingerprint": fingerprint})
    return False


def list_shards(folder: Path, missing: str, fix: str) -> list[int]:
    """Shard numbers present in a stage folder; a clear error when there are none."""
    shards = sorted(int(p.stem.split("-")[1]) for p in folder.glob("shard-*.parquet"))
    if not shards:
        raise DataError(missing, where=str(folder), fix=fix)
    return shards


@dataclass
class StageResult:
    stage: str
    out_dir: Path
    written: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)

    @property
    def shards(self) -> list[int]:
        return sorted(self.written + self.skipped)


ParamsT = TypeVar("ParamsT")


def run_sharded(
    stage: str,
    fn: Callable[[ParamsT, int], Path],
    params: ParamsT,
    shards: Sequence[int],
    out_file: Callable[[int], Path],
    workers: int = 1,
    progress: bool = True,
) -> StageResult:
    """Run ``fn(params, shard)`` for every shard whose output is missing, in ``workers`` processes."""
    result = StageResult(stage, out_file(0).parent)
    todo = []
    for s in shards:
        (result.skipped if out_file(s).exists() else todo).append(s)
    columns = [TextColumn(f"[bold]{stage}[/]"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, disable=not progress, transient=False) as bar:
        task = bar.add_task(stage, total=len(shards), completed=len(result.skipped))
        if workers <= 1 or len(todo) <= 1:
            for s in todo:
                fn(params, s)
                result.written.append(s)
                bar.advance(task)
        else:
            # spawn, not fork: the parent already runs BLAS/torch/onnxruntime threads, and a forked
            # child can inherit a held lock and hang forever.
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=min(workers, len(todo)), mp_context=ctx) as pool:
                futures = {pool.submit(fn, params, s): s for s in todo}
                for fut in as_completed(futures):
                    fut.result()
                    result.written.append(futures[fut])
                    bar.advance(task)
    return result
