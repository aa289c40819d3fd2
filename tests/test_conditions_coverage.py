"""The Euro NCAP coverage matrix: cells of rows, the coverage planner, and the report files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from synthgen import ncap
from synthgen.curate.ncap_report import write_ncap_report
from synthgen.plan.config import PlanParams
from synthgen.plan.coverage import coverage_cells
from synthgen.plan.planner import plan_specs


def test_bands_and_skin_types() -> None:
    assert [ncap.age_band(a) for a in (10, 16, 29.9, 30, 64, 65, 80, 81)] == \
        ["<16", "16-29", "16-29", "30-49", "50-64", "65-80", "65-80", ">80"]
    assert [ncap.skin_type(m) for m in range(1, 11)] == [1, 1, 2, 3, 3, 4, 4, 5, 6, 6]
    for band in ncap.AGE_BANDS:
        lo, hi = ncap.age_band_range(band)
        assert ncap.age_band(lo) == band and ncap.age_band(hi - 1e-3) == band


def test_movement_types() -> None:
    fy, fp = ncap.forward_angles("rearview_mirror", "driver")
    assert ncap.movement("rearview_mirror", "driver", fy + 3, fp, fy, fp) == "road"
    assert ncap.movement("rearview_mirror", "driver", fy + 40, fp, fy + 32, fp) == "owl"
    assert ncap.movement("rearview_mirror", "driver", fy + 40, fp, fy + 5, fp) == "lizard"


@pytest.fixture(scope="module")
def coverage_plan():
    p = PlanParams.model_validate({"mode": "coverage", "coverage": {
        "min_count": 2, "glance_targets": ["infotainment", "left_mirror", "windshield"],
        "movements": ["road", "owl", "lizard"], "occluders": ["none", "face_mask"],
        "light_bands": ["night_nir", "sun"], "age_bands": ["16-29", "65-80"], "skin_types": [1, 6]}})
    return p, plan_specs(p, 3)


def test_coverage_plan_fills_every_reachable_cell(coverage_plan) -> None:
    p, specs = coverage_plan
    cells = coverage_cells(p)
    counts: dict[tuple, int] = {}
    for s in specs:
        c = ncap.cell_of(s.model_dump())
        assert c in cells
        counts[c] = counts.get(c, 0) + 1
    # Road glances land on the windshield only; every other combination is reachable here (a glance
    # across the wide windshield can be an owl or a lizard one).
    reachable = [c for c in cells if c[1] != "road" or c[0] == "windshield"]
    assert {c: counts.get(c, 0) for c in reachable} == {c: 2 for c in reachable}
    assert all(s.lighting == "nir" for s in specs if s.light_band == "night_nir")
    assert [s.sample_id for s in plan_specs(p, 3)] == [s.sample_id for s in specs]  # deterministic
    assert len({s.sample_id for s in specs}) == len(specs)


def test_report_counts_planned_rendered_accepted(coverage_plan, tmp_path: Path) -> None:
    p, specs = coverage_plan
    planned = [s.model_dump() for s in specs]
    rendered = [{f"req_{k}": v for k, v in d.items()} for d in planned[: len(planned) - 4]]
    accepted = [i % 2 == 0 for i in range(len(rendered))]
    m = write_ncap_report(planned, rendered, accepted, tmp_path, coverage_cells(p), min_count=1)
    assert m["n_cells"] == len(coverage_cells(p))
    assert sum(c["planned"] for c in m["cells"]) == len(planned)
    assert sum(c["rendered"] for c in m["cells"]) == len(rendered)
    assert sum(c["accepted"] for c in m["cells"]) == sum(accepted)
    unreachable = [c for c in m["cells"] if c["movement"] == "road" and c["glance_target"] != "windshield"]
    assert unreachable and all(c["planned"] == 0 for c in unreachable)
    metrics = json.loads((tmp_path / "ncap_metrics.json").read_text())
    assert metrics["cells_filled"] == m["cells_filled"] < m["n_cells"]
    page = (tmp_path / "ncap_coverage.html").read_text()
    assert "Euro NCAP" in page and "face_mask" in page and "65-80" in page
    assert json.loads((tmp_path / "ncap_coverage.json").read_text())["n_cells"] == m["n_cells"]
