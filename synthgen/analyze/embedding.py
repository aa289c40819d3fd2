"""Embedding-level shift metrics behind one small protocol, chosen by name.

Each metric is a function ``(real, synth, params, seed) -> list[MetricValue]``; the runner checks
the features once (NaN, empty, dimension mismatch) and turns every NotComputable into a metric
marked not computable with its reason.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from synthgen.analyze.classifier import domain_auc
from synthgen.analyze.config import AnalyzeParams
from synthgen.analyze.frechet import frechet_distance_features
from synthgen.analyze.kernel import kid, mmd_rbf
from synthgen.analyze.prdc import prdc
from synthgen.analyze.registries import METRIC_VALUES, METRICS, metric_values
from synthgen.analyze.result import MetricValue, finite_or_none
from synthgen.analyze.validate import NotComputable, check_features

MEANING = {
    "fd": "Fréchet distance between Gaussians fitted to the two feature sets (0 = same mean and covariance)",
    "kid": "kernel distance (unbiased MMD^2, cubic polynomial kernel) averaged over subsets; ~0 = same distribution",
    "precision": "share of synthetic samples inside the real manifold (realism)",
    "recall": "share of real samples inside the synthetic manifold (diversity)",
    "density": "how many real-neighbourhood balls contain each synthetic sample, / k (1 ~ same density)",
    "coverage": "share of real samples with a synthetic sample within their k-NN radius",
    "mmd": "MMD^2 with an RBF kernel, median-distance bandwidth (0 = same distribution)",
    "domain_auc": "ROC-AUC of a classifier telling real from synthetic (0.5 = indistinguishable, 1 = separable)",
}

MetricFn = Callable[[np.ndarray, np.ndarray, AnalyzeParams, int], list[MetricValue]]


@METRICS.register("fd")
def _fd(real: np.ndarray, synth: np.ndarray, p: AnalyzeParams, seed: int) -> list[MetricValue]:
    v = finite_or_none(frechet_distance_features(real, synth))
    extra = {"n_real": real.shape[0], "n_synth": synth.shape[0]}
    if min(real.shape[0], synth.shape[0]) <= real.shape[1]:
        extra["note"] = "fewer samples than dimensions: singular covariances, the value is biased upwards"
    return [MetricValue("fd", v, MEANING["fd"], None if v is not None else "non-finite result", extra)]


@METRICS.register("kid")
def _kid(real: np.ndarray, synth: np.ndarray, p: AnalyzeParams, seed: int) -> list[MetricValue]:
    r = kid(real, synth, p.kid_subsets, p.kid_subset_size, seed)
    return [MetricValue("kid", r.mean, MEANING["kid"], extra={"std": r.std, "subsets": p.kid_subsets})]


@METRICS.register("prdc")
def _prdc(real: np.ndarray, synth: np.ndarray, p: AnalyzeParams, seed: int) -> list[MetricValue]:
    r = prdc(real, synth, p.nearest_k, p.memory_mb)
    return [MetricValue(n, getattr(r, n), MEANING[n], extra={"k": p.nearest_k}) for n in METRIC_VALUES["prdc"]]


@METRICS.register("mmd")
def _mmd(real: np.ndarray, synth: np.ndarray, p: AnalyzeParams, seed: int) -> list[MetricValue]:
    r = mmd_rbf(real, synth, p.mmd_max_samples, seed, block=2048)
    return [MetricValue("mmd", r.mmd2, MEANING["mmd"], extra={"bandwidth": r.bandwidth})]


@METRICS.register("domain_auc")
def _auc(real: np.ndarray, synth: np.ndarray, p: AnalyzeParams, seed: int) -> list[MetricValue]:
    r = domain_auc(real, synth, p.classifier_folds, p.classifier_max_samples, p.bootstrap, seed)
    return [MetricValue("domain_auc", r.auc, MEANING["domain_auc"], extra={"ci_low": r.ci_low, "ci_high": r.ci_high})]




def embedding_metrics(
    real: np.ndarray,
    synth: np.ndarray,
    params: AnalyzeParams,
    seed: int = 0,
    scope: str = "overall",
    metrics: Sequence[str] = ("fd", "kid", "prdc", "mmd", "domain_auc"),
    min_samples: int = 2,
) -> list[MetricValue]:
    """All requested metrics; never raises for bad features, returns them marked not computable."""
    out: list[MetricValue] = []
    try:
        real, synth = check_features(real, synth, min_samples)
    except NotComputable as err:
        return [MetricValue.missing(n, str(err), MEANING[n], scope) for n in metric_values(tuple(metrics))]
    for m in metrics:
        try:
            vals: list[MetricValue] = METRICS.get(m)(real, synth, params, seed)
            out += [MetricValue(v.name, v.value, v.meaning, v.reason, v.extra, scope) for v in vals]
        except NotComputable as err:
            out += [MetricValue.missing(n, str(err), MEANING[n], scope) for n in METRIC_VALUES[m]]
    return out
