"""Attribute-level shift and joint coverage against scipy on hand-made samples."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2_contingency, ks_2samp, wasserstein_distance

from synthgen.analyze.attributes import attribute_shift
from synthgen.analyze.coverage import find_gaps, joint_coverage
from synthgen.vocab import EXPRESSIONS


def test_categorical_counts_in_vocabulary_order_and_scipy_values():
    real = ["happiness"] * 5 + ["neutral"] * 3 + [None, "sadness"]
    synth = ["neutral"] * 6 + ["happiness"] * 2 + ["smug"]
    s = attribute_shift("expression", real, synth)
    assert s.bins == list(EXPRESSIONS) + ["smug"]  # unknown classes appended once, never duplicated
    rc, sc = np.array(s.real_counts), np.array(s.synth_counts)
    assert rc.sum() == 9 and sc.sum() == 9
    jsd = next(m for m in s.metrics if m.name == "jsd").value
    assert jsd == pytest.approx(jensenshannon(rc / rc.sum(), sc / sc.sum(), base=2) ** 2)
    keep = (rc + sc) > 0
    p = next(m for m in s.metrics if m.name == "chi2_p").value
    assert p == pytest.approx(chi2_contingency(np.vstack([rc[keep], sc[keep]])).pvalue)


def test_continuous_against_scipy():
    rng = np.random.default_rng(0)
    real, synth = rng.normal(30, 10, 300), rng.normal(40, 10, 200)
    s = attribute_shift("age", list(real) + [None, float("nan")], synth.tolist())
    got = {m.name: m.value for m in s.metrics}
    assert got["wasserstein"] == pytest.approx(wasserstein_distance(real, synth))
    assert got["ks_p"] == pytest.approx(ks_2samp(real, synth).pvalue)
    assert 0 < got["jsd"] < 1
    same = {m.name: m.value for m in attribute_shift("age", real.tolist(), real.tolist()).metrics}
    assert same["jsd"] == pytest.approx(0.0, abs=1e-12) and same["wasserstein"] == pytest.approx(0.0)


def test_missing_side_and_empty_side():
    s = attribute_shift("gaze_zone", None, ["windshield"])
    assert all(m.value is None and "absent from the real data" in m.reason for m in s.metrics)
    s = attribute_shift("age", [None, None], [30.0])
    assert all(m.value is None and "no known age values on the real side" in m.reason for m in s.metrics)


def test_joint_coverage_real_only_and_synth_only():
    real = {"age_group": ["20-29", "70+", "70+"], "expression": ["neutral", "sadness", "sadness"], "gaze_zone": None}
    synth = {"age_group": ["20-29", "30-39", None], "expression": ["neutral", "anger", "neutral"], "gaze_zone": ["lap"] * 3}
    cov = joint_coverage(real, synth, ["age_group", "expression", "gaze_zone"])
    assert cov.attributes == ["age_group", "expression"] and "gaze_zone" in cov.dropped
    assert cov.real_only() == [("70+", "sadness")] and cov.synth_only() == [("30-39", "anger")]
    assert cov.unknown_rows == {"real": 0, "synthetic": 1}
    gaps = find_gaps(cov, coverage_ratio=0.5, min_per_bin=1)
    assert [g.key for g in gaps] == [{"age_group": "70+", "expression": "sadness"}]
    assert gaps[0].needed == 2  # target = 2/3 of max(1 in support, 3 real) = 2
