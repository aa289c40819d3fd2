"""Each curation filter on rows made to trip it, plus a row that passes; the report's arithmetic."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pytest

from synthgen.curate.config import CurateParams
from synthgen.curate.core import curate_table, reject_summary
from synthgen.curate.report import controllability_report
from synthgen.errors import ConfigError, DataError

RNG = np.random.default_rng(7)
EMB = RNG.normal(size=(12, 128))


def good(i: int, **changes: object) -> dict:
    row = dict(
        sample_id=f"s{i:02d}", meas_error=None, meas_face_count=1,
        meas_quality_face_size=120.0, meas_quality_sharpness=200.0, meas_quality_exposure=0.5,
        meas_quality_clipped=0.01, meas_quality_brisque=30.0,
        req_gaze_yaw=10.0, req_gaze_pitch=-5.0, meas_gaze_yaw=12.0, meas_gaze_pitch=-3.0, req_eyes_open=True,
        req_head_yaw=5.0, req_head_pitch=0.0, req_head_roll=0.0,
        meas_head_yaw=6.0, meas_head_pitch=1.0, meas_head_roll=-1.0,
        req_age=35.0, meas_age=38.0, req_age_group="30-39", meas_age_group="30-39",
        req_expression="happiness", req_expression_intensity=1.0, meas_expression="happiness",
        meas_expression_probs=[0.05, 0.8, 0.05, 0.04, 0.03, 0.02, 0.01],
        req_gaze_zone="windshield", meas_gaze_zone="windshield",
        meas_identity_embedding=EMB[i].tolist(), meas_phash=f"{(i * 0x0F0F0F0F0F0F) & (2**64 - 1):016x}",
    )
    row.update(changes)
    return row


def reasons(rows: list[dict], **params: object) -> dict[str, list[str]]:
    out = curate_table(pa.Table.from_pylist(rows), CurateParams(**params))
    assert out.column("accepted").to_pylist() == [not r for r in out.column("reject_reasons").to_pylist()]
    return dict(zip(out.column("sample_id").to_pylist(), out.column("reject_reasons").to_pylist(), strict=True))


def test_each_filter_trips_on_its_row_and_good_rows_pass() -> None:
    rows = [
        good(0),
        good(1, meas_error="unreadable image: bytes", meas_face_count=None),
        good(2, meas_face_count=0),
        good(3, meas_face_count=3),
        good(4, meas_quality_sharpness=2.0),
        good(5, meas_quality_exposure=0.97),
        good(6, meas_gaze_yaw=45.0),
        good(7, meas_head_pitch=-25.0),
        good(8, meas_age=70.0),
        good(9, meas_expression_probs=[0.5, 0.02, 0.4, 0.03, 0.02, 0.02, 0.01]),
    ]
    got = reasons(rows)
    assert got == {
        "s00": [], "s01": ["label_error"], "s02": ["no_face"], "s03": ["multiple_faces"],
        "s04": ["low_quality"], "s05": ["low_quality"], "s06": ["gaze_mismatch"],
        "s07": ["head_pose_mismatch"], "s08": ["age_mismatch"], "s09": ["expression_mismatch"],
    }


def test_tolerances_come_from_params_and_skips_are_explicit() -> None:
    rows = [good(0, meas_gaze_yaw=45.0), good(1, meas_gaze_yaw=45.0, req_eyes_open=False),
            good(2, req_age=None), good(3, req_expression="sadness", req_expression_intensity=0.2)]
    assert reasons(rows, tolerances={"gaze_deg": 40.0}) == {"s00": [], "s01": [], "s02": [], "s03": []}
    assert reasons(rows)["s00"] == ["gaze_mismatch"]
    assert reasons(rows)["s01"] == [], "closed eyes: gaze is not checked"
    assert reasons(rows)["s03"] == [], "a faint expression is not checked"


def test_near_duplicates_keep_one_per_cluster_deterministically() -> None:
    base = good(0)
    dup = good(1, meas_identity_embedding=(EMB[0] * 1.01).tolist(), meas_phash=base["meas_phash"])
    dup2 = good(2, meas_identity_embedding=(EMB[0] + 0.01).tolist(),
                meas_phash=f"{int(base['meas_phash'], 16) ^ 0b111:016x}")
    other_gaze = good(3, meas_identity_embedding=EMB[0].tolist(), meas_phash=base["meas_phash"], meas_gaze_yaw=30.0)
    got = reasons([dup2, dup, base, other_gaze])
    assert got["s00"] == [] and got["s01"] == ["near_duplicate"] and got["s02"] == ["near_duplicate"]
    assert got["s03"] == ["gaze_mismatch"], "another gaze is not a duplicate"
    # The kept member is one without other reasons, whatever the row order.
    blurry = dict(base, meas_quality_sharpness=1.0)
    got = reasons([blurry, dup])
    assert got == {"s00": ["low_quality", "near_duplicate"], "s01": []}


def test_identity_leak_against_reference(tmp_path: Path) -> None:
    ref = tmp_path / "real.npy"
    np.save(ref, np.stack([EMB[5] * 2.0, RNG.normal(size=128)]))
    got = reasons([good(5), good(6)], identity_reference=ref)
    assert got == {"s05": ["identity_leak"], "s06": []}
    pq_ref = tmp_path / "real.parquet"
    pl.DataFrame({"embedding": [EMB[6].tolist()]}).write_parquet(pq_ref)
    assert reasons([good(5), good(6)], identity_reference=pq_ref) == {"s05": [], "s06": ["identity_leak"]}
    np.save(tmp_path / "bad.npy", np.ones((2, 64)))
    with pytest.raises(ConfigError, match="64-d"):
        reasons([good(0)], identity_reference=tmp_path / "bad.npy")
    with pytest.raises(ConfigError, match="not found"):
        reasons([good(0)], identity_reference=tmp_path / "nope.npy")


def test_unlabelled_table_is_a_clear_error() -> None:
    with pytest.raises(DataError, match="not labelled"):
        curate_table(pa.Table.from_pylist([{"sample_id": "a"}]), CurateParams())


def test_reject_summary_counts_each_reason() -> None:
    t = pa.table({"reject_reasons": [[], ["no_face"], ["gaze_mismatch", "age_mismatch"], ["no_face"]]})
    s = reject_summary(pl.from_arrow(t).lazy())
    assert s.to_dicts()[0] == {"reason": "no_face", "rows": 2, "fraction": 0.5}
    assert set(s["reason"]) == {"no_face", "gaze_mismatch", "age_mismatch"}
    assert reject_summary(t).equals(s)


def test_controllability_report_numbers() -> None:
    rows = [good(0), good(1, meas_head_yaw=15.0, meas_expression="neutral", meas_gaze_zone="lap"),
            good(2, meas_face_count=0, req_head_yaw=50.0), good(3, req_head_yaw=-20.0, meas_head_yaw=-20.0)]
    table = curate_table(pa.Table.from_pylist(rows), CurateParams())
    rep = controllability_report(table)
    assert rep["rows"] == 4 and rep["detection"]["one_face_rate"] == 0.75
    assert rep["detection"]["rows_head_yaw_le_30"] == 3 and rep["detection"]["one_face_rate_head_yaw_le_30"] == 1.0
    # head yaw errors over the 3 one-face rows: +1, +10, 0
    assert rep["head_yaw"] == {"n": 3, "mae": pytest.approx(11 / 3, abs=1e-3), "median": 1.0,
                               "bias": pytest.approx(11 / 3, abs=1e-3)}
    assert rep["expression"]["accuracy"] == pytest.approx(2 / 3, abs=1e-3)
    assert rep["expression"]["confusion"]["happiness"] == {"happiness": 2, "neutral": 1}
    assert rep["gaze_zone"]["accuracy"] == pytest.approx(2 / 3, abs=1e-3)
    assert rep["acceptance"]["by_reason"] == {"head_pose_mismatch": 1, "no_face": 1}
    assert controllability_report(table) == rep, "pure: same input, same report"
