"""The shared vocabulary. Every stage, column and report uses these exact spellings.

Order matters: probability vectors (e.g. ``meas_expression_probs``) follow the tuple order.
"""

from __future__ import annotations

from collections.abc import Sequence
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
    "glovebox",
    "passenger_footwell",
    "front_occupant",
]
GAZE_ZONES: tuple[str, ...] = get_args(GazeZone)

CameraPosition = Literal["rearview_mirror", "a_pillar", "instrument_cluster"]
CAMERA_POSITIONS: tuple[str, ...] = get_args(CameraPosition)

Seat = Literal["driver", "passenger"]
SEATS: tuple[str, ...] = get_args(Seat)

# Where a body lean carries the head (synthgen.cabin.lean_direction): over the console towards the
# cabin centre, towards the door (a side mirror or window), or forward and down (cluster, lap).
LeanTo = Literal["centre", "door", "forward"]
LEAN_TARGETS: tuple[str, ...] = get_args(LeanTo)

Gender = Literal["female", "male"]
GENDERS: tuple[str, ...] = get_args(Gender)

# sunglasses: dark in visible light, > 70% transmittance in NIR; ir_blocking: < 15% in NIR (opaque
# to a driver-monitoring camera), the case a system must report as "cannot see the eyes".
Glasses = Literal["none", "glasses", "sunglasses", "ir_blocking"]
GLASSES: tuple[str, ...] = get_args(Glasses)

# Facial hair (Euro NCAP: monitoring must hold with it). "identity": the identity's own look decides
# (stubble on most adult men), as before the field existed; the others are drawn as requested on
# anyone 16 or older (children get none). The row's req_facial_hair says what was drawn.
FacialHair = Literal["identity", "none", "stubble", "moustache", "beard"]
FACIAL_HAIR: tuple[str, ...] = get_args(FacialHair)
FACIAL_HAIR_MIN_AGE = 16.0


def facial_hair_for_age(requested: str, age: float) -> str:
    """The request, or ``none`` when it asks for facial hair on someone under 16 (every backend
    applies this rule, so the label matches what was drawn or prompted)."""
    if requested in ("identity", "none") or age >= FACIAL_HAIR_MIN_AGE:
        return requested
    return "none"

Lighting = Literal["rgb", "nir"]
LIGHTINGS: tuple[str, ...] = get_args(Lighting)

# --- driver-monitoring conditions (docs/conditions.md) ---------------------------------------------
# What covers part of the face: worn items, the hands and objects held to the face.
Occluder = Literal[
    "none", "face_mask", "cap", "hair_fringe", "hand_chin", "hand_mouth", "eye_rub",
    "phone_ear", "phone_hand", "cup", "bottle", "cigarette", "vape", "phone_ear_left",
]
OCCLUDERS: tuple[str, ...] = get_args(Occluder)

# Eye state on top of eye_openness: squint narrows the lids, yawn opens the jaw and narrows the eyes.
EyeState = Literal["open", "squint", "closed", "yawn"]
EYE_STATES: tuple[str, ...] = get_args(EyeState)
# How far each state opens the lids relative to eye_openness (the renderer poses lids with it).
EYE_STATE_OPENNESS: dict[str, float] = {"open": 1.0, "squint": 0.45, "closed": 0.0, "yawn": 0.6}

# Light bands, from night with the camera's active NIR illumination to hard sun with window-frame
# shadow stripes and glare on glasses. "cabin" is the plain in-cabin light used by default.
LightBand = Literal["cabin", "night_nir", "dusk", "overcast", "sun", "sun_stripes"]
LIGHT_BANDS: tuple[str, ...] = get_args(LightBand)
# Nominal illuminance at the face (lux) of each band: the Euro NCAP range is 1 .. 100,000 lux.
BAND_LUX: dict[str, float] = {"cabin": 300.0, "night_nir": 1.0, "dusk": 50.0, "overcast": 5000.0,
                              "sun": 50000.0, "sun_stripes": 100000.0}

Split = Literal["train", "val", "test"]
SPLITS: tuple[str, ...] = get_args(Split)

Source = Literal["synthetic", "real"]

# Monk Skin Tone scale: 1 (lightest) .. 10 (darkest).
SKIN_TONE_MIN, SKIN_TONE_MAX = 1, 10
AGE_MIN, AGE_MAX = 0.0, 90.0


def band_of(value: float, uppers: Sequence[float], names: Sequence[str]) -> str:
    """The band ``value`` falls in: bands end (exclusive) at ``uppers``, one fewer than ``names``,
    and the last band is open."""
    for upper, name in zip(uppers, names, strict=False):  # the last band is open
        if value < upper:
            return name
    return names[-1]


def band_range(name: str, uppers: Sequence[float], names: Sequence[str], top: float) -> tuple[float, float]:
    """[low, high) of a band of ``band_of``; the first starts at 0 and the open last one ends at ``top``."""
    i = list(names).index(name)
    low = 0.0 if i == 0 else float(uppers[i - 1])
    high = top if i == len(names) - 1 else float(uppers[i])
    return low, high


def age_group(years: float) -> str:
    """Map an age in years to its FairFace group."""
    return band_of(years, _AGE_GROUP_UPPER, AGE_GROUPS)


def age_group_range(group: str) -> tuple[float, float]:
    """Years covered by a FairFace group, as [low, high); the open group ends at AGE_MAX."""
    return band_range(group, _AGE_GROUP_UPPER, AGE_GROUPS, AGE_MAX)

# The categorical attributes that shift analysis and the gaps file bin by, with their classes.
CATEGORIES: dict[str, tuple[str, ...]] = {
    "age_group": AGE_GROUPS,
    "expression": EXPRESSIONS,
    "gaze_zone": GAZE_ZONES,
    "gender": GENDERS,
}
