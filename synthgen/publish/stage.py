"""The publish stage: curated shards -> ``datasets/<name>/version=<v>/split=<s>/part-K.parquet``.

The whole version folder is built in a uniquely named temp folder beside the dataset folder
(``datasets/.tmp-<host>-<pid>-<name>-version=<v>.<random>``, outside anything a reader globs),
with the manifest written last, and renamed into place; so a reader never sees a half-published
version, a killed or out-of-disk publish leaves the previous one intact, and two publishes never
delete each other's work (they also take the dataset's publish lock). Publish refuses an input
stage that is incomplete or was made with other params.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import yaml

from synthgen import __version__
from synthgen.contract import conform, hf_image_metadata, published_schema
from synthgen.errors import ConfigError, DataError
from synthgen.io import clean_stale_temps, make_temp_dir, sha256_file, write_json_atomic
from synthgen.lineage import expected_hash, label_hash, require_plan
from synthgen.locks import stage_locks, stages_up_to
from synthgen.paths import CURATED_AGREEMENT, CURATED_COVERAGE, SHARD_STAGES, Layout, topup_shards
from synthgen.publish.card import CARD, write_card  # noqa: F401 - CARD is part of this module's API
from synthgen.sections import RunParams
from synthgen.shards import MANIFEST, list_versions, read_parquet, require_stage, write_parquet_atomic

logger = logging.getLogger(__name__)

# Hive partition keys live in the folder names; the files keep the columns too, so a file read on
# its own (e.g. by Hugging Face datasets) still says which version and split it belongs to.
PARTITIONS = ("version", "split")
# Leading underscores mark non-data files (like Spark's _SUCCESS): pyarrow.dataset and most
# Parquet readers skip them when given the folder. MANIFEST ("_manifest.json", from
# synthgen.shards) is written last: a version folder without it is not complete. The card (CARD)
# is README.md, as the Hub needs.


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
    """Rename the finished temp folder onto ``final_dir`` (an older copy is moved aside first)."""
    old = None
    if final_dir.exists():
        old = make_temp_dir(tmp_dir.parent, "old-" + final_dir.parent.name + "-" + final_dir.name)
        old.rmdir()
        final_dir.rename(old)
    tmp_dir.rename(final_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


_COMMANDS = {"generated": "synthgen generate", "labelled": "synthgen label", "curated": "synthgen curate"}


def input_shards(params: RunParams, layout: Layout, source_stage: str, skip: Collection[int] = ()) -> list[Path]:
    """The source stage's shards, after checking it is complete and made with these params."""
    if source_stage not in SHARD_STAGES:
        raise ConfigError(f"unknown stage {source_stage!r} to publish from", where="--from",
                          fix=f"use one of {', '.join(SHARD_STAGES)}")
    expected = [s for s in require_plan(params) if s not in skip]
    if source_stage == "curated":  # curate adds the top-up rounds' shards after the plan's
        expected = expected + sorted(topup_shards(params))
    folder = layout.stage_dir(source_stage)
    command = _COMMANDS[source_stage]
    if source_stage == "curated":
        try:
            fp = json.loads((folder / "_stage.json").read_text()).get("fingerprint", {})
        except (OSError, ValueError, AttributeError):
            fp = None
        if isinstance(fp, dict) and (fp.get("upstream") != label_hash(params)
                                     or fp.get("curate") != params.model_dump(mode="json").get("curate")):
            raise DataError("curated/ was made with other params (label or curate section differ)",
                            where=str(folder), fix=f"run `{command}` with these params")
    require_stage(folder, expected, lambda s: layout.shard_file(source_stage, s),
                  expected_hash(params, source_stage), command)
    extra = sorted({int(p.stem.split("-")[1]) for p in folder.glob("shard-*.parquet")} - set(expected))
    if extra:
        raise DataError(f"{source_stage}/ holds {len(extra)} shard(s) no plan lists (e.g. shard {extra[0]}): "
                        "the plan or the top-up plan was replaced after it was made", where=str(folder),
                        fix=f"run `{command}` again")
    return [layout.shard_file(source_stage, s) for s in expected]


