"""Streaming the published Parquet shards into training batches.

Two passes with different costs:
1. :func:`build_index` reads only the small columns (split, accepted, source, labels) of every
   row group: a few bytes per row, so even millions of rows fit, and every sampling decision
   (balance, curriculum, shuffle) is made up front, deterministically from the seed and epoch.
2. :class:`RowGroupStream` reads the image column one row group at a time in DataLoader
   workers (row groups dealt round-robin to processes and workers), decodes PNG with OpenCV and
   resizes once. A dataset is never loaded into memory whole.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch.utils.data import IterableDataset, get_worker_info

from synthgen.errors import DataError
from synthgen.io import TMP_PREFIX
from synthgen.train.tasks import N_CLS, N_REG, TASK_SPECS, balance_key, extract_targets, label_columns, task_has_labels

cv2.setNumThreads(1)  # workers are the parallelism; OpenCV's own threads would fight them


def parquet_files(root: Path) -> list[Path]:
    """Complete Parquet files under ``root`` (a file or a hive folder), in a stable order."""
    root = Path(root)
    if root.is_file():
        return [root]
    if not root.exists():
        return []
    return sorted(
        p for p in root.rglob("*.parquet") if not p.name.startswith((TMP_PREFIX, ".", "_"))
    )


def _hive_value(path: Path, key: str) -> str | None:
    for part in path.parts:
        if part.startswith(key + "="):
            return part.split("=", 1)[1]
    return None


@dataclass
class RowIndex:
    """Where each usable row lives and what its targets are. Row ``i`` is in
    ``files[file[i]]``, row group ``group[i]``, position ``pos[i]`` inside it."""

    files: list[Path]
    file: np.ndarray
    group: np.ndarray
    pos: np.ndarray
    split: np.ndarray
    source: np.ndarray
    reg: np.ndarray
    cls: np.ndarray
    rejected: Counter = field(default_factory=Counter)
    total_rows: int = 0

    def __len__(self) -> int:
        return len(self.file)

    def subset(self, mask: np.ndarray) -> "RowIndex":
        return RowIndex(
            self.files, self.file[mask], self.group[mask], self.pos[mask], self.split[mask],
            self.source[mask], self.reg[mask], self.cls[mask], self.rejected, self.total_rows,
        )


def _index_columns(sources: dict[str, str], tasks: Sequence[str]) -> list[str]:
    """The small columns the index reads: bookkeeping plus each task's label columns."""
    wanted = ["split", "accepted", "source", "reject_reasons"] + label_columns(sources, tasks)
    if "age" in tasks:
        wanted.append(f"{sources['age']}_age")
    return list(dict.fromkeys(wanted))


def _open_parquet(path: Path) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as err:
        raise DataError(f"not a readable Parquet file ({err})", where=str(path),
                        fix="re-publish the dataset version") from None


def _accepted_mask(tab: pa.Table, path: Path, require_accepted: bool) -> np.ndarray:
    """Rows to keep: ``accepted == True``; a real set without the column keeps every row."""
    if "accepted" in tab.column_names:
        return np.asarray(tab.column("accepted").fill_null(False).to_numpy(zero_copy_only=False), bool)
    if require_accepted:
        raise DataError(
            "shard has no 'accepted' column (not curated)",
            where=str(path),
            fix="train on a published dataset version (curate runs before publish)",
        )
    return np.ones(tab.num_rows, bool)


def _count_rejects(tab: pa.Table, acc: np.ndarray, rejected: Counter) -> None:
    if "reject_reasons" in tab.column_names and not acc.all():
        for reasons in tab.column("reject_reasons").filter(pa.array(~acc)).to_pylist():
            rejected.update(reasons or ["(no reason)"])


def _text_column(tab: pa.Table, name: str, default: str) -> np.ndarray:
    if name in tab.column_names:
        return np.asarray(tab.column(name).fill_null(default).to_pylist(), object)
    return np.full(tab.num_rows, default, object)


@dataclass
class _IndexParts:
    """Per-row-group pieces of a :class:`RowIndex`, concatenated once at the end."""

    cols: dict[str, list[np.ndarray]] = field(
        default_factory=lambda: {k: [] for k in ("file", "group", "pos", "split", "source", "reg", "cls")})

    def add(self, fi: int, g: int, keep: np.ndarray, split: np.ndarray, source: np.ndarray,
            reg: np.ndarray, cls: np.ndarray) -> None:
        for key, value in (("file", np.full(len(keep), fi, np.int32)), ("group", np.full(len(keep), g, np.int32)),
                           ("pos", keep.astype(np.int32)), ("split", split), ("source", source),
                           ("reg", reg), ("cls", cls)):
            self.cols[key].append(value)

    def finish(self, files: list[Path], rejected: Counter, total: int) -> RowIndex:
        if not self.cols["file"]:
            return RowIndex(files, np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.int32),
                            np.zeros(0, object),
                            np.zeros(0, object), np.zeros((0, N_REG), np.float32),
                            np.zeros((0, N_CLS), np.int64), rejected, total)
        c = {k: np.concatenate(v) for k, v in self.cols.items()}
        return RowIndex(files, c["file"], c["group"], c["pos"], c["split"], c["source"], c["reg"], c["cls"],
                        rejected, total)


