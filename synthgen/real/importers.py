"""Importers for common real face layouts. Each reads the layout's own label format, normalises it
to the shared vocabulary, and writes one Parquet file in the row contract (``source="real"``).

Pass ``label_params`` (a LabelParams) to run the labellers on the imported images: they add what the
data set lacks (identity embedding for the embedding metrics, head pose, gaze, ...), and the
labels the data set ships are kept over the labellers' guesses.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from synthgen.errors import DataError
from synthgen.real.labels import RAFDB_EXPRESSIONS
from synthgen.real.rows import IMAGE_SUFFIXES, Entry, ImportResult, finish

FILE_COLUMNS = ("file", "path", "image", "filename", "name")


def _images_under(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise DataError("image folder not found", where=str(folder), fix="pass an existing folder of images")
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def read_label_table(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """CSV or Parquet rows as (line number, dict). CSV line numbers count the header as line 1."""
    if not path.exists():
        raise DataError("label file not found", where=str(path), fix="pass an existing CSV or Parquet file")
    if path.suffix.lower() in (".parquet", ".pq"):
        try:
            rows = pq.read_table(path).to_pylist()
        except Exception as err:  # noqa: BLE001 - any reader failure is a data error here
            raise DataError(f"not readable Parquet ({err})", where=str(path)) from None
        return [(i + 1, r) for i, r in enumerate(rows)]
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            if not reader.fieldnames:
                raise DataError("empty CSV (no header)", where=str(path), fix="add a header row with a 'file' column")
            return [(i + 2, {k.strip(): v for k, v in r.items() if k is not None}) for i, r in enumerate(reader)]
    except UnicodeDecodeError as err:
        raise DataError(f"not UTF-8 text ({err.reason})", where=str(path)) from None


def outside(root: Path, name: str) -> str | None:
    """Why a label file's image path is refused, or None. Paths must stay inside the image folder:
    a label file is data, and must not make the import read (and copy into Parquet) other files
    such as ``../../etc/passwd``."""
    if Path(name).is_absolute():
        return f"{name}: absolute path (paths are relative to {root})"
    try:
        (root / name).resolve().relative_to(root.resolve())
    except ValueError:
        return f"{name}: path leaves the image folder {root}"
    return None


def _entry(root: Path, name: str, labels: dict[str, Any], origin: str, line: int | None,
           split: str | None = None) -> Entry:
    return Entry(root / name, labels, origin, line, split, error=outside(root, name))


def _file_column(rows: list[tuple[int, dict[str, Any]]], path: Path, preferred: str | None = None) -> str:
    names = list(rows[0][1]) if rows else []
    for c in ([preferred] if preferred else []) + list(FILE_COLUMNS):
        if c in names:
            return c
    raise DataError(f"no image file column; columns are {names}", where=str(path),
                    fix=f"name the column with the image file one of: {', '.join(FILE_COLUMNS)}")


def import_folder(
    folder: str | Path,
    out: str | Path,
    labels: str | Path | None = None,
    dataset: str = "folder",
    label_params: Any | None = None,
    progress: bool = True,
) -> ImportResult:
    """Every image under ``folder``; labels (optional) from a CSV/Parquet with a file column and any
    of: age, age_group, gender, expression, gaze_yaw, gaze_pitch, gaze_zone, head_yaw/pitch/roll,
    split. Images the label file does not list are imported without labels."""
    folder = Path(folder)
    images = _images_under(folder)
    by_file: dict[str, tuple[int, dict[str, Any]]] = {}
    entries: list[Entry] = []
    again: list[Entry] = []  # an image listed on a second line: after its first, so it is reported
    if labels is not None:
        lpath = Path(labels)
        rows = read_label_table(lpath)
        col = _file_column(rows, lpath)
        for line, r in rows:
            name = str(r.get(col) or "").strip()
            escape = outside(folder, name)
            if escape:
                entries.append(Entry(folder / name, {}, str(lpath), line, error=escape))
                continue
            if not (folder / name).is_file():
                entries.append(Entry(folder / name, {}, str(lpath), line))  # reported as unreadable
                continue
            key = str((folder / name).resolve())
            if key in by_file:
                again.append(Entry(folder / name, r, str(lpath), line))
                continue
            by_file[key] = (line, r)
    for img in images:
        hit = by_file.get(str(img.resolve()))
        lineno, r = hit if hit is not None else (None, {})
        origin = str(labels) if hit is not None else str(img)
        split = r.get("split") or None
        entries.append(Entry(img, r, origin, lineno, split if split in ("train", "val", "test") else None))
    return finish(entries + again, dataset, folder, Path(out), label_params, progress)


_UTK = re.compile(r"^(\d+)_(\d+)_(\d+)_\d+")


def utkface_entries(folder: Path) -> Iterator[Entry]:
    """UTKFace names: ``age_gender_race_datetime.jpg`` (gender 0 male, 1 female)."""
    for img in _images_under(folder):
        m = _UTK.match(img.name)
        if not m:
            yield Entry(img, {}, str(img), error="file name is not age_gender_race_date.jpg")
            continue
        age, gender = int(m.group(1)), int(m.group(2))
        if gender not in (0, 1):
            yield Entry(img, {}, str(img), error=f"gender code {gender} in the file name (allowed 0 male, 1 female)")
            continue
        yield Entry(img, {"age": age, "gender": ("male", "female")[gender]}, str(img))


def import_utkface(folder: str | Path, out: str | Path, label_params: Any | None = None, progress: bool = True) -> ImportResult:
    folder = Path(folder)
    return finish(utkface_entries(folder), "utkface", folder, Path(out), label_params, progress)


def import_fairface(
    labels_csv: str | Path,
    out: str | Path,
    image_root: str | Path | None = None,
    label_params: Any | None = None,
    progress: bool = True,
) -> ImportResult:
    """FairFace label CSV (``file,age,gender,race[,service_test]``): age is a group ("20-29",
    "more than 70"); ``file`` is relative to ``image_root`` (default: the CSV's folder)."""
    lpath = Path(labels_csv)
    root = Path(image_root) if image_root is not None else lpath.parent
    rows = read_label_table(lpath)
    col = _file_column(rows, lpath, "file")
    split = "val" if "val" in lpath.stem else "train" if "train" in lpath.stem else None
    entries = [
        _entry(root, str(r.get(col) or ""), {"age_group": r.get("age"), "gender": r.get("gender")}, str(lpath), line, split)
        for line, r in rows
    ]
    return finish(entries, "fairface", root, Path(out), label_params, progress)


def rafdb_entries(list_file: Path, image_dir: Path) -> Iterator[Entry]:
    """``list_patition_label.txt``: ``train_00001.jpg 5`` per line, labels 1-7 in RAF-DB order. The
    aligned release names the files ``train_00001_aligned.jpg``; both are looked for."""
    try:
        lines = list_file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"label list cannot be read ({err})", where=str(list_file)) from None
    for n, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        parts = text.split()
        name = parts[0]
        if outside(image_dir, name):
            yield Entry(image_dir / name, {}, str(list_file), n, error=outside(image_dir, name))
            continue
        img = image_dir / name
        if not img.exists():
            alt = image_dir / f"{Path(name).stem}_aligned{Path(name).suffix}"
            img = alt if alt.exists() else img
        split = "train" if name.startswith("train") else "test" if name.startswith("test") else None
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
            yield Entry(img, {}, str(list_file), n, split, error=f"line {text!r} is not 'FILE LABEL'")
            continue
        code = int(parts[1])
        if code not in RAFDB_EXPRESSIONS:
            yield Entry(img, {}, str(list_file), n, split, error=f"RAF-DB label {code} out of range (allowed 1-7)")
            continue
        yield Entry(img, {"expression": RAFDB_EXPRESSIONS[code]}, str(list_file), n, split)