def planned_vs_accepted_summary(layout: Layout) -> dict[str, Any]:
    """Curation's planned-vs-accepted figures (JSD in bits and the shares behind them), for the
    manifest and the card. They live in the curated folder (``_coverage.json``, written last)."""
    path = layout.stage_dir("curated") / CURATED_COVERAGE
    try:
        section = json.loads(path.read_text())
    except (OSError, ValueError):
        raise DataError(f"curated/ is unfinished (no {CURATED_COVERAGE})", where=str(path.parent),
                        fix="run `synthgen curate`") from None
    if not section:
        return {}
    return {
        "jsd_base": section["jsd_base"], "jsd": section["jsd"],
        "topup_rows": section.get("topup_rows", 0), "topup_rounds": section.get("topup_rounds", 0),
        "attributes": {a: {k: d[k] for k in ("planned_share", "accepted_share")}
                       for a, d in section["attributes"].items()},
    }


def label_agreement_summary(layout: Layout) -> dict[str, Any]:
    """How well the offline models read what was requested (curation's ``_agreement.json``, written
    before ``_coverage.json``, whose presence publish already requires); {} from a curated folder
    made before the file existed."""
    path = layout.stage_dir("curated") / CURATED_AGREEMENT
    try:
        return dict(json.loads(path.read_text()))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        raise DataError(f"curated/{CURATED_AGREEMENT} cannot be read", where=str(path.parent),
                        fix="run `synthgen curate` again") from None


def run_publish(params: RunParams, source_stage: str = "curated", progress: bool = True,
                failed_shards: dict[int, str] | None = None) -> PublishResult:
    """``failed_shards`` (shard -> error) are shards a run could not make: the version is published
    without them and the manifest and card name them, so a partial version is never silent."""
    layout = Layout.from_params(params)
    with stage_locks(layout.work_dir, stages_up_to("publish")):
        files = input_shards(params, layout, source_stage, skip=set(failed_shards or {}))
        root = layout.dataset_dir.parent
        layout.dataset_dir.mkdir(parents=True, exist_ok=True)
        # Only leftovers of dead runs (a live run's temp folder names a live pid).
        clean_stale_temps(root, recursive=False)
        clean_stale_temps(layout.dataset_dir, recursive=False)
        tmp_dir = make_temp_dir(root, f"{layout.name}-{layout.version_dir.name}")
        try:
            result = _build(params, layout, files, source_stage, tmp_dir, failed_shards or {})
            _swap_in(tmp_dir, layout.version_dir)
        except BaseException:
            shutil.rmtree(tmp_dir, ignore_errors=True)
            raise
    return result


def _code_versions(params: RunParams, labelled: bool) -> dict[str, Any]:
    """The generator's and (for a labelled source) the labellers' code versions."""
    versions = params.code_versions()
    return versions if labelled else {"generator": versions["generator"]}


def _build(params: RunParams, layout: Layout, files: list[Path], source_stage: str, tmp_dir: Path,
           failed_shards: dict[int, str]) -> PublishResult:
    split_rows: Counter[str] = Counter()
    accepted = 0
    reasons: Counter[str] = Counter()
    generators: Counter[str] = Counter()
    generator_versions: Counter[str] = Counter()
    manifest_files = []
    for src in files:
        shard_no = int(src.stem.split("-")[1])
        table = _prepare(read_parquet(src), layout)
        accepted += int(pc.sum(table.column("accepted")).as_py() or 0)
        for rr in table.column("reject_reasons").to_pylist():
            reasons.update(rr or [])
        generators.update(table.column("generator").to_pylist())
        generator_versions.update(f"{g} {v}" for g, v in zip(table.column("generator").to_pylist(),
                                                              table.column("generator_version").to_pylist(),
                                                              strict=True))
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
    manifest: dict[str, Any] = {
        "name": layout.name,
        "version": layout.version,
        "synthgen_version": __version__,
        "generators": dict(sorted(generators.items())),
        "generator_versions": dict(sorted(generator_versions.items())),
        # the code that made the rows: finished shards are kept only while these stay the same
        "code_versions": _code_versions(params, labelled=source_stage == "curated"),
        "rows": rows,
        "accepted": accepted,
        "splits": dict(sorted(split_rows.items())),
        "reject_reasons": dict(sorted(reasons.items())),
        "curated": source_stage == "curated",
        "files": sorted(manifest_files, key=lambda f: f["path"]),
    }
    if failed_shards:
        manifest["failed_shards"] = {f"{int(k):05d}": str(v) for k, v in sorted(failed_shards.items())}
    if source_stage == "curated":
        coverage = planned_vs_accepted_summary(layout)
        if coverage:
            manifest["planned_vs_accepted"] = coverage
        agreement = label_agreement_summary(layout)
        if agreement:
            manifest["label_agreement"] = agreement
    # what made the data, not where it was written: the same params give the same bytes anywhere
    params_yaml = yaml.safe_dump(params.model_dump(mode="json", exclude={"data_dir"}), sort_keys=False)
    write_card(tmp_dir, manifest, params_yaml)
    write_json_atomic(tmp_dir / MANIFEST, manifest)  # last: its presence marks a complete version
    return PublishResult(
        layout.version, layout.version_dir, rows, accepted, dict(split_rows),
        [dict(f, path=str(layout.version_dir / f["path"])) for f in manifest["files"]],
    )


