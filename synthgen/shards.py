"""Shard files: atomic Parquet writes, and the resumable shard-by-shard stage runner.

A shard stage maps ``<in stage>/shard-K.parquet`` (or the plan's shard K) to
``<out stage>/shard-K.parquet``. A shard file exists only when complete (temp + rename), so a
killed run re-run skips what is done and redoes the rest, with no duplicates. Each stage folder
holds ``_stage.json`` with a hash of the params it was made with; when the params change, the old
shards are discarded instead of being mixed with new ones. Each shard also carries that hash in
its Parquet metadata, so a shard is "done" only when it exists, its footer reads, and it was made
with these params (see ``synthgen.lineage``).

Every Parquet file synthgen writes has page checksums (CRC32), and every read through this module
verifies them: a flipped byte in a data page is an error naming the file, not a wrong value.
Readers outside the stages use :func:`read_table` / :func:`open_dataset` and
:func:`list_versions` (complete published versions only).
"""

from __future__ import annotations

import json
import logging
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
from synthgen.io import TMP_PREFIX, atomic_path, clean_stale_temps, stable_hash, write_json_atomic
from synthgen.lifeline import die_with_parent

logger = logging.getLogger(__name__)

MARKER = "_stage.json"
# A published version is complete when this file is in it (written last).
MANIFEST = "_manifest.json"
# Parquet key-value metadata: the fingerprint hash of the stage that wrote the file.
HASH_KEY = b"synthgen.stage_hash"


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
    stage_hash: str | None = None,
) -> Path:
    """Write ``table`` (with page checksums) to a unique temp file and rename it onto ``path``.

    ``stage_hash`` is stored in the file's metadata: it says which params made the shard."""
    codecs = column_codecs(table.schema, compression)
    level: int | dict[str, int] | None = compression_level
    if isinstance(codecs, dict) and compression_level is not None:
        level = {col: compression_level for col, c in codecs.items() if c != "none"}
    if stage_hash is not None:
        meta = dict(table.schema.metadata or {})
        meta[HASH_KEY] = stage_hash.encode()
        table = table.replace_schema_metadata(meta)
    with atomic_path(path) as tmp:
        pq.write_table(
            table,
            tmp,
            row_group_size=row_group_size,
            compression=codecs,
            compression_level=level,
            write_statistics=True,
            write_page_checksum=True,
        )
    return Path(path)


def _unreadable(path: Path, err: BaseException) -> DataError:
    detail = str(err).splitlines()[0] if str(err) else type(err).__name__
    return DataError(f"not a readable Parquet file ({detail})", where=str(path),
                     fix="delete it and re-run the stage that wrote it (published: `synthgen verify`, "
                         "then publish again)")


def read_parquet(path: str | os.PathLike[str], columns: Sequence[str] | None = None) -> pa.Table:
    """One Parquet file, page checksums verified; a clear error when missing or damaged."""
    path = Path(path)
    if not path.exists():
        raise DataError("shard not found", where=str(path), fix="run the stage that writes it first")
    try:
        return pq.read_table(path, columns=list(columns) if columns else None,
                             page_checksum_verification=True)
    except (pa.ArrowException, OSError, ValueError) as err:
        raise _unreadable(path, err) from None


def read_table(paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
               columns: Sequence[str] | None = None) -> pa.Table:
    """Several Parquet files (or one), each page checksum verified, stacked in the given order.

    The reading helper for everything that reads shards or published parts (query, train,
    analyze): a damaged page is an error naming the file, never silently wrong numbers."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    tables = [read_parquet(p, columns) for p in paths]
    if not tables:
        raise DataError("no Parquet files to read", fix="check the path, or publish a version first")
    return pa.concat_tables(tables, promote_options="default")


def open_dataset(source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
                 partitioning: str | None = "hive") -> Any:
    """A ``pyarrow.dataset.Dataset`` whose scans verify page checksums (lazy, for large reads).

    Polars and DuckDB can scan it (``pl.scan_pyarrow_dataset``, ``duckdb.arrow``). From a folder
    only ``*.parquet`` files are read; entries whose names start with ``.`` or ``_`` (temp
    folders, manifests) are ignored."""
    import pyarrow.dataset as ds

    fmt = ds.ParquetFileFormat(
        default_fragment_scan_options=ds.ParquetFragmentScanOptions(page_checksum_verification=True))
    if isinstance(source, (str, os.PathLike)) and Path(source).is_dir():
        # Only Parquet files: a version folder also holds its README.md card and example images.
        # Hidden and underscore entries (temp folders, manifests) are skipped at every level.
        base = Path(source)
        files = [str(p) for p in sorted(base.rglob("*.parquet"))
                 if not any(part.startswith((".", "_")) for part in p.relative_to(base).parts)]
        return ds.dataset(files, format=fmt, partitioning=partitioning, partition_base_dir=str(base))
    src: Any = [str(p) for p in source] if not isinstance(source, (str, os.PathLike)) else str(source)
    return ds.dataset(src, format=fmt, partitioning=partitioning)


def shard_hash(path: str | os.PathLike[str]) -> str | None:
    """The stage hash in a shard's footer; None when the file is missing, unreadable or has none."""
    try:
        meta = pq.read_schema(path).metadata or {}
    except (pa.ArrowException, OSError, ValueError):
        return None
    value = meta.get(HASH_KEY)
    return value.decode() if value is not None else None


