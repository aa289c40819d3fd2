"""SceneSpec: everything a generator needs to render one image, and the source of every ``req_*`` column;
and the plan file (``plan.parquet``) that carries specs from ``plan`` to ``generate``.

Base layer: the planner writes specs, generators and analysis read them, and the row contract derives
its ``req_*`` columns from them, so no stage owns the type."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field

from synthgen.errors import DataError
from synthgen.io import atomic_path
from synthgen.vocab import (
    AGE_MAX,
    AGE_MIN,
    SKIN_TONE_MAX,
    SKIN_TONE_MIN,
    CameraPosition,
    Expression,
    EyeState,
    FacialHair,
    Gender,
    Glasses,
    LeanTo,
    LightBand,
    Lighting,
    Occluder,
    Seat,
    Split,
    age_group,
)

# Spec fields published without the ``req_`` prefix: they place a row in its clip.
SEQUENCE_FIELDS = ("sequence_id", "frame_index", "t_ms", "sequence_events")
# Condition fields and their defaults (a spec at the defaults renders as before they existed).
CONDITION_DEFAULTS: dict[str, Any] = {
    "occluder": "none", "eye_state": "open", "light_band": "cabin", "motion_blur": 0.0,
    "jpeg_quality": 0, "seat_belt": False, "kss": 0, "facial_hair": "identity", "body_lean": 0.0, "lean_to": "centre",
    "readout_ms": 0.0, "head_yaw_rate": 0.0, "head_pitch_rate": 0.0, "head_roll_rate": 0.0,
    "gaze_yaw_rate": 0.0, "gaze_pitch_rate": 0.0, "eye_openness_rate": 0.0,
}

# The fields that move during a rolling readout and the rate field of each (per second).
MOTION_RATES: dict[str, str] = {
    "head_yaw": "head_yaw_rate", "head_pitch": "head_pitch_rate", "head_roll": "head_roll_rate",
    "gaze_yaw": "gaze_yaw_rate", "gaze_pitch": "gaze_pitch_rate", "eye_openness": "eye_openness_rate",
}


class SceneSpec(BaseModel):
    """One requested image. Angles in degrees. Gaze and head pose are in the camera frame:
    yaw 0 / pitch 0 looks straight into the camera, positive yaw turns towards the image's left
    (the subject's right), positive pitch looks up."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sample_id: str
    index: int = Field(ge=0)
    seed: int = Field(ge=0, description="per-sample seed for every random choice a backend makes")
    split: Split = "train"

    identity: int = Field(ge=0, description="identity number inside this plan")
    identity_seed: int = Field(ge=0, description="seed of the identity's face shape and look")
    age: float = Field(ge=AGE_MIN, le=AGE_MAX)
    gender: Gender
    skin_tone: int = Field(ge=SKIN_TONE_MIN, le=SKIN_TONE_MAX, description="Monk skin tone scale")

    expression: Expression = "neutral"
    expression_intensity: float = Field(1.0, ge=0, le=1)
    gaze_yaw: float = Field(0.0, ge=-90, le=90)
    gaze_pitch: float = Field(0.0, ge=-60, le=60)
    head_yaw: float = Field(0.0, ge=-90, le=90)
    head_pitch: float = Field(0.0, ge=-60, le=60)
    head_roll: float = Field(0.0, ge=-45, le=45)
    eye_openness: float = Field(1.0, ge=0, le=1, description="1 open, 0 closed")
    glasses: Glasses = "none"

    lighting: Lighting = "rgb"
    light_intensity: float = Field(1.0, ge=0.1, le=3.0)
    light_azimuth: float = Field(0.0, ge=-180, le=180, description="degrees, 0 = from the camera")
    light_elevation: float = Field(20.0, ge=-90, le=90)

    camera: CameraPosition = "rearview_mirror"
    seat: Seat = "driver"

    # --- driver-monitoring conditions (docs/conditions.md). The defaults render exactly what a spec
    # without them rendered, and the planner leaves defaults out of the sample id, so older plans
    # keep their images and ids.
    occluder: Occluder = "none"
    eye_state: EyeState = "open"
    light_band: LightBand = "cabin"
    motion_blur: float = Field(0.0, ge=0, le=20, description="blur length in output pixels")
    jpeg_quality: int = Field(0, ge=0, le=100, description="0 = lossless PNG only; else JPEG round trip")
    seat_belt: bool = False
    facial_hair: FacialHair = "identity"
    kss: int = Field(0, ge=0, le=9, description="Karolinska sleepiness level of a clip; 0 = not set")
    body_lean: float = Field(0.0, ge=0, le=0.25, description="metres the head travels as the upper body leans "
                             "(towards ``lean_to``: synthgen.cabin.lean_direction); the crop follows the face")
    lean_to: LeanTo = Field("centre", description="where a body lean carries the head: centre (over the console), "
                            "door (a side mirror or window) or forward (the cluster, the lap)")
    readout_ms: float = Field(0.0, ge=0, le=100, description="rolling shutter: ms from the first row's exposure "
                              "to the last one's (the middle row is exposed at the spec's time); 0 = global shutter")
    # How the spec moves at its instant (clips fill them from the behaviour model); they change the
    # pixels only under a rolling readout (synthgen.generate.procedural.rolling).
    head_yaw_rate: float = Field(0.0, ge=-2000, le=2000, description="degrees per second")
    head_pitch_rate: float = Field(0.0, ge=-2000, le=2000, description="degrees per second")
    head_roll_rate: float = Field(0.0, ge=-2000, le=2000, description="degrees per second")
    gaze_yaw_rate: float = Field(0.0, ge=-2000, le=2000, description="degrees per second (a saccade peaks near 700)")
    gaze_pitch_rate: float = Field(0.0, ge=-2000, le=2000, description="degrees per second")
    eye_openness_rate: float = Field(0.0, ge=-50, le=50, description="openness per second (a blink closes at about 10)")

    # --- sequences: one spec per frame of a clip (empty sequence_id for single images).
    sequence_id: str = ""
    frame_index: int = Field(0, ge=0)
    t_ms: float = Field(0.0, ge=0)
    sequence_events: str = Field("", description="JSON of the clip's planned events (synthgen.dsm)")

    @property
    def age_group(self) -> str:
        return age_group(self.age)

    @property
    def eyes_open(self) -> bool:
        return self.eye_openness >= 0.5

    def req_columns(self) -> dict[str, Any]:
        """The ``req_*`` columns of the row contract (requested attributes, before any rendering),
        and the unprefixed sequence columns (``sequence_id``, ``frame_index``, ``t_ms``...)."""
        d = self.model_dump(exclude={"sample_id", "index", "seed", "split", *SEQUENCE_FIELDS})
        out = {f"req_{k}": v for k, v in d.items()}
        out.update({k: getattr(self, k) for k in SEQUENCE_FIELDS})
        out["req_age_group"] = self.age_group
        out["req_eyes_open"] = self.eyes_open
        return out


def field_bounds(name: str) -> tuple[float, float]:
    """(ge, le) of a numeric SceneSpec field, read from the field itself (the one place a range is
    written); unbounded sides are infinite."""
    lo, hi = float("-inf"), float("inf")
    for m in SceneSpec.model_fields[name].metadata:
        lo = float(getattr(m, "ge", lo) if getattr(m, "ge", None) is not None else lo)
        hi = float(getattr(m, "le", hi) if getattr(m, "le", None) is not None else hi)
    return lo, hi


# --- plan table I/O -----------------------------------------------------------------------------

def shard_of(index: int, shard_size: int) -> int:
    return index // shard_size


def n_shards(n: int, shard_size: int) -> int:
    return (n + shard_size - 1) // shard_size


# Plan-file columns that are not SceneSpec fields: the shard of each spec, and (top-up plans) the
# round that added it.
PLAN_META_COLUMNS = ("shard", "round")


def specs_to_table(specs: Sequence[SceneSpec], shard_size: int, rounds: Sequence[int] | None = None) -> pa.Table:
    rows = [s.model_dump(mode="json") | {"shard": shard_of(s.index, shard_size)} for s in specs]
    if rounds is not None:
        rows = [r | {"round": int(k)} for r, k in zip(rows, rounds, strict=True)]
    return pa.Table.from_pylist(rows)


def write_plan(specs: Sequence[SceneSpec], path: str | Path, shard_size: int,
               rounds: Sequence[int] | None = None, stage_hash: str | None = None) -> Path:
    """``rounds``: the top-up round of each spec (top-up plans only). ``stage_hash`` (the plan
    params' fingerprint) goes into the file's metadata, so a later stage can tell a plan made with
    other params from its own. Pages carry checksums."""
    table = specs_to_table(specs, shard_size, rounds)
    if stage_hash is not None:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                               b"synthgen.stage_hash": stage_hash.encode()})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd", write_page_checksum=True)
    return Path(path)


def read_plan(path: str | Path, shard: int | None = None) -> list[SceneSpec]:
    path = Path(path)
    if not path.exists():
        raise DataError("plan not found", where=str(path), fix="run `synthgen plan` first")
    filters = None if shard is None else [("shard", "=", shard)]
    table = pq.read_table(path, filters=filters, page_checksum_verification=True)
    cols = [c for c in table.column_names if c not in PLAN_META_COLUMNS]
    return [SceneSpec.model_validate(r) for r in table.select(cols).to_pylist()]


def plan_shards(path: str | Path) -> list[int]:
    table = pq.read_table(path, columns=["shard"], page_checksum_verification=True)
    return sorted(set(table.column("shard").to_pylist()))


def plan_rounds(path: str | Path) -> dict[int, int]:
    """Shard -> top-up round of a top-up plan (a round always starts a new shard)."""
    table = pq.read_table(path, columns=["shard", "round"])
    return dict(sorted(zip(table.column("shard").to_pylist(), table.column("round").to_pylist(), strict=True)))


def read_plan_rounds(path: str | Path) -> list[int]:
    """The round of every spec of a top-up plan, in file order."""
    return [int(r) for r in pq.read_table(path, columns=["round"]).column("round").to_pylist()]
