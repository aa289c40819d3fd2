"""Precision, recall, density and coverage (Naeem et al. 2020) without an n x n distance matrix.

The reference implementation (the ``prdc`` package) materialises three full distance matrices, so
50k samples need tens of GiB. Here distances are computed in row blocks sized by ``memory_mb``, in
squared form (the comparisons ``d < r`` and ``d^2 < r^2`` agree, and no square root is needed), and
every statistic is accumulated per block: memory is O(block x n) whatever n is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synthgen.analyze.validate import NotComputable

DEFAULT_MEMORY_MB = 512


@dataclass(frozen=True)
class PRDCResult:
    precision: float
    recall: float
    density: float
    coverage: float
    nearest_k: int


def _sq_norms(x: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", x, x)


def _block_rows(n_cols: int, memory_mb: float) -> int:
    # a block holds a float64 distance matrix plus a boolean mask of the same shape
    return max(1, int(memory_mb * 2**20 / (9 * max(n_cols, 1))))


def _sq_block(xb: np.ndarray, nb: np.ndarray, y: np.ndarray, ny: np.ndarray) -> np.ndarray:
    d = xb @ y.T
    d *= -2.0
    d += nb[:, None]
    d += ny[None, :]
    np.maximum(d, 0.0, out=d)
    return d


def knn_sq_radii(x: np.ndarray, k: int, memory_mb: float = DEFAULT_MEMORY_MB) -> np.ndarray:
    """Squared distance from each point to its k-th nearest other point (the point itself counts as
    the 0-th, as in the reference)."""
    n = x.shape[0]
    if n <= k:
        raise NotComputable(f"nearest_k={k} needs more than {k} samples per side, got {n}")
    nx = _sq_norms(x)
    out = np.empty(n)
    step = _block_rows(n, memory_mb)
    for i in range(0, n, step):
        d = _sq_block(x[i : i + step], nx[i : i + step], x, nx)
        rows = np.arange(d.shape[0])
        d[rows, rows + i] = 0.0  # exact zero self-distance, as sklearn sets it
        out[i : i + step] = np.partition(d, k, axis=1)[:, k]
    return out


def prdc(
    real: np.ndarray,
    synth: np.ndarray,
    nearest_k: int = 5,
    memory_mb: float = DEFAULT_MEMORY_MB,
) -> PRDCResult:
    """Same definitions as ``prdc.compute_prdc(real, fake, nearest_k)``, block by block."""
    real = np.ascontiguousarray(real, np.float64)
    synth = np.ascontiguousarray(synth, np.float64)
    r_real = knn_sq_radii(real, nearest_k, memory_mb)
    r_synth = knn_sq_radii(synth, nearest_k, memory_mb)
    n_real, n_synth = real.shape[0], synth.shape[0]
    nr, ns = _sq_norms(real), _sq_norms(synth)
    synth_in_real_ball = np.zeros(n_synth, bool)  # precision
    balls_per_synth = np.zeros(n_synth, np.int64)  # density
    real_in_synth_ball = np.empty(n_real, bool)  # recall
    real_covered = np.empty(n_real, bool)  # coverage
    step = _block_rows(n_synth, memory_mb)
    for i in range(0, n_real, step):
        d = _sq_block(real[i : i + step], nr[i : i + step], synth, ns)
        inside = d < r_real[i : i + step, None]
        synth_in_real_ball |= inside.any(axis=0)
        balls_per_synth += inside.sum(axis=0)
        real_covered[i : i + step] = inside.any(axis=1)  # min_j d < r_i  <=>  any_j d < r_i
        np.less(d, r_synth[None, :], out=inside)
        real_in_synth_ball[i : i + step] = inside.any(axis=1)
    return PRDCResult(
        precision=float(synth_in_real_ball.mean()),
        recall=float(real_in_synth_ball.mean()),
        density=float(balls_per_synth.mean() / nearest_k),
        coverage=float(real_covered.mean()),
        nearest_k=nearest_k,
    )
