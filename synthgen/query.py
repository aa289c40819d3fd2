"""Query published datasets with polars: a LazyFrame entry point and the ``synthgen query`` core.

Scans prune to the files and columns a query needs, so filters over metadata never read image
bytes.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from synthgen.errors import DataError

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    import pyarrow as pa

IMAGE_COLUMNS = ("image", "control_image", "req_occluder_mask")


def dataset_root(dataset: str | Path, data_dir: str | Path = "data") -> Path:
    """A dataset name (looked up under ``<data_dir>/datasets``) or a folder path."""
    p = Path(dataset)
    if p.exists():
        return p
    root = Path(data_dir) / "datasets" / str(dataset)
    if root.exists():
        return root
    known = sorted(d.name for d in (Path(data_dir) / "datasets").glob("*") if d.is_dir())
    raise DataError(
        f"dataset {dataset!r} not found",
        where=str(root),
        fix=f"run `synthgen run` first, or pass a folder path; known datasets: {known or 'none'}",
    )


@dataclass(frozen=True)
class Selection:
    """What a scan reads: the dataset folder, the versions chosen (oldest first) and their files."""

    root: Path
    versions: tuple[str, ...]
    available: tuple[str, ...]
    files: tuple[Path, ...]

    def describe(self) -> str:
        """One line for stderr: which version was read, so a count never mixes versions unseen."""
        if len(self.versions) == 1:
            others = len(self.available) - 1
            more = f" (latest of {len(self.available)}; --version V picks another)" if others else ""
            return f"reading {self.root.name} version {self.versions[0]}{more}"
        return f"reading {self.root.name}: {len(self.versions)} versions mixed ({', '.join(self.versions)})"


def complete_versions(root: Path) -> list[Path]:
    """The complete versions under a dataset folder, oldest publish first (a version is complete
    once its manifest is in place; temp and half-built folders are never listed)."""
    from synthgen.shards import list_versions

    return list_versions(root)


def version_files(version_dir: Path) -> list[Path]:
    """The data files of one version (hive ``split=`` folders; non-Parquet files are left out)."""
    return sorted(version_dir.glob("split=*/*.parquet"))


def select(
    dataset: str | Path = "incabin-faces",
    data_dir: str | Path = "data",
    version: str | None = None,
    split: str | None = None,
    all_versions: bool = False,
) -> Selection:
    """Choose what to read: the latest complete version unless ``version`` names one or
    ``all_versions`` mixes them on purpose. A folder ``.../version=<v>`` is that version."""
    root = dataset_root(dataset, data_dir)
    if root.name.startswith("version=") and version is None:
        version, root = root.name.removeprefix("version="), root.parent
    dirs = complete_versions(root)
    names = tuple(d.name.removeprefix("version=") for d in dirs)
    if not dirs:
        raise DataError("no complete published version", where=str(root), fix="run `synthgen publish`")
    if version is not None and all_versions:
        raise DataError("--version and --all-versions exclude each other", where="synthgen query",
                        fix="pass one of them")
    if all_versions:
        chosen = dirs
    elif version is not None:
        chosen = [d for d in dirs if d.name == f"version={version}"]
        if not chosen:
            raise DataError(f"version {version!r} not found", where=str(root),
                            fix=f"published versions (oldest first): {', '.join(names)}")
    else:
        chosen = dirs[-1:]
    files = [f for d in chosen for f in version_files(d)]
    if split is not None:
        splits = sorted({f.parent.name.removeprefix("split=") for f in files})
        if split not in splits:
            raise DataError(f"no split {split!r}", where=str(root), fix=f"splits here: {', '.join(splits)}")
        files = [f for f in files if f.parent.name == f"split={split}"]
    if not files:
        raise DataError("no Parquet files", where=str(root), fix="run `synthgen publish`")
    return Selection(root, tuple(d.name.removeprefix("version=") for d in chosen), names, tuple(files))


def scan_selection(sel: Selection) -> pl.LazyFrame:
    """Lazy scan of the selected files through the checked reader: every page's checksum is
    verified, so a damaged part is an error naming it, never wrong numbers. Hive partitioning
    turns the version= and split= folders into columns."""
    from synthgen.shards import open_dataset

    return pl.scan_pyarrow_dataset(open_dataset(list(sel.files)))


def scan(
    dataset: str | Path = "incabin-faces",
    data_dir: str | Path = "data",
    version: str | None = None,
    split: str | None = None,
    all_versions: bool = False,
) -> pl.LazyFrame:
    """A LazyFrame over one published version: the latest complete one unless ``version`` is
    given; ``all_versions=True`` mixes every version on purpose (the ``version`` column tells
    them apart).

    ``dataset`` may be an ``s3://`` (any fsspec) URL of a dataset folder: then only versions whose
    upload finished (their manifest is there) are read, file by file as the manifest lists them;
    with several versions there, name one (``version``) or ask for all: object stores keep no
    order of publication to call one the latest."""
    from synthgen import storage

    if storage.is_url(dataset):
        return _scan_url(str(dataset), version, split, all_versions)
    sel = select(dataset, data_dir, version, split, all_versions)
    logger.info(sel.describe())
    return scan_selection(sel)


def _scan_url(url: str, version: str | None, split: str | None, all_versions: bool) -> pl.LazyFrame:
    from synthgen import storage

    versions = storage.complete_versions(url)
    if version is None and not all_versions and len(versions) > 1:
        raise DataError(f"{len(versions)} complete versions: name one", where=url,
                        fix=f"pass --version (one of {', '.join(versions)}) or --all-versions")
    chosen = [version] if version is not None else versions
    files = [f for v in chosen for f in storage.version_files(url, v)] if chosen else storage.version_files(url)
    logger.info("reading %s version(s) %s", url, ", ".join(chosen))
    lf = pl.scan_parquet(files, hive_partitioning=True)
    return lf.filter(pl.col("split") == split) if split is not None else lf


_SQL_FIX = "the table is called `dataset`; see `synthgen query --schema` for the columns"


def _polars_message(err: Exception) -> str:
    """polars' message without what buries the cause: the query plan it appends and the list of
    every column (``--schema`` prints them); its "Did you mean" hint stays."""
    text = str(err).split("Resolved plan until failure", 1)[0]
    text = re.sub(r"; valid columns: \[[^\]]*\]", "", text)
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


_READ_ONLY = re.compile(r"^\s*(\(\s*)*(SELECT|WITH)\b", re.IGNORECASE)


def sql(lf: pl.LazyFrame, query: str) -> pl.LazyFrame:
    """Run a SELECT against the dataset, registered as table ``dataset``. Anything else (DROP,
    CREATE, ...) would only change polars' in-memory catalogue and print nothing: refused."""
    if not _READ_ONLY.match(query):
        raise DataError("only SELECT (or WITH ... SELECT) queries are allowed: published data is read-only",
                        where=query, fix="write a query that starts with SELECT")
    try:
        return pl.SQLContext(dataset=lf).execute(query, eager=False)
    except Exception as err:  # noqa: BLE001 - polars raises several error types for bad SQL
        raise DataError(f"SQL error: {_polars_message(err)}", where=query, fix=_SQL_FIX) from None


