"""Domain-classifier two-sample test: can a linear model tell real from synthetic features?

Cross-validated ROC-AUC of a logistic regression (0.5 = indistinguishable, 1.0 = fully separable)
with a bootstrap confidence interval over the out-of-fold scores. The out-of-fold probability of
"synthetic" also ranks the most synthetic-looking samples, and the AUC restricted to one attribute
bin says where the two sets differ most.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from synthgen.analyze.validate import NotComputable


@dataclass(frozen=True)
class DomainAUC:
    auc: float
    ci_low: float
    ci_high: float
    folds: int
    n_real: int
    n_synth: int
    # out-of-fold P(synthetic) for every input row: real rows first, then synthetic rows
    scores: np.ndarray
    real_index: np.ndarray
    synth_index: np.ndarray


def bootstrap_auc_ci(y: np.ndarray, s: np.ndarray, n_boot: int, seed: int, level: float = 0.95) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    n = y.shape[0]
    aucs = []
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        yb = y[idx]
        if yb.min() == yb.max():
            continue
        aucs.append(roc_auc_score(yb, s[idx]))
    if not aucs:
        return float("nan"), float("nan")
    a = (1.0 - level) / 2.0
    lo, hi = np.quantile(aucs, [a, 1.0 - a])
    return float(lo), float(hi)


def domain_auc(
    real: np.ndarray,
    synth: np.ndarray,
    folds: int = 5,
    max_samples: int = 5000,
    n_boot: int = 200,
    seed: int = 0,
) -> DomainAUC:
    """Fit on balanced-ish subsamples (at most ``max_samples`` per side) with stratified folds."""
    rng = np.random.default_rng(seed)
    ri = np.arange(real.shape[0])
    si = np.arange(synth.shape[0])
    if ri.size > max_samples:
        ri = np.sort(rng.choice(ri, max_samples, replace=False))
    if si.size > max_samples:
        si = np.sort(rng.choice(si, max_samples, replace=False))
    k = min(folds, ri.size, si.size)
    if k < 2:
        raise NotComputable(
            f"the domain classifier needs at least 2 samples per side for 2-fold CV, got {ri.size} real and {si.size} synthetic"
        )
    x = np.vstack([real[ri], synth[si]])
    y = np.r_[np.zeros(ri.size, int), np.ones(si.size, int)]
    model = make_pipeline(
        StandardScaler(), LogisticRegression(C=1.0, max_iter=2000, class_weight="balanced")
    )
    cv = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    scores = cross_val_predict(model, x, y, cv=cv, method="predict_proba")[:, 1]
    auc = float(roc_auc_score(y, scores))
    lo, hi = bootstrap_auc_ci(y, scores, n_boot, seed)
    return DomainAUC(auc, lo, hi, k, ri.size, si.size, scores, ri, si)


def auc_in_subset(y: np.ndarray, scores: np.ndarray, mask: np.ndarray) -> float:
    """AUC over the rows in ``mask`` only; raises NotComputable when one class is absent there."""
    yy = y[mask]
    if yy.size == 0 or yy.min() == yy.max():
        raise NotComputable("the bin holds samples from one side only")
    return float(roc_auc_score(yy, scores[mask]))
