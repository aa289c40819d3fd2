"""The shared vocabulary. Every stage, column and report uses these exact spellings.

Order matters: probability vectors (e.g. ``meas_expression_probs``) follow the tuple order.
"""

from __future__ import annotations

from typing import Literal, get_args

# The 7 basic classes of RAF-DB / FER.
Expression = Literal["neutral", "happiness", "sadness", "surprise", "fear", "disgust", "anger"]
EXPRESSIONS: tuple[str, ...] = get_args(Expression)

# The 9 FairFace age groups; upper bounds are exclusive except the last, open one.
AgeGroup = Literal["0-2", "3-9", "10-19", "20-29", "30-39", "40-49", "50-59", "60-69", "70+"]
AGE_GROUPS: tuple[str, ...] = get_args(AgeGroup)
_AGE_GROUP_UPPER = (3, 10, 20, 30, 40, 50, 60, 70)

# Where the gaze ray lands inside the cabin.
GazeZone = Literal[
    "windshield",
    "instrument_cluster",
    "infotainment",
    "rearview_mirror",
    "left_mirror",
    "right_mirror",
    "left_window",
    "right_window",
    "lap",
]
GAZE_ZONES: tuple[str, ...] = get_args(GazeZone)

CameraPosition = Literal["rearview_mirror", "a_pillar", "instrument_cluster"]
CAMERA_POSITIONS: tuple[str, ...] = get_args(CameraPosition)

Seat = Literal["driver", "passenger"]
SEATS: tuple[str, ...] = get_args(Seat)

Gender = Literal["female", "male"]
GENDERS: tuple[str, ...] = get_args(Gender)

Glasses = Literal["none", "glasses", "sunglasses"]
GLASSES: tuple[str, ...] = get_args(Glasses)

Lighting = Literal["rgb", "nir"]
LIGHTINGS: tuple[str, ...] = get_args(Lighting)

Split = Literal["train", "val", "test"]
SPLITS: tuple[str, ...] = get_args(Split)

Source = Literal["synthetic", "real"]

# Monk Skin Tone scale: 1 (lightest) .. 10 (darkest).
SKIN_TONE_MIN, SKIN_TONE_MAX = 1, 10
AGE_MIN, AGE_MAX = 0.0, 90.0


def age_group(years: float) -> str:
    """Map an age in years to its FairFace group."""
    for upper, name in zip(_AGE_GROUP_UPPER, AGE_GROUPS):
        if years < upper:
            return name
    return AGE_GROUPS[-1]


def age_group_range(group: str) -> tuple[float, float]:
    """Years covered by a FairFace group, as [low, high); the open group ends at AGE_MAX."""
    i = AGE_GROUPS.index(group)
    low = 0.0 if i == 0 else float(_AGE_GROUP_UPPER[i - 1])
    high = AGE_MAX if i == len(AGE_GROUPS) - 1 else float(_AGE_GROUP_UPPER[i])
    return low, high

# The categorical attributes that shift analysis and the gaps file bin by, with their classes.
CATEGORIES: dict[str, tuple[str, ...]] = {
    "age_group": AGE_GROUPS,
    "expression": EXPRESSIONS,
    "gaze_zone": GAZE_ZONES,
    "gender": GENDERS,
}