def shard_done(path: Path, digest: str | None) -> bool:
    """A shard counts as done when it exists, its footer reads, and (given ``digest``) it carries it."""
    if not path.exists():
        return False
    if digest is None:
        return True
    return shard_hash(path) == digest


def marker_hash(folder: Path) -> str | None:
    try:
        value = json.loads((folder / MARKER).read_text()).get("hash")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def require_stage(folder: Path, expected: Sequence[int], shard_file: Callable[[int], Path],
                  digest: str | None, command: str) -> None:
    """Refuse to read a stage folder that is incomplete or was made with other params.

    ``digest``: the hash its marker and every shard must carry (None: use the marker's own)."""
    name = f"{folder.name}/"
    have = marker_hash(folder)
    if have is None:
        raise DataError(f"{name} holds no finished stage (no {MARKER})", where=str(folder),
                        fix=f"run `{command}`")
    if digest is not None and have != digest:
        raise DataError(f"{name} was made with other params (fingerprint {have}, these params "
                        f"expect {digest})", where=str(folder), fix=f"run `{command}` with these params")
    want = have if digest is None else digest
    bad = [s for s in expected if not shard_done(shard_file(s), want)]
    if bad:
        missing = [s for s in bad if not shard_file(s).exists()]
        other = [s for s in bad if s not in missing]
        detail = f"{len(expected) - len(bad)} of {len(expected)} shards"
        if other:
            detail += f" ({len(other)} damaged or from other params, e.g. {shard_file(other[0]).name})"
        raise DataError(f"{name} holds {detail}", where=str(folder), fix=f"run `{command}`")


def list_versions(dataset_dir: str | os.PathLike[str]) -> list[Path]:
    """Complete published versions (``version=*`` folders holding a manifest), oldest first.

    Temp and half-built folders are never listed: readers that pick versions through this helper
    cannot trip over a killed or running publish."""
    root = Path(dataset_dir)
    if not root.is_dir():
        return []
    found = [p for p in root.glob("version=*") if p.is_dir() and (p / MANIFEST).is_file()]
    return sorted(found, key=lambda p: ((p / MANIFEST).stat().st_mtime, p.name))


def default_workers(requested: int) -> int:
    return requested if requested > 0 else max(1, os.cpu_count() or 1)


def prepare_stage_dir(out_dir: Path, fingerprint: dict[str, Any], digest: str | None = None) -> bool:
    """Make ``out_dir`` ready for this fingerprint; True when earlier shards can be kept.

    The caller holds the stage's lock (``synthgen.locks``): no other run writes here meanwhile."""
    marker = out_dir / MARKER
    digest = digest or stable_hash(fingerprint)
    if out_dir.exists():
        clean_stale_temps(out_dir)
        try:
            same = json.loads(marker.read_text()).get("hash") == digest
        except (OSError, ValueError):
            same = False
        if same:
            return True
        logger.info("%s was made with other params: its shards are discarded", out_dir)
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(marker, {"hash": digest, "fingerprint": fingerprint})
    return False


def list_shards(folder: Path, missing: str, fix: str) -> list[int]:
    """Shard numbers present in a stage folder; a clear error when there are none."""
    shards = sorted(int(p.stem.split("-")[1]) for p in folder.glob("shard-*.parquet")
                    if not p.name.startswith(TMP_PREFIX))
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
    stage_hash: str | None = None,
) -> StageResult:
    """Run ``fn(params, shard)`` for every shard not done (missing, damaged footer, or made with
    other params than ``stage_hash``), in ``workers`` processes that die with this one."""
    result = StageResult(stage, out_file(0).parent)
    todo: list[int] = []
    for s in shards:
        (result.skipped if shard_done(out_file(s), stage_hash) else todo).append(s)
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
            with ProcessPoolExecutor(max_workers=min(workers, len(todo)), mp_context=ctx,
                                     initializer=die_with_parent) as pool:
                futures = {pool.submit(fn, params, s): s for s in todo}
                for fut in as_completed(futures):
                    fut.result()
                    result.written.append(futures[fut])
                    bar.advance(task)
    return result
