"""Closed loop on plans: random round -> gaps vs a reference -> targeted round -> smaller gaps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from synthgen.analyze.coverage import find_gaps, gaps_document, joint_coverage
from synthgen.analyze.specs import spec_attributes
from synthgen.errors import ConfigError, DataError
from synthgen.gaps import read_gaps, write_gaps
from synthgen.plan.config import PlanParams
from synthgen.plan.planner import plan_specs
from synthgen.plan.sampling import plan_random
from synthgen.plan.targeted import allocate

ATTRS = ["age_group", "expression", "gaze_zone"]


def _reference(n: int = 240, seed: int = 5) -> dict[str, list[str]]:
    """A real set the default plan serves badly: many older people, sad or surprised, looking at mirrors."""
    rng = np.random.default_rng(seed)
    return {
        "age_group": rng.choice(["60-69", "70+", "20-29"], n, p=[0.4, 0.4, 0.2]).tolist(),
        "expression": rng.choice(["sadness", "surprise", "neutral"], n, p=[0.4, 0.3, 0.3]).tolist(),
        "gaze_zone": rng.choice(["left_mirror", "rearview_mirror", "windshield"], n, p=[0.4, 0.3, 0.3]).tolist(),
    }


def _merge(a: dict[str, list[str]], b: dict[str, list[str]]) -> dict[str, list[str]]:
    return {k: a[k] + b[k] for k in a}


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("loop")
    ref = _reference()
    round1 = plan_random(PlanParams(n=240, identities=40), seed=7)
    synth1 = spec_attributes(round1)
    cov1 = joint_coverage(ref, synth1, ATTRS)
    gaps1 = find_gaps(cov1, coverage_ratio=0.5, min_per_bin=5)
    doc = gaps_document(cov1, gaps1, 0.5, 5, "test reference")
    gaps_path = write_gaps(tmp / "gaps.json", doc)
    params = PlanParams(n=200, identities=40, mode="targeted", gaps=gaps_path)
    round2 = plan_specs(params, seed=7)
    synth2 = spec_attributes(round2)
    cov2 = joint_coverage(ref, _merge(synth1, synth2), ATTRS)
    gaps2 = find_gaps(cov2, coverage_ratio=0.5, min_per_bin=5)
    return dict(round1=round1, round2=round2, synth2=synth2, gaps1=gaps1, gaps2=gaps2, cov1=cov1, cov2=cov2,
                params=params, gaps_path=gaps_path, doc=doc)


def test_second_round_narrows_the_gaps(loop: dict):
    g1, g2 = loop["gaps1"], loop["gaps2"]
    assert g1, "the random round should leave gaps against this reference"
    need1, need2 = sum(g.needed for g in g1), sum(g.needed for g in g2)
    # targets follow the real proportions of the grown synthetic set, so gaps shrink, not vanish
    assert len(g2) < len(g1)
    assert need2 < 0.6 * need1
    # the bins the reference holds: the share of them that the synthetic set covers rises
    held = loop["cov1"].real_counts > 0
    cov_before = float((loop["cov1"].synth_counts[held] > 0).mean())
    cov_after = float((loop["cov2"].synth_counts[held] > 0).mean())
    assert cov_after > cov_before + 0.3


def test_targeted_specs_land_in_gap_bins(loop: dict):
    gap_keys = {tuple(g.key[a] for a in ATTRS) for g in loop["gaps1"]}
    s = loop["synth2"]
    hits = [(s["age_group"][i], s["expression"][i], s["gaze_zone"][i]) in gap_keys for i in range(len(loop["round2"]))]
    assert all(hits)
    # proportional to need: the neediest bin gets at least as many specs as the least needy
    counts = allocate(200, [g.needed for g in loop["gaps1"]])
    assert sum(counts) == 200 and counts[0] >= counts[-1]


def test_targeted_ids_unique_deterministic_and_new(loop: dict):
    ids2 = [s.sample_id for s in loop["round2"]]
    assert len(set(ids2)) == len(ids2)
    assert [s.index for s in loop["round2"]] == list(range(200))
    assert not set(ids2) & {s.sample_id for s in loop["round1"]}
    full = plan_specs(loop["params"], seed=7)
    assert [s.sample_id for s in full] == ids2


def test_bad_gaps_files(tmp_path: Path):
    with pytest.raises(DataError, match="gaps file not found"):
        read_gaps(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text(json.dumps({"version": 1, "bins": [{"key": {"expression": "smug"}, "needed": 3}]}))
    with pytest.raises(DataError, match="unknown expression 'smug'"):
        read_gaps(tmp_path / "bad.json")
    (tmp_path / "none.json").write_text(json.dumps({"version": 1, "bins": []}))
    with pytest.raises(ConfigError, match="no under-covered bin"):
        plan_specs(PlanParams(n=5, mode="targeted", gaps=tmp_path / "none.json"), seed=1)


def test_loop_figures(loop: dict, capsys: pytest.CaptureFixture[str]):
    g1, g2 = loop["gaps1"], loop["gaps2"]
    with capsys.disabled():
        print(f"\nclosed loop: gaps {len(g1)} -> {len(g2)}, samples needed {sum(g.needed for g in g1)} -> {sum(g.needed for g in g2)}")
