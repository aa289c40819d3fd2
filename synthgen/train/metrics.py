"""Per-task evaluation metrics, computed only on rows that carry that target.

Numbers are flat (``<set>.<task>.<metric>``) so DVC's ``metrics diff`` can compare versions.
A task without any label in a set reports only ``<set>.<task>.n = 0``: an empty mean is not a zero.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.metrics import balanced_accuracy_score

from synthgen.geometry import angular_error


def _acc(pred: np.ndarray, true: np.ndarray) -> float:
    return float((pred == true).mean())


def task_metrics(prefix: str, tasks: list[str], pred_reg: np.ndarray, pred_cls: np.ndarray,
                 reg: np.ndarray, cls: np.ndarray) -> dict[str, float]:
    """``pred_reg``/``reg``: [n, 6] degrees/years (NaN = no label); ``pred_cls``/``cls``: [n, 3] (-1)."""
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
        e = cls[:, 2] >= 0
        m[f"{prefix}.expression.n"] = int(e.sum())
        if e.any():
            m[f"{prefix}.expression.accuracy"] = _acc(pred_cls[e, 2], cls[e, 2])
            with warnings.catch_warnings():  # predicted classes absent from a small set are expected
                warnings.simplefilter("ignore", UserWarning)
                m[f"{prefix}.expression.balanced_accuracy"] = float(
                    balanced_accuracy_score(cls[e, 2], pred_cls[e, 2])
                )
    return m