def collect(lf: pl.LazyFrame, what: str) -> pl.DataFrame:
    """Run a lazy query. Unknown columns and type errors only surface here, not when the SQL is
    parsed, so they get the same one-message treatment; ``what`` names the query for the message."""
    try:
        return lf.collect()
    except Exception as err:  # noqa: BLE001 - polars fails lazily with several error types
        raise DataError(f"query failed: {_polars_message(err)}", where=what, fix=_SQL_FIX) from None


def select_where(
    lf: pl.LazyFrame,
    where: str | None = None,
    columns: list[str] | None = None,
    group_by: list[str] | None = None,
) -> pl.LazyFrame:
    """``--where`` is an SQL condition, ``--group-by`` counts rows (and averages numeric --select columns)."""
    cols = ", ".join(f'"{c}"' for c in columns) if columns else "*"
    if where:
        _check_condition(lf, where)
    clause = f" WHERE {where}" if where else ""
    if group_by:
        keys = ", ".join(f'"{c}"' for c in group_by)
        aggs = "".join(f', AVG("{c}") AS "mean_{c}"' for c in (columns or []) if c not in group_by)
        return sql(lf, f"SELECT {keys}, COUNT(*) AS n{aggs} FROM dataset{clause} GROUP BY {keys} ORDER BY {keys}")
    if cols == "*":
        return sql(lf, f"SELECT * FROM dataset{clause}")
    return sql(lf, f"SELECT {cols} FROM dataset{clause}")