def read_manifest(version_dir: Path) -> dict[str, Any]:
    path = version_dir / MANIFEST
    if not path.exists():
        raise DataError(f"{MANIFEST} not found (not a complete version)", where=str(version_dir),
                        fix="run `synthgen publish`")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise DataError(f"{MANIFEST} is unreadable ({err})", where=str(path),
                        fix="publish this version again") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), list):
        raise DataError(f"{MANIFEST} has no file list", where=str(path), fix="publish this version again")
    return manifest


def verify_problems(version_dir: Path) -> list[str]:
    """One line per file that differs from the manifest (missing, other hash, other row count,
    unreadable) or that the manifest does not list; empty when the version is intact."""
    import pyarrow.parquet as pq

    manifest = read_manifest(version_dir)
    bad = []
    listed = set()
    for f in manifest["files"]:
        rel = str(f.get("path"))
        listed.add(rel)
        p = version_dir / rel
        if not p.is_file():
            bad.append(f"{p}: missing")
            continue
        if sha256_file(p) != f.get("sha256"):
            bad.append(f"{p}: SHA-256 differs from the manifest (file changed or damaged)")
            continue
        try:
            rows = pq.read_metadata(p).num_rows
        except (OSError, ValueError) as err:
            bad.append(f"{p}: unreadable Parquet ({err})")
            continue
        if rows != f.get("rows"):
            bad.append(f"{p}: {rows} rows, the manifest says {f.get('rows')}")
    for p in sorted(version_dir.rglob("*.parquet")):
        rel = str(p.relative_to(version_dir))
        if rel not in listed and not any(part.startswith((".", "_")) for part in p.relative_to(version_dir).parts):
            bad.append(f"{p}: not listed in the manifest (mixed in from elsewhere)")
    return bad


def verify_manifest(version_dir: Path) -> list[str]:
    """Manifest paths of files whose row count or hash differ from the manifest (empty = intact)."""
    import pyarrow.parquet as pq

    bad = []
    for f in read_manifest(version_dir)["files"]:
        p = version_dir / f["path"]
        if not p.exists() or sha256_file(p) != f["sha256"] or pq.read_metadata(p).num_rows != f["rows"]:
            bad.append(f["path"])
    return bad


def verify_dataset(dataset_dir: Path, version: str | None = None) -> tuple[list[Path], list[str]]:
    """Check every complete version (or one) against its manifest: (versions checked, problems)."""
    dataset_dir = Path(dataset_dir)
    if version is not None:
        vdir = dataset_dir / (version if version.startswith("version=") else f"version={version}")
        if not vdir.is_dir():
            have = ", ".join(p.name.split("=", 1)[1] for p in list_versions(dataset_dir)) or "none"
            raise DataError(f"version {version} not found (complete versions: {have})",
                            where=str(dataset_dir), fix="pick one of those with --version")
        versions = [vdir]
    else:
        versions = list_versions(dataset_dir)
        if not versions:
            raise DataError("no published version found", where=str(dataset_dir),
                            fix="check the dataset name and --data-dir, or run `synthgen publish`")
    problems = []
    for vdir in versions:
        problems.extend(verify_problems(vdir))
    return versions, problems
