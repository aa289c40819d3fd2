"""The analyze stage end to end on constructed tables: files written, reasons for what is missing."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from synthgen.analyze.compare import analyze_tables
from synthgen.analyze.config import AnalyzeParams
from synthgen.analyze.result import AnalysisResult
from synthgen.config import Params
from synthgen.images import encode_png
from synthgen.paths import Layout
from synthgen.vocab import EXPRESSIONS, age_group

FAST = {"kid_subsets": 5, "kid_subset_size": 50, "bootstrap": 20, "mmd_max_samples": 200, "min_bin_samples": 5}


def _png(rng: np.random.Generator) -> bytes:
    return encode_png(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8))


def synthetic_table(n: int, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    ages = rng.uniform(18, 60, n)
    return pa.table({
        "sample_id": [f"s{i}" for i in range(n)],
        "source": ["synthetic"] * n,
        "image": [{"bytes": _png(rng), "path": None} for _ in range(n)],
        "req_age": ages, "req_age_group": [age_group(a) for a in ages],
        "req_expression": rng.choice(EXPRESSIONS[:3], n).tolist(),
        "req_gaze_yaw": rng.normal(0, 15, n), "req_gaze_pitch": rng.normal(-5, 8, n),
        "req_gaze_zone": rng.choice(["windshield", "left_mirror"], n).tolist(),
        "meas_age": ages + rng.normal(0, 3, n),
        "meas_identity_embedding": pa.array(list(rng.normal(0.2, 1, (n, 16)).astype(np.float32)), pa.list_(pa.float32())),
        "accepted": [True] * (n - 3) + [False] * 3,
    })


def real_table(n: int, seed: int = 1) -> pa.Table:
    rng = np.random.default_rng(seed)
    ages = rng.uniform(15, 80, n)
    emb = list(rng.normal(0, 1, (n, 16)).astype(np.float32))
    emb[0] = None  # a row where no face was found
    return pa.table({
        "sample_id": [f"r{i}" for i in range(n)],
        "source": ["real"] * n,
        "image": [{"bytes": _png(rng), "path": None} for _ in range(n)],
        "meas_age": ages, "meas_age_group": [age_group(a) for a in ages],
        "meas_expression": rng.choice(EXPRESSIONS, n).tolist(),
        "meas_gaze_yaw": rng.normal(10, 20, n), "meas_gaze_pitch": rng.normal(0, 10, n),
        "meas_gaze_zone": pa.nulls(n, pa.string()),  # no camera geometry for real photos
        "meas_identity_embedding": pa.array(emb, pa.list_(pa.float32())),
    })


@pytest.fixture(scope="module")
def stage_run(tmp_path_factory: pytest.TempPathFactory):
    from synthgen.stages import run_analyze

    tmp = tmp_path_factory.mktemp("analyze")
    real_path = tmp / "real.parquet"
    pq.write_table(real_table(150), real_path)
    params = Params(data_dir=tmp / "data", analyze={**FAST, "reference": str(real_path)})
    vdir = Layout.from_params(params).version_dir
    (vdir / "split=train").mkdir(parents=True)
    pq.write_table(synthetic_table(180), vdir / "split=train" / "part-00000.parquet")
    return params, run_analyze(params, progress=False)


def test_stage_writes_every_output(stage_run):
    params, res = stage_run
    out = Layout.from_params(params).reports_dir
    for name in ("metrics.json", "analysis.json", "report.html", "gaps.json", "plots/attr_age.csv", "plots/gaze_density.csv", "plots/coverage.csv", "plots/projection.csv"):
        assert (out / name).is_file(), name
    flat = json.loads((out / "metrics.json").read_text())
    assert all(isinstance(v, (int, float)) for v in flat.values())
    for key in ("fd", "kid", "kid_std", "precision", "recall", "density", "coverage", "mmd", "domain_auc", "domain_auc_ci_low",
                "attr.age.wasserstein", "attr.expression.jsd", "coverage.bin_coverage"):
        assert key in flat, key
    assert res.info["n_synthetic"] == 177  # rejected rows left out
    assert res.info["embedding"]["skipped_real"] == {"no identity embedding (no face found)": 1}
    loaded = AnalysisResult.load(out / "analysis.json")
    assert loaded.flat_metrics() == res.flat_metrics()


def test_report_is_self_contained(stage_run):
    params, _ = stage_run
    text = (Layout.from_params(params).reports_dir / "report.html").read_text()
    assert not re.search(r"(src|href)=[\"']https?:", text) and "<script" not in text
    assert text.count("data:image/png;base64,") >= 5
    assert "DEMO reference" not in text and "not computable" in text


def test_gaze_zone_absent_from_real_is_reported_not_crashed(stage_run):
    _, res = stage_run
    jsd = res.get("jsd", "attr.gaze_zone")
    assert jsd.value is None and "meas_gaze_zone holds no values" in jsd.reason
    assert res.coverage["attributes"] == ["age_group", "expression"]
    assert "gaze_zone" in res.coverage["dropped"]
    gaps = json.loads(Path(res.files["gaps"]).read_text())
    assert gaps["bins"] and all(set(b["key"]) == {"age_group", "expression"} for b in gaps["bins"])
    # the synthetic side has only 3 expressions: the others are gaps
    assert {b["key"]["expression"] for b in gaps["bins"]} >= {"fear", "disgust", "anger"}


def test_per_bin_metrics_and_reasons(stage_run):
    _, res = stage_run
    scopes = {m.scope for m in res.metrics if m.scope.startswith("age_group=")}
    assert "age_group=30-39" in scopes
    small = [m for m in res.metrics if m.scope == "age_group=70+" and m.name == "fd"]
    assert small and small[0].value is None and "per side needed" in small[0].reason


def test_empty_real_set_marks_everything_not_computable():
    res = analyze_tables(synthetic_table(20), real_table(5).slice(0, 0), AnalyzeParams(**FAST))
    emb = [m for m in res.metrics if m.scope == "overall"]
    assert emb and all(m.value is None for m in emb)
    assert "real set is empty" in res.get("fd").reason
    assert res.get("jsd", "attr.expression").value is None


def test_no_overlapping_attributes():
    real = pa.table({"sample_id": ["a", "b"], "meas_head_roll": [1.0, 2.0]})
    res = analyze_tables(synthetic_table(10), real, AnalyzeParams(**FAST, attributes=["expression"], coverage_attributes=["expression"]))
    assert res.get("jsd", "attr.expression").value is None
    assert "absent from the real data" in res.get("jsd", "attr.expression").reason
    cov = res.get("bin_coverage", "coverage")
    assert cov.value is None and "no coverage attribute is known on both sides" in cov.reason
    assert res.gaps["bins"] == []
    assert res.get("fd").value is None  # no identity embedding on the real side


def test_missing_synthetic_dataset_is_a_clear_error(tmp_path: Path):
    from synthgen.errors import DataError
    from synthgen.stages import run_analyze

    real_path = tmp_path / "real.parquet"
    pq.write_table(real_table(20), real_path)
    with pytest.raises(DataError, match="no published synthetic shards"):
        run_analyze(Params(data_dir=tmp_path, analyze={"reference": str(real_path)}), progress=False)