def build_index(
    root: Path,
    sources: dict[str, str],
    tasks: Sequence[str],
    *,
    require_accepted: bool = True,
    what: str = "dataset",
) -> RowIndex:
    """Scan the label columns of every row group under ``root``.

    ``require_accepted``: keep only rows with ``accepted == True`` (the published synthetic
    set); a real reference set without an ``accepted`` column keeps every row.
    """
    files = parquet_files(root)
    if not files:
        raise DataError(
            f"no Parquet shards found for the {what}",
            where=str(root),
            fix="publish a dataset version first (synthgen publish / dvc repro), or point to an existing one",
        )
    wanted = _index_columns(sources, tasks)
    parts = _IndexParts()
    rejected: Counter = Counter()
    total = 0
    for fi, path in enumerate(files):
        pf = _open_parquet(path)
        present = [c for c in wanted if c in pf.schema_arrow.names]
        hive_split = _hive_value(path, "split") or ""
        for g in range(pf.num_row_groups):
            tab = pf.read_row_group(g, columns=present)
            total += tab.num_rows
            acc = _accepted_mask(tab, path, require_accepted)
            _count_rejects(tab, acc, rejected)
            keep = np.flatnonzero(acc)
            if keep.size == 0:
                continue
            tab = tab.take(pa.array(keep))
            reg, cls = extract_targets(tab, sources, tasks, where=f"{path} (row group {g})")
            parts.add(fi, g, keep, _text_column(tab, "split", hive_split), _text_column(tab, "source", "synthetic"),
                      reg, cls)
    return parts.finish(files, rejected, total)


def limit_rows(index: RowIndex, n: int, seed: int) -> RowIndex:
    """At most ``n`` rows of ``index`` (0 = all), chosen by whole identity-free random draw from ``seed``.

    For learning curves (how do metrics move with the number of training images): the same seed
    and ``n`` always pick the same rows, and a smaller ``n`` picks a subset of a larger one's rows.
    """
    if n <= 0 or n >= len(index):
        return index
    order = np.random.default_rng([seed, 0x5EED]).permutation(len(index))
    mask = np.zeros(len(index), bool)
    mask[order[:n]] = True
    return index.subset(mask)


def require_rows(index: RowIndex, root: Path, split: str) -> None:
    """Fail clearly when a split has no accepted rows instead of training an empty model."""
    if len(index):
        return
    reasons = ", ".join(f"{r} ({n})" for r, n in index.rejected.most_common(3)) or "none recorded"
    raise DataError(
        f"no accepted rows in split={split} ({index.total_rows} rows in the dataset; "
        f"top reject reasons: {reasons})",
        where=str(root),
        fix="loosen the curate thresholds or generate more samples, then publish again",
    )


def require_labels(index: RowIndex, tasks: Sequence[str], sources: dict[str, str], root: Path) -> None:
    """Every task to train must have at least one label, else its head would be a silent guess."""
    for t in tasks:
        if not task_has_labels(t, index.reg, index.cls).any():
            cols = ", ".join(TASK_SPECS[t].columns(sources[t]))
            other = "req" if sources[t] == "meas" else "meas"
            raise DataError(
                f"task {t!r} has no labels in the training rows (columns {cols} are missing or null)",
                where=str(root),
                fix=f"set train.labels.{t}: {other}, label the data, or remove {t!r} from train.tasks",
            )


def sampling_weights(index: RowIndex, tasks: Sequence[str]) -> np.ndarray:
    """Inverse class frequency per row, averaged over the balanced tasks the row is labelled for.

    Each task's weights are scaled to mean 1 over its labelled rows, so no task dominates;
    rows labelled for none of them keep weight 1.
    """
    n = len(index)
    total = np.zeros(n)
    count = np.zeros(n)
    for t in tasks:
        key = balance_key(t, index.reg, index.cls)
        has = key >= 0
        if not has.any():
            continue
        values, inverse, freq = np.unique(key[has], return_inverse=True, return_counts=True)
        w = 1.0 / freq[inverse]
        w = w / w.mean()
        total[has] += w
        count[has] += 1
    return np.where(count > 0, total / np.maximum(count, 1), 1.0)


