"""The five tasks, their label columns and how targets are packed.

Every row's targets live in two small arrays so that the data index stays compact for millions
of rows: ``reg`` (float32, NaN = missing) and ``cls`` (int64, -1 = missing). A task owns some of
their columns; a missing value simply drops out of the loss and the metrics (masked), because
real data often carries only some attributes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from synthgen.errors import DataError
from synthgen.vocab import AGE_GROUPS, EXPRESSIONS, GAZE_ZONES, GENDERS, age_group

# Regression targets (degrees, years) and their columns in ``reg``.
REG_NAMES: tuple[str, ...] = ("gaze_yaw", "gaze_pitch", "head_yaw", "head_pitch", "head_roll", "age")
# Regression targets are learnt as (value - shift) / scale so that all heads see numbers near 1.
REG_SHIFT = np.array([0, 0, 0, 0, 0, 35.0], np.float32)
REG_SCALE = np.array([30, 30, 30, 30, 30, 25.0], np.float32)
# Classification targets and their vocabularies, columns of ``cls``.
CLS_NAMES: tuple[str, ...] = ("gaze_zone", "age_group", "expression", "gender")
CLS_VOCAB: dict[str, tuple[str, ...]] = {
    "gaze_zone": GAZE_ZONES,
    "age_group": AGE_GROUPS,
    "expression": EXPRESSIONS,
    "gender": GENDERS,
}
N_REG, N_CLS = len(REG_NAMES), len(CLS_NAMES)


@dataclass(frozen=True)
class TaskSpec:
    name: str
    reg: tuple[int, ...]  # columns of ``reg``
    cls: tuple[int, ...]  # columns of ``cls``

    @property
    def out_dim(self) -> int:
        return len(self.reg) + sum(len(CLS_VOCAB[CLS_NAMES[c]]) for c in self.cls)

    def columns(self, source: str) -> list[str]:
        return [f"{source}_{REG_NAMES[i]}" for i in self.reg] + [f"{source}_{CLS_NAMES[i]}" for i in self.cls]


TASK_SPECS: dict[str, TaskSpec] = {
    "gaze": TaskSpec("gaze", reg=(0, 1), cls=(0,)),
    "head_pose": TaskSpec("head_pose", reg=(2, 3, 4), cls=()),
    "age": TaskSpec("age", reg=(5,), cls=(1,)),
    "expression": TaskSpec("expression", reg=(), cls=(2,)),
    "gender": TaskSpec("gender", reg=(), cls=(3,)),
}


def label_columns(sources: dict[str, str], tasks: Sequence[str]) -> list[str]:
    """Columns to read for these tasks, given each task's label source (req/meas)."""
    cols: list[str] = []
    for t in tasks:
        cols += TASK_SPECS[t].columns(sources[t])
    return cols


def _encode(values: list[object], vocab: tuple[str, ...], column: str, where: str) -> np.ndarray:
    lookup = {v: i for i, v in enumerate(vocab)}
    out = np.full(len(values), -1, np.int64)
    for i, v in enumerate(values):
        if v is None:
            continue
        code = lookup.get(str(v))
        if code is None:
            raise DataError(
                f"column {column} holds {v!r}, which is not one of {', '.join(vocab)}",
                where=where,
                fix="write labels in the shared vocabulary (synthgen/vocab.py)",
            )
        out[i] = code
    return out


def extract_targets(
    table: pa.Table, sources: dict[str, str], tasks: Sequence[str], where: str
) -> tuple[np.ndarray, np.ndarray]:
    """Arrow label columns -> (reg [n, 6] float32 with NaN, cls [n, 4] int64 with -1).

    Absent columns count as all-missing (a real set may label only age and expression). An absent
    age group is derived from the age in years, so both age targets exist wherever the age does.
    """
    n = table.num_rows
    reg = np.full((n, len(REG_NAMES)), np.nan, np.float32)
    cls = np.full((n, len(CLS_NAMES)), -1, np.int64)
    names = set(table.column_names)
    for t in tasks:
        spec, src = TASK_SPECS[t], sources[t]
        for i in spec.reg:
            col = f"{src}_{REG_NAMES[i]}"
            if col in names:
                arr = table.column(col).cast(pa.float32()).to_numpy(zero_copy_only=False)
                reg[:, i] = np.where(np.isfinite(arr), arr, np.nan)
        for i in spec.cls:
            col = f"{src}_{CLS_NAMES[i]}"
            if col in names:
                cls[:, i] = _encode(table.column(col).to_pylist(), CLS_VOCAB[CLS_NAMES[i]], col, where)
        if t == "age":
            missing = (cls[:, 1] < 0) & np.isfinite(reg[:, 5])
            for r in np.flatnonzero(missing):
                cls[r, 1] = AGE_GROUPS.index(age_group(float(reg[r, 5])))
    return reg, cls


def task_has_labels(task: str, reg: np.ndarray, cls: np.ndarray) -> np.ndarray:
    """Per row: does it carry any target of this task?"""
    spec = TASK_SPECS[task]
    has = np.zeros(len(reg), bool)
    for i in spec.reg:
        has |= np.isfinite(reg[:, i])
    for i in spec.cls:
        has |= cls[:, i] >= 0
    return has


def balance_key(task: str, reg: np.ndarray, cls: np.ndarray) -> np.ndarray:
    """A class per row for inverse-frequency sampling (-1 = unlabelled for this task).

    Classification tasks use their class; gaze uses its zone, else 15-degree yaw/pitch bins;
    head pose uses 15-degree yaw bins.
    """
    if task == "expression":
        return cls[:, 2].copy()
    if task == "age":
        return cls[:, 1].copy()
    if task == "gender":
        return cls[:, 3].copy()
    if task == "gaze":
        key = cls[:, 0].copy()
        yaw, pitch = reg[:, 0], reg[:, 1]
        ok = (key < 0) & np.isfinite(yaw) & np.isfinite(pitch)
        key[ok] = 100 + (np.floor(yaw[ok] / 15) + 10) * 20 + (np.floor(pitch[ok] / 15) + 10)
        return key
    yaw = reg[:, 2]
    key = np.full(len(reg), -1, np.int64)
    ok = np.isfinite(yaw)
    key[ok] = (np.floor(yaw[ok] / 15) + 10).astype(np.int64)
    return key
