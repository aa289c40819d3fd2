"""Curation rules per condition, on rows the real renderer and labellers made, and on row tables
built to isolate one rule each."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from synthgen.contract import image_struct
from synthgen.curate.config import CurateParams
from synthgen.curate.core import decide
from synthgen.generate.procedural.renderer import render_spec
from synthgen.images import encode_png
from synthgen.label.config import LabelParams
from synthgen.label.pipeline import build_labelers, label_one
from synthgen.spec import SceneSpec

BASE = dict(sample_id="t", index=0, seed=5, identity=0, identity_seed=11, age=35, gender="male", skin_tone=4)


def _row(**over: object) -> dict:
    """A row that passes every check, then the overrides."""
    vis = [True] * 68
    row = {
        "sample_id": "a", "meas_error": None, "meas_face_count": 1, "meas_face_box": [10.0, 10.0, 90.0, 90.0],
        "req_gaze_yaw": 0.0, "req_gaze_pitch": 0.0, "meas_gaze_yaw": 0.0, "meas_gaze_pitch": 0.0,
        "req_head_yaw": 0.0, "req_head_pitch": 0.0, "req_head_roll": 0.0,
        "meas_head_yaw": 0.0, "meas_head_pitch": 0.0, "meas_head_roll": 0.0,
        "req_age": 30.0, "meas_age": 30.0, "req_expression": "happiness", "req_expression_intensity": 1.0,
        "meas_expression_probs": [0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0], "req_eyes_open": True,
        "req_eye_openness": 1.0, "req_eye_state": "open", "req_landmarks_68_visible": vis,
        "req_visible_enough": True, "req_eye_aperture_mm": [9.7, 9.7], "meas_ear": [0.28, 0.28],
    }
    row.update(over)
    return row


def _reasons(*rows: dict) -> list[list[str]]:
    params = CurateParams(filters=["label_error", "face_count", "mismatch", "conditions"])
    return decide(pl.DataFrame(list(rows), strict=False), params).reasons


def test_occluded_mouth_is_not_an_expression_mismatch() -> None:
    wrong = [0.6, 0.0, 0.4, 0.0, 0.0, 0.0, 0.0]  # neutral / sadness measured for a requested smile
    vis = [True] * 48 + [False] * 20
    assert _reasons(_row(meas_expression_probs=wrong)) == [["expression_mismatch"]]
    assert _reasons(_row(meas_expression_probs=wrong, req_landmarks_68_visible=vis)) == [[]]
    assert _reasons(_row(meas_expression_probs=wrong, req_eye_state="yawn")) == [[]]


def test_requested_closed_eye_is_not_a_gaze_mismatch() -> None:
    off = {"meas_gaze_yaw": 40.0}
    assert _reasons(_row(**off)) == [["gaze_mismatch"]]
    assert _reasons(_row(**off, req_eye_state="closed", req_eye_aperture_mm=[0.4, 0.4], meas_ear=[0.03, 0.03])) == [[]]
    hidden = [True] * 36 + [False] * 6 + [True] * 26
    assert _reasons(_row(**off, req_landmarks_68_visible=hidden)) == [[]]


def test_hidden_face_is_not_no_face_but_a_visible_one_is() -> None:
    assert _reasons(_row(meas_face_count=0)) == [["no_face"]]
    assert _reasons(_row(meas_face_count=0, req_visible_enough=False)) == [[]]


def test_eye_state_mismatch() -> None:
    assert _reasons(_row(req_eye_aperture_mm=[0.4, 0.4], meas_ear=[0.28, 0.27], req_eyes_open=False)) \
        == [["eye_state_mismatch"]]
    assert _reasons(_row(meas_ear=[0.05, 0.04])) == [["eye_state_mismatch"]]
    assert _reasons(_row(req_eye_aperture_mm=[0.4, 0.4], meas_ear=[0.03, 0.03], req_eyes_open=False)) == [[]]


def test_frames_of_one_clip_are_not_near_duplicates() -> None:
    rows = []
    for i, seq in enumerate(["s1", "s1", "", ""]):
        rows.append(_row(sample_id=f"r{i}", sequence_id=seq, meas_identity_embedding=[1.0, 0.0, 0.0],
                         meas_phash="00000000000000ff", meas_expression="neutral"))
    params = CurateParams(filters=["near_duplicate"])
    reasons = decide(pl.DataFrame(rows, strict=False), params).reasons
    assert reasons[0] == [] and reasons[1] == []  # clip frames: both kept
    assert sorted(map(tuple, reasons[2:])) == [(), ("near_duplicate",)]


@pytest.fixture(scope="module")
def labelers():
    return build_labelers(LabelParams(labelers=["mediapipe_detector", "mediapipe_mesh", "dlib", "eye_aperture"]))


def test_measured_ear_follows_the_rendered_aperture(labelers) -> None:
    from scipy.stats import spearmanr

    ap, ear = [], []
    for o in np.linspace(0.0, 1.0, 6):
        r = render_spec(SceneSpec(**BASE, eye_openness=float(o)), 256, 256)
        m = label_one(labelers, image_struct(encode_png(r.image), "x"), {})
        assert m["meas_ear_labeler"].endswith("mediapipe_mesh")
        ap.append(np.mean(r.labels["req_eye_aperture_mm"]))
        ear.append(np.mean(m["meas_ear"]))
    assert spearmanr(ap, ear)[0] >= 0.9