def easy_mask(index: RowIndex, max_gaze: float, max_head: float, synthetic_only: bool) -> np.ndarray:
    """Rows for the curriculum's warm-up: near-frontal gaze and head (unknown angles count as easy)."""
    reg = np.nan_to_num(index.reg, nan=0.0)
    ok = (np.abs(reg[:, 0:2]) <= max_gaze).all(1) & (np.abs(reg[:, 2:5]) <= max_head).all(1)
    if synthetic_only:
        ok &= index.source != "real"
    return ok


@dataclass(frozen=True)
class Unit:
    """One row group's share of an epoch: which rows to emit, in which order (repeats allowed)."""

    file: int
    group: int
    pos: np.ndarray
    reg: np.ndarray
    cls: np.ndarray


def plan_epoch(
    index: RowIndex, rows: np.ndarray, rng: np.random.Generator | None
) -> list[Unit]:
    """Group the chosen rows by row group; shuffle group order and rows within a group.

    Shuffling at two levels keeps reads sequential per row group (one decompression each) while
    batches still mix identities from across the dataset, because workers interleave.
    """
    if len(rows) == 0:
        return []
    key = index.file[rows].astype(np.int64) * 1_000_003 + index.group[rows]
    order = np.argsort(key, kind="stable")
    rows, key = rows[order], key[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    ends = np.r_[starts[1:], len(rows)]
    units = []
    for s, e in zip(starts, ends, strict=True):
        r = rows[s:e]
        if rng is not None:
            r = r[rng.permutation(len(r))]
        units.append(Unit(int(index.file[r[0]]), int(index.group[r[0]]), index.pos[r], index.reg[r], index.cls[r]))
    if rng is not None:
        units = [units[i] for i in rng.permutation(len(units))]
    return units


def decode_resized(data: bytes, size: int, where: str) -> np.ndarray:
    """PNG bytes -> size x size x 3 uint8 RGB: centre square crop, then one INTER_AREA resize."""
    arr = np.frombuffer(data or b"", np.uint8)
    img = cv2.imdecode(arr, cv2.IMREAD_COLOR) if arr.size else None
    if img is None:
        raise DataError("image bytes cannot be decoded", where=where,
                        fix="re-generate or re-publish this shard")
    h, w = img.shape[:2]
    if h != w:
        s = min(h, w)
        y0, x0 = (h - s) // 2, (w - s) // 2
        img = img[y0 : y0 + s, x0 : x0 + s]
    if img.shape[0] != size:
        interp = cv2.INTER_AREA if img.shape[0] > size else cv2.INTER_LINEAR
        img = cv2.resize(img, (size, size), interpolation=interp)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


class RowGroupStream(IterableDataset):
    """Yields ``(image uint8 [3,H,W], reg [6], cls [4])`` for the units of one epoch.

    Units are dealt round-robin over every (process, worker) pair, so with several GPUs and
    several workers each row group is read exactly once per epoch.
    """

    def __init__(self, files: list[Path], units: list[Unit], image_size: int,
                 rank: int = 0, world: int = 1) -> None:
        super().__init__()
        self.files = [str(f) for f in files]
        self.units = units
        self.image_size = image_size
        self.rank, self.world = rank, world

    def __len__(self) -> int:
        return sum(len(u.pos) for u in self.units[self.rank :: self.world])

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        info = get_worker_info()
        workers, wid = (info.num_workers, info.id) if info else (1, 0)
        stride = self.world * workers
        mine = self.units[self.rank * workers + wid :: stride]
        handles: dict[int, pq.ParquetFile] = {}
        for u in mine:
            pf = handles.get(u.file)
            if pf is None:
                pf = handles[u.file] = pq.ParquetFile(self.files[u.file])
            col = pf.read_row_group(u.group, columns=["image"]).column("image").combine_chunks()
            blobs = col.field("bytes")
            for k, p in enumerate(u.pos):
                where = f"{self.files[u.file]} (row group {u.group}, row {int(p)})"
                img = decode_resized(blobs[int(p)].as_py(), self.image_size, where)
                yield (
                    torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))),
                    torch.from_numpy(u.reg[k]),
                    torch.from_numpy(u.cls[k]),
                )


def make_loader(
    stream: RowGroupStream, batch_size: int, workers: int, prefetch: int, seed: int
) -> torch.utils.data.DataLoader:
    """A DataLoader over the stream; never more workers than row groups (idle ones cost a fork)."""
    workers = min(workers, max(0, len(stream.units) // max(1, stream.world)), os.cpu_count() or 1)
    kwargs: dict[str, Any] = {}
    if workers > 0:
        # forkserver: workers fork from a clean server process (with this module preloaded), not
        # from a parent whose BLAS/onnxruntime/Prefect threads may hold locks a fork would copy.
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload([__name__])
        kwargs = {"prefetch_factor": prefetch, "multiprocessing_context": ctx}
    return torch.utils.data.DataLoader(
        stream,
        batch_size=batch_size,
        num_workers=workers,
        generator=torch.Generator().manual_seed(seed),
        **kwargs,
    )
