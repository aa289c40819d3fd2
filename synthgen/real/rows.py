"""Turn (image file, labels) entries into row-contract rows, label what is missing, write Parquet.

Bad entries (unreadable image, label out of range, unknown class) become ``BadRow`` records with the
file and line they came from; the other rows are still imported.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from synthgen.contract import BASE_FIELDS, MEAS_FIELDS, conform
from synthgen.errors import DataError
from synthgen.images import decode_rgb
from synthgen.io import stable_hash
from synthgen.real.labels import COLUMNS, LABELER_COLUMN, normalise

REAL_SCHEMA = pa.schema(BASE_FIELDS + MEAS_FIELDS)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
# Face crops and photos are far below this; a bigger image (or a header that claims one) would be
# decoded into gigabytes and stored whole in the Parquet file. 40 MP = e.g. 7300 x 5500.
MAX_PIXELS = 40_000_000


@dataclass(frozen=True)
class BadRow:
    file: str
    line: int | None
    reason: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.reason}"


@dataclass(frozen=True)
class Entry:
    """One image to import: where it is, its labels, and where those labels were read from."""

    image: Path
    labels: dict[str, Any]
    origin: str  # file the entry came from (a label list, or the image itself)
    line: int | None = None
    split: str | None = None
    error: str | None = None  # known bad before reading (e.g. a file name that does not parse)


@dataclass
class ImportResult:
    path: Path
    rows: int
    bad: list[BadRow] = field(default_factory=list)
    labelled: bool = False
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return f"{self.rows} rows written to {self.path}; {len(self.bad)} bad rows skipped"


def check_size(data: bytes, limit: int = MAX_PIXELS) -> None:
    """Read the image header only and refuse an image over ``limit`` pixels before decoding it."""
    import io
    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                w, h = img.size
    except Image.DecompressionBombError:
        # PIL refuses to even open a header past twice its own limit; the size is over ours too
        raise ValueError(f"image is over {2 * (Image.MAX_IMAGE_PIXELS or 0) // 1_000_000} MP, above the "
                         f"{limit // 1_000_000} MP limit: resize it") from None
    except Exception:  # noqa: BLE001 - not an image PIL reads: the decoder downstream reports it
        return
    if w * h > limit:
        raise ValueError(f"image is {w}x{h} pixels, over the {limit // 1_000_000} MP limit: resize it")


def make_row(entry: Entry, dataset: str, root: Path) -> dict[str, Any]:
    """One row; raises ValueError/DataError for a bad image or label (caught by the caller)."""
    if entry.error:
        raise ValueError(entry.error)
    try:
        data = entry.image.read_bytes()
    except OSError as err:
        raise DataError(f"image cannot be read ({err.strerror or err})") from None
    check_size(data)
    rgb = decode_rgb(data, where=str(entry.image))
    labels = normalise(entry.labels)
    try:
        rel = str(entry.image.resolve().relative_to(root.resolve()))
    except ValueError:
        rel = str(entry.image)
    row: dict[str, Any] = {
        "sample_id": "real-" + stable_hash({"dataset": dataset, "path": rel}),
        "source": "real",
        "dataset": dataset,
        "split": entry.split or "test",
        "image": {"bytes": data, "path": rel},
        "width": int(rgb.shape[1]),
        "height": int(rgb.shape[0]),
    }
    for name, value in labels.items():
        row[COLUMNS[name]] = value
        row[LABELER_COLUMN[name]] = f"ground_truth:{dataset}"
    return row


def build_rows(entries: Iterable[Entry], dataset: str, root: Path) -> tuple[list[dict[str, Any]], list[BadRow]]:
    rows, bad, seen = [], [], set()
    for e in entries:
        try:
            row = make_row(e, dataset, root)
        except (ValueError, DataError) as err:
            what = err.what if isinstance(err, DataError) else str(err)
            bad.append(BadRow(str(e.origin), e.line, f"{e.image.name}: {what}" if e.origin != str(e.image) else what))
            continue
        if row["sample_id"] in seen:
            bad.append(BadRow(str(e.origin), e.line, f"{e.image.name}: listed twice"))
            continue
        seen.add(row["sample_id"])
        rows.append(row)
    return rows, bad


def rows_to_table(rows: list[dict[str, Any]]) -> pa.Table:
    cols = {}
    for f in REAL_SCHEMA:
        cols[f.name] = pa.array([r.get(f.name) for r in rows], type=f.type)
    return pa.table(cols, schema=REAL_SCHEMA)


def merge_labels(imported: pa.Table, labelled: pa.Table) -> pa.Table:
    """Ground truth wins: a ``meas_*`` value the data set shipped is kept, the labellers fill the rest."""
    out = labelled
    for name in imported.column_names:
        if not name.startswith("meas_") or name not in labelled.column_names:
            continue
        truth = imported.column(name).to_pylist()
        if all(v is None for v in truth):
            continue
        got = labelled.column(name).to_pylist()
        merged = [t if t is not None else g for t, g in zip(truth, got, strict=True)]
        i = out.column_names.index(name)
        out = out.set_column(i, out.schema.field(name), pa.array(merged, type=out.schema.field(name).type))
    return out


def label_table(table: pa.Table, label_params: Any, progress: bool = True) -> pa.Table:
    """Run the labellers (synthgen.label) and keep the shipped ground truth over their guesses."""
    from synthgen.label.pipeline import label_rows

    return merge_labels(table, label_rows(table, label_params, progress=progress))


def write_real(table: pa.Table, out: Path) -> Path:
    from synthgen.shards import write_parquet_atomic

    return write_parquet_atomic(conform(table, REAL_SCHEMA), out, row_group_size=100)


def finish(
    entries: Iterable[Entry],
    dataset: str,
    root: Path,
    out: Path,
    label_params: Any | None,
    progress: bool = True,
) -> ImportResult:
    """Build, optionally label, and write atomically. No usable row is an error (nothing to write)."""
    rows, bad = build_rows(entries, dataset, root)
    if not rows:
        detail = "; ".join(str(b) for b in bad[:5]) or "no images found"
        raise DataError(f"no usable rows ({len(bad)} bad): {detail}", where=str(root),
                        fix="check the image folder and the label file")
    table = rows_to_table(rows)
    warnings: list[str] = []
    if label_params is not None:
        table = label_table(table, label_params, progress)
        warnings += group_photos(table)
    path = write_real(table, Path(out))
    return ImportResult(path, table.num_rows, bad, label_params is not None, warnings)


def group_photos(table: pa.Table) -> list[str]:
    """A row is one face: an image where the detector finds several gets labels meant for one of
    them (and the embedding metrics a mix). Kept, but said, naming the files."""
    if "meas_face_count" not in table.column_names:
        return []
    counts = table.column("meas_face_count").to_pylist()
    paths = [(img or {}).get("path") for img in table.column("image").to_pylist()]
    many = [(p, c) for p, c in zip(paths, counts, strict=True) if c is not None and c > 1]
    if not many:
        return []
    shown = ", ".join(f"{p} ({c} faces)" for p, c in many[:5]) + (" ..." if len(many) > 5 else "")
    return [f"{len(many)} image(s) show more than one face but are imported as one labelled face: "
            f"{shown}; crop them to one face each or leave them out"]

