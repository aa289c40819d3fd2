"""Validation and normalisation of the labels real data sets ship, into the shared vocabulary.

Every function raises ValueError with a message that names the bad value and what is allowed; the
importers turn it into a BadRow (file and line) and carry on with the other rows.
"""

from __future__ import annotations

import math
from typing import Any

from synthgen.vocab import AGE_GROUPS, EXPRESSIONS, GAZE_ZONES, age_group

MAX_REAL_AGE = 120.0

# RAF-DB basic emotion labels, in its own 1-based order
RAFDB_EXPRESSIONS = {1: "surprise", 2: "fear", 3: "disgust", 4: "happiness", 5: "sadness", 6: "anger", 7: "neutral"}

_GENDER = {"male": "male", "m": "male", "man": "male", "female": "female", "f": "female", "woman": "female"}
_EXPRESSION_ALIASES = {"happy": "happiness", "sad": "sadness", "angry": "anger", "surprised": "surprise",
                       "fearful": "fear", "disgusted": "disgust", "happiness": "happiness"}
_FAIRFACE_AGE = {"more than 70": "70+", "70+": "70+"}

# label name -> meas_* column it fills
COLUMNS = {
    "age": "meas_age",
    "age_group": "meas_age_group",
    "gender": "meas_gender",
    "expression": "meas_expression",
    "gaze_yaw": "meas_gaze_yaw",
    "gaze_pitch": "meas_gaze_pitch",
    "gaze_zone": "meas_gaze_zone",
    "head_yaw": "meas_head_yaw",
    "head_pitch": "meas_head_pitch",
    "head_roll": "meas_head_roll",
}
# meas_* labeller-name column of each label group
LABELER_COLUMN = {
    "age": "meas_age_labeler",
    "age_group": "meas_age_labeler",
    "gender": "meas_gender_labeler",
    "expression": "meas_expression_labeler",
    "gaze_yaw": "meas_gaze_labeler",
    "gaze_pitch": "meas_gaze_labeler",
    "gaze_zone": "meas_gaze_labeler",
    "head_yaw": "meas_head_pose_labeler",
    "head_pitch": "meas_head_pose_labeler",
    "head_roll": "meas_head_pose_labeler",
}
_RANGES = {"gaze_yaw": 90.0, "gaze_pitch": 90.0, "head_yaw": 90.0, "head_pitch": 90.0, "head_roll": 90.0}


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or (isinstance(v, str) and v.strip() == "")


def _number(name: str, v: Any) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise ValueError(f"{name} {v!r} is not a number") from None
    if not math.isfinite(x):
        raise ValueError(f"{name} {v!r} is not finite")
    return x


def norm_age(v: Any) -> float:
    x = _number("age", v)
    if not 0.0 <= x <= MAX_REAL_AGE:
        raise ValueError(f"age {x:g} out of range [0, {MAX_REAL_AGE:g}]")
    return x


def norm_age_group(v: Any) -> str:
    s = str(v).strip()
    s = _FAIRFACE_AGE.get(s.lower(), s)
    if s not in AGE_GROUPS:
        raise ValueError(f"unknown age group {v!r}; allowed: {', '.join(AGE_GROUPS)} (or 'more than 70')")
    return s


def norm_gender(v: Any) -> str:
    s = str(v).strip().lower()
    if s not in _GENDER:
        raise ValueError(f"unknown gender {v!r}; allowed: male/female (or m/f)")
    return _GENDER[s]


def norm_expression(v: Any) -> str:
    s = str(v).strip().lower()
    s = _EXPRESSION_ALIASES.get(s, s)
    if s not in EXPRESSIONS:
        raise ValueError(f"unknown expression {v!r}; allowed: {', '.join(EXPRESSIONS)}")
    return s


def norm_gaze_zone(v: Any) -> str:
    s = str(v).strip().lower().replace(" ", "_").replace("-", "_")
    if s not in GAZE_ZONES:
        raise ValueError(f"unknown gaze zone {v!r}; allowed: {', '.join(GAZE_ZONES)}")
    return s


def norm_angle(name: str, v: Any) -> float:
    x = _number(name, v)
    if abs(x) > _RANGES[name]:
        raise ValueError(f"{name} {x:g} out of range [-{_RANGES[name]:g}, {_RANGES[name]:g}] degrees")
    return x


def normalise(labels: dict[str, Any]) -> dict[str, Any]:
    """Known label names -> canonical values; unknown names are ignored, missing values dropped.
    An age without an age group gets the group it falls in."""
    out: dict[str, Any] = {}
    for name, v in labels.items():
        if name not in COLUMNS or _missing(v):
            continue
        if name == "age":
            out[name] = norm_age(v)
        elif name == "age_group":
            out[name] = norm_age_group(v)
        elif name == "gender":
            out[name] = norm_gender(v)
        elif name == "expression":
            out[name] = norm_expression(v)
        elif name == "gaze_zone":
            out[name] = norm_gaze_zone(v)
        else:
            out[name] = norm_angle(name, v)
    if "age" in out and "age_group" not in out:
        out["age_group"] = age_group(out["age"])
    return out
