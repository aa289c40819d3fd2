"""Joint gaze yaw/pitch density: the report figure, its not-computable note and the DVC plot CSV."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pyarrow as pa

from synthgen.analyze.compare import analyze_tables
from synthgen.analyze.config import AnalyzeParams
from synthgen.analyze.report import render_report
from synthgen.analyze.stage import write_plot_data

FAST = {"kid_subsets": 5, "kid_subset_size": 50, "bootstrap": 20, "mmd_max_samples": 200, "min_bin_samples": 5}
PARAMS = AnalyzeParams(**FAST, attributes=["gaze_yaw", "gaze_pitch"], coverage_attributes=["gaze_zone"])


def _gaze(n: int, seed: int, prefix: str, unknown: int) -> dict[str, list[float | None]]:
    """Gaze columns with ``unknown`` rows missing one angle and two values beyond the histogram edges."""
    rng = np.random.default_rng(seed)
    yaw: list[float | None] = rng.normal(0, 20, n).tolist()
    pitch: list[float | None] = rng.normal(-5, 10, n).tolist()
    yaw[0], pitch[1] = 150.0, -80.0  # clipped into the outer bins, still counted
    for i in range(2, 2 + unknown):
        (yaw if i % 2 else pitch)[i] = None
    return {f"{prefix}_gaze_yaw": yaw, f"{prefix}_gaze_pitch": pitch}


def _tables(real_gaze: bool) -> tuple[pa.Table, pa.Table]:
    synth = pa.table({"sample_id": [f"s{i}" for i in range(60)], **_gaze(60, 0, "req", unknown=4)})
    real_cols = _gaze(40, 1, "meas", unknown=3) if real_gaze else {"meas_age": [30.0] * 40}
    return synth, pa.table({"sample_id": [f"r{i}" for i in range(40)], **real_cols})


def test_report_shows_joint_gaze_density_for_both_sides():
    synth, real = _tables(real_gaze=True)
    res = analyze_tables(synth, real, PARAMS)
    g = res.info["gaze_density"]
    assert (g["synthetic"]["n"], g["real"]["n"]) == (56, 37)
    assert g["synthetic"]["columns"] == ["req_gaze_yaw", "req_gaze_pitch"]
    assert g["real"]["columns"] == ["meas_gaze_yaw", "meas_gaze_pitch"]
    html = render_report(res)
    section = html[html.index('<section id="gaze-density">'):]
    section = section[: section.index("</section>")]
    assert "Gaze yaw / pitch density" in section
    assert section.count("data:image/png;base64,") == 1
    assert "not computable" not in section


def test_missing_real_gaze_is_reported_and_synthetic_drawn_alone():
    synth, real = _tables(real_gaze=False)
    res = analyze_tables(synth, real, PARAMS)
    html = render_report(res)
    section = html[html.index('<section id="gaze-density">'):]
    section = section[: section.index("</section>")]
    assert "real gaze density not computable: no gaze_yaw / gaze_pitch column in the real data" in section
    assert section.count("data:image/png;base64,") == 1  # the synthetic density alone


def test_csv_counts_sum_to_rows_with_gaze(tmp_path: Path):
    synth, real = _tables(real_gaze=True)
    files = write_plot_data(analyze_tables(synth, real, PARAMS), tmp_path)
    with open(files["gaze_density"], newline="") as f:
        rows = list(csv.DictReader(f))
    assert set(rows[0]) == {"source", "yaw_bin", "pitch_bin", "count"}
    total = {s: sum(int(r["count"]) for r in rows if r["source"] == s) for s in ("synthetic", "real")}
    assert total == {"synthetic": 56, "real": 37}
    # without real gaze labels only the synthetic side is written
    files = write_plot_data(analyze_tables(*_tables(real_gaze=False), PARAMS), tmp_path / "one")
    with open(files["gaze_density"], newline="") as f:
        assert {r["source"] for r in csv.DictReader(f)} == {"synthetic"}
