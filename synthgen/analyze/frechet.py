"""Fréchet distance between Gaussians fitted to two feature sets (the FID formula on any features).

Faster than the usual ``scipy.linalg.sqrtm(s1 @ s2)``: the trace of that square root equals the sum
of square roots of the eigenvalues of ``sqrt(s1) @ s2 @ sqrt(s1)``, a symmetric PSD matrix, so two
symmetric eigendecompositions replace a Schur-based matrix square root (and stay real and stable
when the covariances are singular). Covariances accumulate in row chunks with a symmetric rank-k
update, so memory stays at O(chunk x d + d^2) whatever the number of samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import blas, eigh, eigvalsh

from synthgen.analyze.validate import NotComputable

DEFAULT_CHUNK = 8192


@dataclass(frozen=True)
class GaussianStats:
    mu: np.ndarray
    sigma: np.ndarray
    n: int


def gaussian_stats(x: np.ndarray, chunk: int = DEFAULT_CHUNK) -> GaussianStats:
    """Mean and unbiased covariance (as ``np.cov(x, rowvar=False)``), in two chunked passes."""
    n, d = x.shape
    if n < 2:
        raise NotComputable(f"covariance needs at least 2 samples, got {n}")
    mu = np.zeros(d)
    for i in range(0, n, chunk):
        mu += np.asarray(x[i : i + chunk], np.float64).sum(axis=0)
    mu /= n
    acc = np.zeros((d, d), order="F")
    for i in range(0, n, chunk):
        xc = np.asarray(x[i : i + chunk], np.float64) - mu
        # upper triangle of xc.T @ xc, accumulated in place
        acc = blas.dsyrk(1.0, xc.T, beta=1.0, c=acc, trans=0, overwrite_c=1)
    upper = np.triu(acc)
    sigma = (upper + np.triu(upper, 1).T) / (n - 1)
    return GaussianStats(mu, sigma, n)


def sqrtm_psd(s: np.ndarray) -> np.ndarray:
    w, u = eigh(s)
    return (u * np.sqrt(np.clip(w, 0.0, None))) @ u.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + tr(s1) + tr(s2) - 2 tr(sqrt(s1 s2))."""
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise NotComputable(f"dimensions differ: {mu1.shape} vs {mu2.shape}")
    if not (np.isfinite(sigma1).all() and np.isfinite(sigma2).all()):
        raise NotComputable("covariance holds NaN/inf")
    r1 = sqrtm_psd(sigma1)
    ev = eigvalsh(r1 @ sigma2 @ r1)
    tr_covmean = float(np.sqrt(np.clip(ev, 0.0, None)).sum())
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr_covmean)


def frechet_distance_features(real: np.ndarray, synth: np.ndarray, chunk: int = DEFAULT_CHUNK) -> float:
    a, b = gaussian_stats(real, chunk), gaussian_stats(synth, chunk)
    return frechet_distance(a.mu, a.sigma, b.mu, b.sigma)
