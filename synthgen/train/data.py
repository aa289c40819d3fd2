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
from synthgen.train.tasks import TASK_SPECS, balance_key, extract_targets, task_has_labels

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


def build_index(
    root: Path,
    sources: dict[str, str],
    tasks: list[str],
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
    wanted = ["split", "accepted", "source", "reject_reasons"] + [
        c for t in tasks for c in TASK_SPECS[t].columns(sources[t])
    ] + [f"{sources['age']}_age"] * ("age" in tasks)
    cols: dict[str, list[np.ndarray]] = {k: [] for k in ("file", "group", "pos", "split", "source", "reg", "cls")}
    rejected: Counter = Counter()
    total = 0
    for fi, path in enumerate(files):
        try:
            pf = pq.ParquetFile(path)
        except (pa.ArrowInvalid, OSError) as err:
            raise DataError(f"not a readable Parquet file ({err})", where=str(path),
                            fix="re-publish the dataset version") from None
        present = [c for c in dict.fromkeys(wanted) if c in pf.schema_arrow.names]
        hive_split = _hive_value(path, "split")
        for g in range(pf.num_row_groups):
            tab = pf.read_row_group(g, columns=present)
            n = tab.num_rows
            total += n
            if "accepted" in tab.column_names:
                acc = np.asarray(tab.column("accepted").fill_null(False).to_numpy(zero_copy_only=False), bool)
            elif require_accepted:
                raise DataError(
                    "shard has no 'accepted' column (not curated)",
                    where=str(path),
                    fix="train on a published dataset version (curate runs before publish)",
                )
            else:
                acc = np.ones(n, bool)
            if "reject_reasons" in tab.column_names and not acc.all():
                for reasons in tab.column("reject_reasons").filter(pa.array(~acc)).to_pylist():
                    rejected.update(reasons or ["(no reason)"])
            keep = np.flatnonzero(acc)
            if keep.size == 0:
                continue
            tab = tab.take(pa.array(keep))
            reg, cls = extract_targets(tab, sources, tasks, where=f"{path} (row group {g})")
            if "split" in tab.column_names:
                split = np.asarray(tab.column("split").fill_null(hive_split or "").to_pylist(), object)
            else:
                split = np.full(len(keep), hive_split or "", object)
            if "source" in tab.column_names:
                source = np.asarray(tab.column("source").fill_null("synthetic").to_pylist(), object)
            else:
                source = np.full(len(keep), "synthetic", object)
            cols["file"].append(np.full(len(keep), fi, np.int32))
            cols["group"].append(np.full(len(keep), g, np.int32))
            cols["pos"].append(keep.astype(np.int32))
            cols["split"].append(split)
            cols["source"].append(source)
            cols["reg"].append(reg)
            cols["cls"].append(cls)
    if not cols["file"]:
        return RowIndex(files, *(np.zeros(0, np.int32) for _ in range(3)), np.zeros(0, object),
                        np.zeros(0, object), np.zeros((0, 6), np.float32), np.zeros((0, 3), np.int64),
                        rejected, total)
    return RowIndex(
        files,
        np.concatenate(cols["file"]),
        np.concatenate(cols["group"]),
        np.concatenate(cols["pos"]),
        np.concatenate(cols["split"]),
        np.concatenate(cols["source"]),
        np.concatenate(cols["reg"]),
        np.concatenate(cols["cls"]),
        rejected,
        total,
    )


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


def require_labels(index: RowIndex, tasks: list[str], sources: dict[str, str], root: Path) -> None:
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
    for s, e in zip(starts, ends):
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
    """Yields ``(image uint8 [3,H,W], reg [6], cls [3])`` for the units of one epoch.

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
