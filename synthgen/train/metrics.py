"""Per-task evaluation metrics, computed only on rows that carry that target.

Numbers are flat (``<set>.<task>.<metric>``) so DVC's ``metrics diff`` can compare versions.
A task without any label in a set reports only ``<set>.<task>.n = 0``: an empty mean is not a zero.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from sklearn.metrics import balanced_accuracy_score

from synthgen.geometry import angular_error


def _acc(pred: np.ndarray, true: np.ndarray) -> float:
    return float((pred == true).mean())


def _class_metrics(key: str, pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
    """Accuracy and balanced accuracy (mean per-class recall) over the rows with a label (>= 0)."""
    has = true >= 0
    m: dict[str, float] = {f"{key}.n": int(has.sum())}
    if has.any():
        m[f"{key}.accuracy"] = _acc(pred[has], true[has])
        with warnings.catch_warnings():  # predicted classes absent from a small set are expected
            warnings.simplefilter("ignore", UserWarning)
            m[f"{key}.balanced_accuracy"] = float(balanced_accuracy_score(true[has], pred[has]))
    return m


def task_metrics(prefix: str, tasks: Sequence[str], pred_reg: np.ndarray, pred_cls: np.ndarray,
                 reg: np.ndarray, cls: np.ndarray) -> dict[str, float]:
    """``pred_reg``/``reg``: [n, 6] degrees/years (NaN = no label); ``pred_cls``/``cls``: [n, 4] (-1)."""
    m: dict[str, float] = {}
    if "gaze" in tasks:
        ok = np.isfinite(reg[:, 0]) & np.isfinite(reg[:, 1])
        m[f"{prefix}.gaze.n"] = int(ok.sum())
        if ok.any():
            err = angular_error(pred_reg[ok, 0], pred_reg[ok, 1], reg[ok, 0], reg[ok, 1])
            m[f"{prefix}.gaze.angular_error_deg"] = float(err.mean())
            m[f"{prefix}.gaze.angular_error_median_deg"] = float(np.median(err))
        z = cls[:, 0] >= 0
        if z.any():
            m[f"{prefix}.gaze.zone_accuracy"] = _acc(pred_cls[z, 0], cls[z, 0])
    if "head_pose" in tasks:
        ok = np.isfinite(reg[:, 2:5])
        m[f"{prefix}.head_pose.n"] = int(ok.any(1).sum())
        if ok.any():
            errs = np.abs(pred_reg[:, 2:5] - reg[:, 2:5])
            for j, name in enumerate(("yaw", "pitch", "roll")):
                if ok[:, j].any():
                    m[f"{prefix}.head_pose.{name}_mae_deg"] = float(errs[ok[:, j], j].mean())
            m[f"{prefix}.head_pose.mae_deg"] = float(errs[ok].mean())
    if "age" in tasks:
        ok = np.isfinite(reg[:, 5])
        m[f"{prefix}.age.n"] = int(ok.sum())
        if ok.any():
            m[f"{prefix}.age.mae_years"] = float(np.abs(pred_reg[ok, 5] - reg[ok, 5]).mean())
        g = cls[:, 1] >= 0
        if g.any():
            m[f"{prefix}.age.group_accuracy"] = _acc(pred_cls[g, 1], cls[g, 1])
    if "expression" in tasks:
        m.update(_class_metrics(f"{prefix}.expression", pred_cls[:, 2], cls[:, 2]))
    if "gender" in tasks:
        m.update(_class_metrics(f"{prefix}.gender", pred_cls[:, 3], cls[:, 3]))
    return m
