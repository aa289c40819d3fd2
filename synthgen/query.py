"""Query published datasets with polars: a LazyFrame entry point and the ``synthgen query`` core.

Scans prune to the files and columns a query needs, so filters over metadata never read image
bytes.
"""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl

from synthgen.errors import DataError

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


def scan(
    dataset: str | Path = "incabin-faces",
    data_dir: str | Path = "data",
    version: str | None = None,
    split: str | None = None,
) -> pl.LazyFrame:
    """A LazyFrame over a published dataset (all versions present unless ``version`` is given).

    ``dataset`` may be an ``s3://`` (any fsspec) URL of a dataset folder: then only versions whose
    upload finished (their manifest is there) are read, file by file as the manifest lists them."""
    from synthgen import storage

    if storage.is_url(dataset):
        lf = pl.scan_parquet(storage.version_files(str(dataset), version), hive_partitioning=True)
        return lf.filter(pl.col("split") == split) if split is not None else lf
    root = dataset_root(dataset, data_dir)
    if version is not None:
        root = root / f"version={version}"
        if not root.exists():
            raise DataError(f"version {version!r} not found", where=str(root),
                            fix="list versions with `ls` on the dataset folder, or omit --version")
    pattern = str(root / "**" / "*.parquet")
    if not any(root.rglob("*.parquet")):
        raise DataError("no Parquet files", where=str(root), fix="run `synthgen publish`")
    lf = pl.scan_parquet(pattern, hive_partitioning=True)
    if split is not None:
        lf = lf.filter(pl.col("split") == split)
    return lf


_SQL_FIX = "the table is called `dataset`; see `synthgen query --schema` for the columns"


def _polars_message(err: Exception) -> str:
    """polars' message without what buries the cause: the query plan it appends and the list of
    every column (``--schema`` prints them); its "Did you mean" hint stays."""
    text = str(err).split("Resolved plan until failure", 1)[0]
    text = re.sub(r"; valid columns: \[[^\]]*\]", "", text)
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def sql(lf: pl.LazyFrame, query: str) -> pl.LazyFrame:
    """Run SQL against the dataset, registered as table ``dataset``."""
    try:
        return pl.SQLContext(dataset=lf).execute(query, eager=False)
    except Exception as err:  # noqa: BLE001 - polars raises several error types for bad SQL
        raise DataError(f"SQL error: {_polars_message(err)}", where=query, fix=_SQL_FIX) from None


def collect(lf: pl.LazyFrame, what: str) -> pl.DataFrame:
    """Run a lazy query. Unknown columns and type errors only surface here, not when the SQL is
    parsed, so they get the same one-message treatment; ``what`` names the query for the message."""
    try:
        return lf.collect()
    except Exception as err:  # noqa: BLE001 - polars raises ColumnNotFound, SQLInterface, Compute, ...
        raise DataError(f"query failed: {_polars_message(err)}", where=what, fix=_SQL_FIX) from None


def select_where(
    lf: pl.LazyFrame,
    where: str | None = None,
    columns: list[str] | None = None,
    group_by: list[str] | None = None,
) -> pl.LazyFrame:
    """``--where`` is an SQL condition, ``--group-by`` counts rows (and averages numeric --select columns)."""
    cols = ", ".join(f'"{c}"' for c in columns) if columns else "*"
    clause = f" WHERE {where}" if where else ""
    if group_by:
        keys = ", ".join(f'"{c}"' for c in group_by)
        aggs = "".join(f', AVG("{c}") AS "mean_{c}"' for c in (columns or []) if c not in group_by)
        return sql(lf, f"SELECT {keys}, COUNT(*) AS n{aggs} FROM dataset{clause} GROUP BY {keys} ORDER BY {keys}")
    if cols == "*":
        return sql(lf, f"SELECT * FROM dataset{clause}")
    return sql(lf, f"SELECT {cols} FROM dataset{clause}")


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
    """Write ``.csv`` (images summarised) or ``.parquet`` (everything kept), atomically."""
    from synthgen.io import atomic_path

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise DataError(f"unknown export format {suffix!r}", where=str(path), fix="use a .csv or .parquet path")
    with atomic_path(path) as tmp:
        if suffix == ".csv":
            displayable(df).write_csv(tmp)
        else:
            df.write_parquet(tmp, compression="zstd")
    return path
