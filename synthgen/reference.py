"""A real reference set: the rows of real faces (row contract, ``source = real``) that shift analysis
and out-of-distribution evaluation compare against.

Base layer: ``analyze`` and ``train`` receive a ``Reference`` from the stage door
(``synthgen.stages``), which builds the offline demo reference through the ``real`` stage when
none is configured; they only read Parquet, and never import ``real``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from synthgen.errors import DataError


@dataclass(frozen=True)
class Reference:
    """Where the real rows are, a name for reports, and whether it is the small demo set (reports
    then say that its figures show the pipeline working, not a real-data comparison)."""

    path: Path
    name: str
    demo: bool = False


def read_reference(path: str | Path, columns: list[str] | None = None) -> pa.Table:
    """A real reference: one Parquet file or a folder of them (hive folders allowed)."""
    path = Path(path)
    if not path.exists():
        raise DataError("real reference not found", where=str(path),
                        fix="import one with `synthgen real import-*`, or leave analyze.reference empty for the demo")
    try:
        if path.is_dir():
            import pyarrow.dataset as ds

            dset = ds.dataset(path, format="parquet", partitioning="hive")
            cols = [c for c in (columns or dset.schema.names) if c in dset.schema.names]
            return dset.to_table(columns=cols)
        table = pq.read_table(path)
        if columns:
            table = table.select([c for c in columns if c in table.column_names])
        return table
    except (pa.ArrowInvalid, OSError) as err:
        raise DataError(f"not readable Parquet ({err})", where=str(path), fix="re-run the import") from None