def _check_condition(lf: pl.LazyFrame, where: str) -> None:
    """A --where that is not true/false (``1/0``, ``req_age``) would keep every row: refuse it."""
    cond = sql(lf, f"SELECT ({where}) AS __where FROM dataset")
    try:
        dtype = cond.collect_schema()["__where"]
    except Exception as err:  # noqa: BLE001 - polars fails lazily with several error types
        raise DataError(f"query failed: {_polars_message(err)}", where=where, fix=_SQL_FIX) from None
    if dtype != pl.Boolean:
        raise DataError(f"--where must be a true/false condition, this one gives {dtype}", where=where,
                        fix="compare something, e.g. --where \"accepted AND req_age > 60\"")


def reject_summary(lf: pl.LazyFrame) -> pl.DataFrame:
    """Rows per reject reason, after a first row counting the accepted ones."""
    from synthgen.curate.core import reject_summary as by_reason

    total = lf.select(pl.len()).collect().item()
    accepted = lf.select(pl.col("accepted").sum()).collect().item() or 0
    head = pl.DataFrame({"reason": ["(accepted)"], "rows": [int(accepted)],
                         "fraction": [accepted / max(total, 1)]})
    return pl.concat([head, by_reason(lf)], how="vertical_relaxed")


def displayable(df: pl.DataFrame) -> pl.DataFrame:
    """Replace image structs by a short description and lists by their length, for terminals and CSV."""
    out = []
    for name, dtype in df.schema.items():
        col = pl.col(name)
        if isinstance(dtype, pl.Struct) and name in IMAGE_COLUMNS:
            out.append(
                pl.when(col.is_null()).then(None).otherwise(
                    pl.format("<png {} B>", col.struct.field("bytes").bin.size())
                ).alias(name)
            )
        elif isinstance(dtype, pl.List):
            out.append(col.cast(pl.List(pl.String)).list.join(",").alias(name))
        elif isinstance(dtype, pl.Binary):
            out.append(pl.format("<{} B>", col.bin.size()).alias(name))
        else:
            out.append(col)
    return df.select(out)


def export(df: pl.DataFrame, path: str | Path) -> Path:
    """Write ``.csv`` (images summarised) or ``.parquet`` (everything kept, the image columns
    declared as ``datasets`` Image features), atomically."""
    from synthgen.io import atomic_path

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise DataError(f"unknown export format {suffix!r}", where=str(path), fix="use a .csv or .parquet path")
    if path.is_dir():
        raise DataError("is a directory", where=str(path), fix="pass a file path ending in .csv or .parquet")
    with atomic_path(path) as tmp:
        if suffix == ".csv":
            displayable(df).write_csv(tmp)
        else:
            import pyarrow.parquet as pq

            pq.write_table(with_image_features(df.to_arrow()), tmp, compression="zstd")
    return path


def with_image_features(table: "pa.Table") -> "pa.Table":
    """polars hands image structs back with large binary/string fields; cast them to the
    contract's image type and declare them in the schema so ``datasets`` decodes images."""
    import pyarrow as pa

    from synthgen.contract import IMAGE_TYPE, hf_image_metadata

    fields = []
    for f in table.schema:
        is_image = f.name in IMAGE_COLUMNS and pa.types.is_struct(f.type)
        fields.append(pa.field(f.name, IMAGE_TYPE) if is_image else f)
    table = table.cast(pa.schema(fields))
    return table.replace_schema_metadata(hf_image_metadata(table.schema))


def summary(df: pl.DataFrame) -> str:
    """A short description of an exported frame: rows, columns, and the image columns kept."""
    images = [c for c in df.columns if c in IMAGE_COLUMNS]
    kept = f"; images kept in {', '.join(images)}" if images else ""
    return f"{df.height} rows x {df.width} columns{kept}"