def import_rafdb(
    list_file: str | Path,
    image_dir: str | Path,
    out: str | Path,
    label_params: Any | None = None,
    progress: bool = True,
) -> ImportResult:
    image_dir = Path(image_dir)
    return finish(rafdb_entries(Path(list_file), image_dir), "rafdb", image_dir, Path(out), label_params, progress)


def import_gaze(
    table: str | Path,
    out: str | Path,
    image_root: str | Path | None = None,
    yaw_column: str = "yaw",
    pitch_column: str = "pitch",
    file_column: str | None = None,
    radians: bool = False,
    label_params: Any | None = None,
    progress: bool = True,
) -> ImportResult:
    """A gaze table (CSV/Parquet) with an image file column and yaw/pitch columns, in the
    synthgen.geometry convention (camera frame; pass ``radians=True`` for radian tables). A
    ``gaze_zone`` column, when present, is imported too."""
    import math

    lpath = Path(table)
    root = Path(image_root) if image_root is not None else lpath.parent
    rows = read_label_table(lpath)
    if not rows:
        raise DataError("gaze table is empty", where=str(lpath))
    col = _file_column(rows, lpath, file_column)
    for c in (yaw_column, pitch_column):
        if c not in rows[0][1]:
            raise DataError(f"no column {c!r}; columns are {list(rows[0][1])}", where=str(lpath),
                            fix="pass --yaw-column/--pitch-column with the right names")
    entries = []
    for line, r in rows:
        labels: dict[str, Any] = {"gaze_yaw": r.get(yaw_column), "gaze_pitch": r.get(pitch_column)}
        if radians:
            try:
                labels = {k: math.degrees(float(v)) for k, v in labels.items()}
            except (TypeError, ValueError):
                pass  # left as is: normalise() reports the bad value with its line
        for extra in ("gaze_zone", "head_yaw", "head_pitch", "head_roll", "age", "gender", "expression"):
            if extra in r:
                labels[extra] = r[extra]
        entries.append(_entry(root, str(r.get(col) or ""), labels, str(lpath), line))
    return finish(entries, "gaze", root, Path(out), label_params, progress)
