"""Attribute-level shift: per-attribute distributions of synthetic vs real, their divergence and a
two-sample test, all as pure functions of two 1-D arrays (None/NaN = unknown, dropped first).

Categorical attributes: Jensen-Shannon divergence of the class frequencies (base 2, in [0, 1]) and
Pearson's chi-square test of homogeneity. Continuous attributes: JS divergence of histograms on
shared bin edges, the 1-D Wasserstein distance (in the attribute's unit), and the two-sample KS test.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2_contingency, ks_2samp, wasserstein_distance

from synthgen.analyze.result import MetricValue, finite_or_none
from synthgen.vocab import CATEGORIES

# bin edges of continuous attributes: units are years and degrees
EDGES: dict[str, np.ndarray] = {
    "age": np.arange(0.0, 95.0, 5.0),
    "gaze_yaw": np.arange(-90.0, 95.0, 5.0),
    "gaze_pitch": np.arange(-60.0, 65.0, 5.0),
    "head_yaw": np.arange(-90.0, 95.0, 5.0),
    "head_pitch": np.arange(-60.0, 65.0, 5.0),
    "head_roll": np.arange(-45.0, 50.0, 5.0),
}

MEANING = {
    "jsd": "Jensen-Shannon divergence of the two histograms (bits; 0 = same distribution, 1 = disjoint)",
    "wasserstein": "earth mover's distance between the two 1-D distributions, in the attribute's unit",
    "chi2_p": "chi-square test of homogeneity p-value (small = the class frequencies differ)",
    "ks_p": "two-sample Kolmogorov-Smirnov p-value (small = the distributions differ)",
}


def is_categorical(attribute: str) -> bool:
    return attribute in CATEGORIES


def clean_values(values: Sequence[Any] | np.ndarray, categorical: bool) -> np.ndarray:
    """Drop unknowns (None, NaN, empty strings)."""
    if categorical:
        return np.array([str(v) for v in values if v is not None and v == v and str(v) != ""], dtype=object)
    arr = np.array([np.nan if v is None else v for v in values], dtype=float)
    return arr[np.isfinite(arr)]


@dataclass
class AttributeShift:
    """Distributions of one attribute on both sides, and the metrics that compare them."""

    attribute: str
    kind: str  # "categorical" | "continuous"
    bins: list[str] | list[float]
    real_counts: list[int]
    synth_counts: list[int]
    metrics: list[MetricValue] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "attribute": self.attribute,
            "kind": self.kind,
            "bins": list(self.bins),
            "real_counts": self.real_counts,
            "synth_counts": self.synth_counts,
            "metrics": [m.to_dict() for m in self.metrics],
        }


def _jsd(p: np.ndarray, q: np.ndarray) -> float:
    return float(jensenshannon(p / p.sum(), q / q.sum(), base=2) ** 2)


def categorical_shift(attribute: str, real: np.ndarray, synth: np.ndarray, classes: Sequence[str] | None = None) -> AttributeShift:
    classes = list(classes or CATEGORIES.get(attribute, ()))
    extra = sorted((set(real.tolist()) | set(synth.tolist())) - set(classes))
    classes = classes + extra
    rc = np.array([int((real == c).sum()) for c in classes])
    sc = np.array([int((synth == c).sum()) for c in classes])
    res = AttributeShift(attribute, "categorical", classes, rc.tolist(), sc.tolist())
    scope = f"attr.{attribute}"
    if rc.sum() == 0 or sc.sum() == 0:
        side = "real" if rc.sum() == 0 else "synthetic"
        reason = f"no known {attribute} values on the {side} side"
        res.metrics = [MetricValue.missing(n, reason, MEANING[n], scope) for n in ("jsd", "chi2_p")]
        return res
    res.metrics.append(MetricValue("jsd", _jsd(rc.astype(float), sc.astype(float)), MEANING["jsd"], scope=scope))
    keep = (rc + sc) > 0
    if keep.sum() < 2:
        res.metrics.append(MetricValue.missing("chi2_p", "both sides hold a single class", MEANING["chi2_p"], scope))
    else:
        chi = chi2_contingency(np.vstack([rc[keep], sc[keep]]))
        res.metrics.append(
            MetricValue("chi2_p", finite_or_none(chi.pvalue), MEANING["chi2_p"], scope=scope,
                        extra={"chi2": float(chi.statistic), "dof": int(chi.dof)})
        )
    return res


def continuous_shift(attribute: str, real: np.ndarray, synth: np.ndarray, edges: np.ndarray | None = None) -> AttributeShift:
    if edges is None:
        edges = EDGES.get(attribute)
    if edges is None:
        both = np.concatenate([real, synth])
        edges = np.histogram_bin_edges(both if both.size else np.zeros(1), bins=20)
    lo, hi = edges[0], edges[-1]
    rc = np.histogram(np.clip(real, lo, hi), edges)[0]
    sc = np.histogram(np.clip(synth, lo, hi), edges)[0]
    res = AttributeShift(attribute, "continuous", [float(e) for e in edges], rc.tolist(), sc.tolist())
    scope = f"attr.{attribute}"
    names = ("jsd", "wasserstein", "ks_p")
    if real.size == 0 or synth.size == 0:
        side = "real" if real.size == 0 else "synthetic"
        res.metrics = [MetricValue.missing(n, f"no known {attribute} values on the {side} side", MEANING[n], scope) for n in names]
        return res
    ks = ks_2samp(real, synth)
    res.metrics = [
        MetricValue("jsd", _jsd(rc.astype(float), sc.astype(float)), MEANING["jsd"], scope=scope),
        MetricValue("wasserstein", float(wasserstein_distance(real, synth)), MEANING["wasserstein"], scope=scope),
        MetricValue("ks_p", finite_or_none(ks.pvalue), MEANING["ks_p"], scope=scope, extra={"ks": float(ks.statistic)}),
    ]
    return res


def attribute_shift(attribute: str, real: Sequence[Any] | None, synth: Sequence[Any] | None) -> AttributeShift:
    """Compare one attribute; a side given as None (column absent) makes the metrics not computable."""
    cat = is_categorical(attribute)
    if real is None or synth is None:
        side = "real" if real is None else "synthetic"
        names = ("jsd", "chi2_p") if cat else ("jsd", "wasserstein", "ks_p")
        reason = f"attribute {attribute!r} is absent from the {side} data"
        return AttributeShift(
            attribute, "categorical" if cat else "continuous", [], [], [],
            [MetricValue.missing(n, reason, MEANING[n], f"attr.{attribute}") for n in names],
        )
    r, s = clean_values(real, cat), clean_values(synth, cat)
    return categorical_shift(attribute, r, s) if cat else continuous_shift(attribute, r, s)
