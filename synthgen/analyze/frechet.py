"""Fréchet distance between Gaussians fitted to two feature sets (the FID formula on any features).

Faster than the usual ``scipy.linalg.sqrtm(s1 @ s2)``: the trace of that square root equals the sum
of square roots of the eigenvalues of ``s1 @ s2``, which are those of the symmetric PSD matrix
``L.T @ s2 @ L`` with ``s1 = L L^T`` (Cholesky), so a Cholesky factorisation plus one symmetric
eigenvalue solve (divide and conquer) replace a Schur-based matrix square root. When ``s1`` is
singular (fewer samples than dimensions) the Cholesky factor does not exist and ``sqrt(s1)`` from
an eigendecomposition takes its place. Covariances accumulate in row chunks, so memory stays at
O(chunk x d + d^2) whatever the number of samples.

At 50k x 512 the covariances are most of the work. ``gaussian_stats`` keeps the float64 product (it
promises ``np.cov``'s numbers); ``frechet_distance_features`` only needs the distance, and there the
per-chunk product runs in float32 (about twice the BLAS throughput) on rows already centred in
float64, summed into a float64 accumulator. Only the rounding of centred values to float32 and
sums over one chunk remain: on 10k x 512 ReLU-like features the distance moved by 2e-7 relative
for a shifted pair and 7e-9 for two samples of one distribution, fifty times or more below the
1e-5 agreement the tests demand against clean-fid and torchmetrics.

The factorisations use numpy.linalg, not scipy.linalg: numpy and scipy each bundle their own
OpenBLAS with its own thread pool, whose idle threads spin for a while after a call. Running
scipy's LAPACK right after numpy's products had the two pools fight for the cores: at 50k x 512 the
whole distance took 280-500 ms instead of a steady 255 ms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synthgen.analyze.validate import NotComputable

DEFAULT_CHUNK = 8192


@dataclass(frozen=True)
class GaussianStats:
    mu: np.ndarray
    sigma: np.ndarray
    n: int


def _chunked_mean(x: np.ndarray, chunk: int) -> np.ndarray:
    """Float64 column means, a chunk at a time (x may be float32 or memory-mapped)."""
    n = x.shape[0]
    if n < 2:
        raise NotComputable(f"covariance needs at least 2 samples, got {n}")
    mu = np.zeros(x.shape[1])
    for i in range(0, n, chunk):
        mu += np.asarray(x[i : i + chunk], np.float64).sum(axis=0)
    return mu / n


def gaussian_stats(x: np.ndarray, chunk: int = DEFAULT_CHUNK) -> GaussianStats:
    """Mean and unbiased covariance (as ``np.cov(x, rowvar=False)``), in two chunked passes."""
    n, d = x.shape
    mu = _chunked_mean(x, chunk)
    acc = np.zeros((d, d))
    for i in range(0, n, chunk):
        xc = np.asarray(x[i : i + chunk], np.float64) - mu
        acc += xc.T @ xc  # numpy runs ``a.T @ a`` as a symmetric rank-k update and mirrors it
    return GaussianStats(mu, acc / (n - 1), n)


def _gaussian_stats_f32(x: np.ndarray, chunk: int = DEFAULT_CHUNK) -> GaussianStats:
    """Mean in float64; covariance from float32 products of float64-centred chunks, accumulated in
    float64. Agrees with ``gaussian_stats`` to ~1e-7 relative at twice the speed (see module doc)."""
    n, d = x.shape
    mu = _chunked_mean(x, chunk)
    acc = np.zeros((d, d))
    xc = np.empty((min(chunk, n), d), np.float32)
    for i in range(0, n, chunk):
        rows = np.asarray(x[i : i + chunk], np.float64)
        buf = xc[: rows.shape[0]]
        np.subtract(rows, mu, out=buf, casting="same_kind")  # centred in float64, rounded once
        acc += buf.T @ buf  # numpy hands ``a.T @ a`` to a float32 symmetric rank-k update
    return GaussianStats(mu, acc / (n - 1), n)


def sqrtm_psd(s: np.ndarray) -> np.ndarray:
    w, u = np.linalg.eigh(s)
    return (u * np.sqrt(np.clip(w, 0.0, None))) @ u.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + tr(s1) + tr(s2) - 2 tr(sqrt(s1 s2))."""
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise NotComputable(f"dimensions differ: {mu1.shape} vs {mu2.shape}")
    if not (np.isfinite(sigma1).all() and np.isfinite(sigma2).all()):
        raise NotComputable("covariance holds NaN/inf")
    try:
        low = np.linalg.cholesky(sigma1)
        m = low.T @ sigma2 @ low
    except np.linalg.LinAlgError:  # singular s1: no Cholesky factor, use the PSD square root instead
        r1 = sqrtm_psd(sigma1)
        m = r1 @ sigma2 @ r1
    m = (m + m.T) * 0.5  # exactly symmetric before the symmetric solver reads one triangle
    ev = np.linalg.eigvalsh(m)  # LAPACK syevd: divide and conquer
    tr_covmean = float(np.sqrt(np.clip(ev, 0.0, None)).sum())
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr_covmean)


def frechet_distance_features(real: np.ndarray, synth: np.ndarray, chunk: int = DEFAULT_CHUNK) -> float:
    """FD of two raw feature sets; ``chunk`` bounds the rows held per product. Long chunks keep
    BLAS efficient; the float32 sums they imply were measured to move FD no more than 2048-row ones
    (1.9e-7 vs 1.8e-7 relative on 10k x 512 features)."""
    a, b = _gaussian_stats_f32(real, chunk), _gaussian_stats_f32(synth, chunk)
    return frechet_distance(a.mu, a.sigma, b.mu, b.sigma)
