"""Embedding metrics agree with the reference implementations on identical features."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest

from synthgen.analyze.classifier import domain_auc
from synthgen.analyze.config import AnalyzeParams
from synthgen.analyze.embedding import embedding_metrics
from synthgen.analyze.frechet import frechet_distance, frechet_distance_features, gaussian_stats
from synthgen.analyze.kernel import kid, mmd_rbf
from synthgen.analyze.prdc import prdc


def _sets(n_real: int = 400, n_synth: int = 300, d: int = 32, shift: float = 0.3, seed: int = 0):
    rng = np.random.default_rng(seed)
    real = rng.normal(size=(n_real, d)) @ rng.normal(size=(d, d)) * 0.3 + 1.0
    synth = rng.normal(shift, 1.2, size=(n_synth, d)) @ rng.normal(size=(d, d)) * 0.3 + 1.0
    return real, synth


def test_gaussian_stats_chunked_equals_numpy():
    real, _ = _sets()
    st = gaussian_stats(real, chunk=37)
    np.testing.assert_allclose(st.mu, real.mean(0), rtol=1e-12)
    np.testing.assert_allclose(st.sigma, np.cov(real, rowvar=False), rtol=1e-10, atol=1e-12)


def test_frechet_distance_matches_clean_fid():
    from cleanfid.fid import frechet_distance as ref_fd

    for shift in (0.0, 0.3, 2.0):
        real, synth = _sets(shift=shift)
        ref = ref_fd(real.mean(0), np.cov(real, rowvar=False), synth.mean(0), np.cov(synth, rowvar=False))
        ours = frechet_distance_features(real, synth, chunk=100)
        assert ours == pytest.approx(ref, rel=1e-5)


def test_frechet_distance_matches_torchmetrics():
    torch = pytest.importorskip("torch")
    from torchmetrics.image.fid import _compute_fid

    real, synth = _sets(shift=0.5)
    a, b = gaussian_stats(real), gaussian_stats(synth)
    ref = float(_compute_fid(torch.tensor(a.mu), torch.tensor(a.sigma), torch.tensor(b.mu), torch.tensor(b.sigma)))
    assert frechet_distance(a.mu, a.sigma, b.mu, b.sigma) == pytest.approx(ref, rel=1e-5)


@pytest.mark.parametrize("subset", [200, 201, 2])  # even and odd halves of the blocked Grams; the smallest subset
def test_kid_matches_clean_fid_draw_for_draw(subset: int):
    from cleanfid.fid import kernel_distance

    real, synth = _sets(n_real=500, n_synth=450)
    np.random.seed(11)
    ref = kernel_distance(real, synth, num_subsets=20, max_subset_size=subset)
    ours = kid(real, synth, num_subsets=20, max_subset_size=subset, seed=11)
    assert ours.mean == pytest.approx(ref, rel=1e-5)
    assert ours.std > 0 and ours.subsets.shape == (20,)


def test_kid_near_zero_for_same_distribution_and_positive_for_shift():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(600, 16)), rng.normal(size=(600, 16))
    same = kid(a, b, num_subsets=20, max_subset_size=300, seed=0)
    shifted = kid(a, b + 0.5, num_subsets=20, max_subset_size=300, seed=0)
    assert abs(same.mean) < 3 * same.std + 1e-3
    assert shifted.mean > 10 * abs(same.mean)


@pytest.mark.parametrize("k", [1, 3, 5])
def test_prdc_matches_reference_with_small_blocks(k: int):
    import prdc as ref_prdc

    real, synth = _sets(n_real=350, n_synth=280, shift=0.2)
    with contextlib.redirect_stdout(io.StringIO()):
        ref = ref_prdc.compute_prdc(real, synth, k)
    ours = prdc(real, synth, k, memory_mb=0.05)  # forces many row blocks
    for name in ("precision", "recall", "density", "coverage"):
        assert getattr(ours, name) == pytest.approx(float(ref[name]), rel=1e-9), name


def test_mmd_matches_direct_formula():
    from scipy.spatial.distance import cdist

    real, synth = _sets(n_real=120, n_synth=90)
    r = mmd_rbf(real, synth, seed=0, block=17)
    g = 1.0 / (2 * r.bandwidth**2)
    kxx, kyy, kxy = (np.exp(-g * cdist(a, b, "sqeuclidean")) for a, b in ((real, real), (synth, synth), (real, synth)))
    n, m = len(real), len(synth)
    want = (kxx.sum() - n) / (n * (n - 1)) + (kyy.sum() - m) / (m * (m - 1)) - 2 * kxy.mean()
    assert r.mmd2 == pytest.approx(want, rel=1e-9)
    pooled = np.vstack([real, synth])
    d = cdist(pooled, pooled)[np.triu_indices(len(pooled), 1)]
    assert r.bandwidth == pytest.approx(np.median(d), rel=1e-9)


def test_domain_classifier_half_when_same_and_high_when_shifted():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(400, 8)), rng.normal(size=(400, 8))
    same = domain_auc(a, b, n_boot=50, seed=0)
    assert same.ci_low < 0.5 < same.ci_high + 0.05 and abs(same.auc - 0.5) < 0.1
    far = domain_auc(a, b + 1.5, n_boot=50, seed=0)
    assert far.auc > 0.95 and far.ci_low > 0.9
    assert far.scores.shape == (800,)


def test_metrics_deterministic_with_seed():
    real, synth = _sets(n_real=200, n_synth=200)
    p = AnalyzeParams(kid_subsets=5, bootstrap=20)
    a = [m.value for m in embedding_metrics(real, synth, p, seed=3)]
    b = [m.value for m in embedding_metrics(real, synth, p, seed=3)]
    assert a == b


@pytest.mark.parametrize(
    "real, synth, fragment",
    [
        (np.zeros((0, 8)), np.ones((10, 8)), "real set has 0 samples"),
        (np.ones((10, 8)), np.ones((10, 4)), "feature dimensions differ"),
        (np.full((10, 8), np.nan), np.ones((10, 8)), "NaN"),
        (np.ones(8), np.ones((10, 8)), "2-D"),
    ],
)
def test_bad_features_are_not_computable_with_reason(real, synth, fragment):
    out = embedding_metrics(real, synth, AnalyzeParams(kid_subsets=2, bootstrap=10))
    assert {m.name for m in out} == {"fd", "kid", "precision", "recall", "density", "coverage", "mmd", "domain_auc"}
    for m in out:
        assert m.value is None and fragment in m.reason


def test_too_few_samples_for_knn_is_not_computable():
    rng = np.random.default_rng(0)
    out = embedding_metrics(rng.normal(size=(4, 3)), rng.normal(size=(30, 3)), AnalyzeParams(kid_subsets=2, bootstrap=10, nearest_k=5))
    prec = next(m for m in out if m.name == "precision")
    assert prec.value is None and "nearest_k=5" in prec.reason
    assert next(m for m in out if m.name == "fd").value is not None


def test_identical_points_make_mmd_not_computable():
    out = embedding_metrics(np.ones((10, 3)), np.ones((10, 3)), AnalyzeParams(kid_subsets=2, bootstrap=10), metrics=("mmd",))
    assert out[0].value is None and "identical" in out[0].reason


def test_fd_float32_products_keep_near_identical_sets_within_tolerance():
    """Two samples of one distribution: FD is small next to tr(s1) + tr(s2), the worst case for the
    float32 covariance products of ``frechet_distance_features``."""
    rng = np.random.default_rng(5)
    mix = rng.normal(size=(64, 64)) / 8.0
    a = np.maximum(rng.normal(size=(3000, 64)) @ mix, 0.0) + 3.0
    b = np.maximum(rng.normal(size=(3000, 64)) @ mix, 0.0) + 3.0
    sa, sb = gaussian_stats(a), gaussian_stats(b)
    exact = frechet_distance(sa.mu, sa.sigma, sb.mu, sb.sigma)
    assert 0 < exact < 0.05 * (np.trace(sa.sigma) + np.trace(sb.sigma))
    assert frechet_distance_features(a, b, chunk=500) == pytest.approx(exact, rel=1e-5)


def test_frechet_distance_singular_first_covariance_falls_back_to_eigh():
    """Fewer samples than dimensions: no Cholesky factor; the eigendecomposition path takes over."""
    rng = np.random.default_rng(6)
    a, b = rng.normal(size=(20, 32)), rng.normal(0.3, 1.1, size=(200, 32))
    sa, sb = gaussian_stats(a), gaussian_stats(b)
    ev = np.linalg.eigvals(sa.sigma @ sb.sigma).real
    want = (sa.mu - sb.mu) @ (sa.mu - sb.mu) + np.trace(sa.sigma) + np.trace(sb.sigma) - 2 * np.sqrt(np.clip(ev, 0, None)).sum()
    assert frechet_distance(sa.mu, sa.sigma, sb.mu, sb.sigma) == pytest.approx(want, rel=1e-6)


def test_kid_float32_grams_match_clean_fid_for_near_identical_sets():
    from cleanfid.fid import kernel_distance

    rng = np.random.default_rng(7)
    real, synth = rng.normal(size=(800, 64)), rng.normal(size=(800, 64))
    np.random.seed(3)
    ref = kernel_distance(real, synth, num_subsets=10, max_subset_size=400)
    ours = kid(real, synth, num_subsets=10, max_subset_size=400, seed=3)
    # KID is near zero here, so compare against the spread of the subset estimates
    assert abs(ours.mean - ref) < 1e-4 * ours.std


def _lattice_sets(n_real: int = 300, n_synth: int = 250, d: int = 8, seed: int = 0):
    """Integer features near 2000: float64 distances are exact integers with many exact ties at
    the k-NN radii, while float32 norms (~3e7 > 2^24) are rounded, so plenty of float32 distances
    fall within the error band of a threshold and go through the float64 recomputation."""
    rng = np.random.default_rng(seed)
    real = (2000 + rng.integers(0, 3, size=(n_real, d))).astype(np.float64)
    synth = (2000 + rng.integers(0, 3, size=(n_synth, d)) + (rng.random((n_synth, 1)) < 0.3)).astype(np.float64)
    return real, synth


@pytest.mark.parametrize("k", [1, 3, 5])
def test_knn_radii_exact_on_ties(k: int):
    from synthgen.analyze.prdc import knn_sq_radii

    real, _ = _lattice_sets()
    full = ((real[:, None, :] - real[None, :, :]) ** 2).sum(-1)  # exact integers
    want = np.partition(full, k, axis=1)[:, k]
    np.testing.assert_array_equal(knn_sq_radii(real, k, memory_mb=0.05), want)


@pytest.mark.parametrize("k", [1, 3, 5])
def test_prdc_borderline_entries_recomputed_match_reference(k: int, monkeypatch):
    import prdc as ref_prdc

    from synthgen.analyze import prdc as ours_mod

    recomputed = []
    orig = ours_mod._exact_sq

    def counting(a, na, b, nb):
        recomputed.append(a.shape[0])
        return orig(a, na, b, nb)

    monkeypatch.setattr(ours_mod, "_exact_sq", counting)
    real, synth = _lattice_sets()
    with contextlib.redirect_stdout(io.StringIO()):
        ref = ref_prdc.compute_prdc(real, synth, k)
    ours = prdc(real, synth, k, memory_mb=0.05)
    for name in ("precision", "recall", "density", "coverage"):
        assert getattr(ours, name) == float(ref[name]), name
    assert sum(recomputed) > 1000  # the tie-heavy data really went through the float64 path
