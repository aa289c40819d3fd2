"""Precision, recall, density and coverage (Naeem et al. 2020) without an n x n distance matrix.

The reference implementation (the ``prdc`` package) materialises three full distance matrices, so
50k samples need tens of GiB. Here distances are computed in row blocks sized by ``memory_mb``, in
squared form (the comparisons ``d < r`` and ``d^2 < r^2`` agree, and no square root is needed), and
every statistic is accumulated per block: memory is O(block x n) whatever n is.

The distance products, nearly all of the work, run in float32 (about twice the BLAS throughput of
float64), yet every decision is the one float64 distances give. A float32 dot product of K terms
is within ``(K + 2) u ||a|| ||b||`` of the float64 one (u = 2^-24, the textbook bound for any
summation order, input rounding included), so each float32 squared distance carries a known error
bound. A comparison ``d < r`` whose float32 distance is farther than that bound from ``r`` cannot
flip; the few entries inside the band are recomputed in float64 and decided on those values.
Likewise the k-th neighbour radius: every point whose float64 distance could be among the k+1
nearest has a float32 distance within twice the band of the float32 k-th value, so the radius is
the k-th smallest float64 distance among those candidates. On realistic features the band holds
about one entry per row or fewer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synthgen.analyze.validate import NotComputable

DEFAULT_MEMORY_MB = 512
_U32 = float(np.finfo(np.float32).eps) / 2.0  # unit roundoff of float32
_U64 = float(np.finfo(np.float64).eps) / 2.0


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
    # a block holds a float32 distance matrix plus up to five boolean masks of the same shape
    return max(1, int(memory_mb * 2**20 / (9 * max(n_cols, 1))))


def _sq_block32(xb: np.ndarray, nb: np.ndarray, y: np.ndarray, ny: np.ndarray) -> np.ndarray:
    """Float32 squared distances ``nb_i + ny_j - 2 xb_i . y_j`` (inputs already float32)."""
    d = xb @ y.T
    d *= np.float32(-2.0)
    d += nb[:, None]
    d += ny[None, :]
    return d


def _band(dim: int, sqrt_na: np.ndarray, na: np.ndarray, sqrt_nb_max: float, nb_max: float) -> np.ndarray:
    """Bound on |float32 squared distance - float64 squared distance| for rows with norms ``na``
    against any column whose norms are at most the given maxima.

    2 (K + 2) u ||a|| ||b|| covers the dot product (inputs rounded to float32, K-term sum, any
    order); 4 u (||a||^2 + ||b||^2) covers rounding the norms to float32 and the two additions; the
    float64 side is off by a few 1e-16 relative. A factor 2 on the whole keeps clear of
    second-order terms: a wider band costs a few more float64 recomputations, never a decision."""
    dot = 2.0 * (dim + 2) * _U32 * sqrt_na * sqrt_nb_max
    add = 4.0 * _U32 * (na + nb_max) + 16.0 * _U64 * (na + nb_max)
    return 2.0 * (dot + add)


def _exact_sq(a: np.ndarray, na: np.ndarray, b: np.ndarray, nb: np.ndarray) -> np.ndarray:
    """Float64 squared distances of matching rows of ``a`` and ``b`` (same formula as a float64
    block would use), clipped at zero."""
    d = na + nb - 2.0 * np.einsum("ij,ij->i", a, b)
    return np.maximum(d, 0.0)


def knn_sq_radii(x: np.ndarray, k: int, memory_mb: float = DEFAULT_MEMORY_MB) -> np.ndarray:
    """Squared distance from each point to its k-th nearest other point (the point itself counts as
    the 0-th, as in the reference), decided on float64 distances (see module doc)."""
    x = np.ascontiguousarray(x, np.float64)
    n, dim = x.shape
    if n <= k:
        raise NotComputable(f"nearest_k={k} needs more than {k} samples per side, got {n}")
    nx = _sq_norms(x)
    if not np.isfinite(nx).all():  # the error band and the candidate search assume finite values
        raise NotComputable("features hold NaN/inf")
    x32, nx32 = x.astype(np.float32), nx.astype(np.float32)
    sq = np.sqrt(nx)
    band = _band(dim, sq, nx, float(sq.max()), float(nx.max()))
    out = np.empty(n)
    step = _block_rows(n, memory_mb)
    for i in range(0, n, step):
        d = _sq_block32(x32[i : i + step], nx32[i : i + step], x32, nx32)
        m = d.shape[0]
        rows = np.arange(m)
        d[rows, rows + i] = 0.0  # exact zero self-distance, as sklearn sets it
        kth = np.partition(d, k, axis=1)[:, k].astype(np.float64)
        limit = (kth + 2.0 * band[i : i + m]).astype(np.float32)
        # float32 rounding of the limit must not drop a candidate: step one float32 up
        limit = np.nextafter(limit, np.float32(np.inf))
        r, c = np.nonzero(d <= limit[:, None])
        gi = r + i
        exact = _exact_sq(x[gi], nx[gi], x[c], nx[c])
        exact[gi == c] = 0.0
        # the k-th smallest exact value per row among its candidates (rows come out sorted)
        order = np.lexsort((exact, r))
        starts = np.searchsorted(r, rows)  # np.nonzero returns row-major order: r is sorted
        out[i : i + m] = exact[order][starts + k]
    return out


def _decide(
    d: np.ndarray,
    thresh: np.ndarray,
    band: np.ndarray,
    axis: int,
    real_b: np.ndarray,
    nr_b: np.ndarray,
    synth: np.ndarray,
    ns: np.ndarray,
    thresh64: np.ndarray,
) -> np.ndarray:
    """Boolean ``d64 < thresh`` for a float32 block ``d`` (rows: real block, columns: synth), with
    per-row (axis=1) or per-column (axis=0) thresholds and bands; entries within the band of the
    threshold are recomputed in float64."""
    shape = (-1, 1) if axis == 1 else (1, -1)
    lo = (thresh - band).astype(np.float32)
    hi = (thresh + band).astype(np.float32)
    # widen by one float32 step each way so that rounding the bounds never narrows the band
    lo = np.nextafter(lo, np.float32(-np.inf)).reshape(shape)
    hi = np.nextafter(hi, np.float32(np.inf)).reshape(shape)
    inside = d < lo  # surely inside: d64 <= d32 + band < thresh
    maybe = d < hi  # outside this: d64 >= d32 - band >= thresh
    maybe ^= inside
    r, c = np.nonzero(maybe)
    if r.size:
        exact = _exact_sq(real_b[r], nr_b[r], synth[c], ns[c])
        inside[r, c] = exact < (thresh64[r] if axis == 1 else thresh64[c])
    return inside


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
    dim = real.shape[1]
    nr, ns = _sq_norms(real), _sq_norms(synth)
    real32, synth32 = real.astype(np.float32), synth.astype(np.float32)
    nr32, ns32 = nr.astype(np.float32), ns.astype(np.float32)
    sqr, sqs = np.sqrt(nr), np.sqrt(ns)
    # per real row against any synth column, and per synth column against any real row
    band_rows = _band(dim, sqr, nr, float(sqs.max()), float(ns.max()))
    band_cols = _band(dim, sqs, ns, float(sqr.max()), float(nr.max()))
    synth_in_real_ball = np.zeros(n_synth, bool)  # precision
    balls_per_synth = np.zeros(n_synth, np.int64)  # density
    real_in_synth_ball = np.empty(n_real, bool)  # recall
    real_covered = np.empty(n_real, bool)  # coverage
    step = _block_rows(n_synth, memory_mb)
    for i in range(0, n_real, step):
        sl = slice(i, i + step)
        d = _sq_block32(real32[sl], nr32[sl], synth32, ns32)
        rb, nrb = real[sl], nr[sl]
        inside = _decide(d, r_real[sl], band_rows[sl], 1, rb, nrb, synth, ns, r_real[sl])
        synth_in_real_ball |= inside.any(axis=0)
        balls_per_synth += inside.sum(axis=0)
        real_covered[sl] = inside.any(axis=1)  # min_j d < r_i  <=>  any_j d < r_i
        inside = _decide(d, r_synth, band_cols, 0, rb, nrb, synth, ns, r_synth)
        real_in_synth_ball[sl] = inside.any(axis=1)
    return PRDCResult(
        precision=float(synth_in_real_ball.mean()),
        recall=float(real_in_synth_ball.mean()),
        density=float(balls_per_synth.mean() / nearest_k),
        coverage=float(real_covered.mean()),
        nearest_k=nearest_k,
    )
