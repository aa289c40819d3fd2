"""The publish stage: curated shards -> ``datasets/<name>/version=<v>/split=<s>/part-K.parquet``.

The whole version folder is built beside the final one and swapped in with renames, so a reader
never sees a half-published version, and a killed publish leaves the previous one intact.
"""

from __future__ import annotations

import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import yaml

from synthgen import __version__
from synthgen.contract import conform, hf_image_metadata, published_schema
from synthgen.errors import DataError
from synthgen.io import TMP_PREFIX, sha256_file, write_json_atomic
from synthgen.paths import Layout
from synthgen.publish.card import CARD, write_card  # noqa: F401 - CARD is part of this module's API
from synthgen.sections import RunParams
from synthgen.shards import read_parquet, write_parquet_atomic

# Hive partition keys live in the folder names; the files keep the columns too, so a file read on
# its own (e.g. by Hugging Face datasets) still says which version and split it belongs to.
PARTITIONS = ("version", "split")
# Leading underscores mark non-data files (like Spark's _SUCCESS): pyarrow.dataset and most
# Parquet readers skip them when given the folder. The card (CARD) is README.md, as the Hub needs.
MANIFEST = "_manifest.json"


@dataclass
class PublishResult:
    version: str
    version_dir: Path
    rows: int
    accepted: int
    splits: dict[str, int]
    files: list[dict[str, Any]]


def _prepare(table: pa.Table, layout: Layout) -> pa.Table:
    n = table.num_rows
    table = table.drop_columns([c for c in ("dataset", "dataset_version") if c in table.column_names])
    table = table.append_column("dataset", pa.array([layout.name] * n, pa.string()))
    table = table.append_column("dataset_version", pa.array([layout.version] * n, pa.string()))
    if "accepted" not in table.column_names:
        # Not curated: every row counts as accepted, and the card says so.
        table = table.append_column("accepted", pa.array([True] * n))
        table = table.append_column("reject_reasons", pa.array([[]] * n, pa.list_(pa.string())))
    table = conform(table, published_schema())
    return table.replace_schema_metadata(hf_image_metadata(table.schema))


def _swap_in(tmp_dir: Path, final_dir: Path) -> None:
    old = final_dir.with_name(TMP_PREFIX + "old-" + final_dir.name)
    if old.exists():
        shutil.rmtree(old)
    if final_dir.exists():
        final_dir.rename(old)
    tmp_dir.rename(final_dir)
    if old.exists():
        shutil.rmtree(old)


# The command that writes each stage folder publish can read (`--from`).
STAGE_COMMANDS = {"generated": "generate", "labelled": "label", "curated": "curate"}


def input_shards(layout: Layout, source_stage: str) -> list[Path]:
    folder = layout.stage_dir(source_stage)
    files = sorted(folder.glob("shard-*.parquet"))
    if not files:
        raise DataError(
            f"no shards in {folder}",
            where=f"publish (reading stage '{source_stage}')",
            fix=f"run the stages before publish (`synthgen run`, or `synthgen {STAGE_COMMANDS.get(source_stage, 'plan')}`)",
        )
    return files


def run_publish(params: RunParams, source_stage: str = "curated", progress: bool = True) -> PublishResult:
    layout = Layout.from_params(params)
    files = input_shards(layout, source_stage)
    layout.dataset_dir.mkdir(parents=True, exist_ok=True)
    for stale in layout.dataset_dir.glob(TMP_PREFIX + "*"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp_dir = layout.dataset_dir / f"{TMP_PREFIX}{layout.version_dir.name}"
    tmp_dir.mkdir(parents=True)

    split_rows: Counter[str] = Counter()
    accepted = 0
    reasons: Counter[str] = Counter()
    generators: Counter[str] = Counter()
    manifest_files = []
    for src in files:
        shard_no = int(src.stem.split("-")[1])
        table = _prepare(read_parquet(src), layout)
        accepted += int(pc.sum(table.column("accepted")).as_py() or 0)
        for rr in table.column("reject_reasons").to_pylist():
            reasons.update(rr or [])
        generators.update(table.column("generator").to_pylist())
        for split in sorted(set(table.column("split").to_pylist())):
            part = table.filter(pc.equal(table.column("split"), split))
            rel = Path(f"split={split}") / f"part-{shard_no:05d}.parquet"
            dest = write_parquet_atomic(
                part,
                tmp_dir / rel,
                row_group_size=params.publish.row_group_size,
                compression=params.publish.compression,
                compression_level=params.publish.compression_level,
            )
            split_rows[split] += part.num_rows
            manifest_files.append(
                {"path": str(rel), "rows": part.num_rows, "bytes": dest.stat().st_size,
                 "sha256": sha256_file(dest)}
            )

    rows = sum(split_rows.values())
    manifest = {
        "name": layout.name,
        "version": layout.version,
        "synthgen_version": __version__,
        "generators": dict(sorted(generators.items())),
        "rows": rows,
        "accepted": accepted,
        "splits": dict(sorted(split_rows.items())),
        "reject_reasons": dict(sorted(reasons.items())),
        "curated": source_stage == "curated",
        "files": sorted(manifest_files, key=lambda f: f["path"]),
    }
    write_json_atomic(tmp_dir / MANIFEST, manifest)
    params_yaml = yaml.safe_dump(params.model_dump(mode="json"), sort_keys=False)
    write_card(tmp_dir, manifest, params_yaml)
    _swap_in(tmp_dir, layout.version_dir)
    return PublishResult(
        layout.version, layout.version_dir, rows, accepted, dict(split_rows),
        [dict(f, path=str(layout.version_dir / f["path"])) for f in manifest["files"]],
    )


def read_manifest(version_dir: Path) -> dict[str, Any]:
    import json

    path = version_dir / MANIFEST
    if not path.exists():
        raise DataError(f"{MANIFEST} not found", where=str(version_dir), fix="run `synthgen publish`")
    return json.loads(path.read_text())


def verify_manifest(version_dir: Path) -> list[str]:
    """Files whose row count or hash differ from the manifest (empty list = intact)."""
    import pyarrow.parquet as pq

    bad = []
    for f in read_manifest(version_dir)["files"]:
        p = version_dir / f["path"]
        if not p.exists() or sha256_file(p) != f["sha256"] or pq.read_metadata(p).num_rows != f["rows"]:
            bad.append(f["path"])
    return bad
