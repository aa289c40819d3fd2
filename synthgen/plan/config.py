"""The ``plan:`` section: how many specs, and the distribution of every scene attribute."""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any, Literal, Protocol, cast

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from synthgen.plan.distributions import Categorical, Constant, Distribution, TruncNormal, Uniform
from synthgen.sections import RunParams
from synthgen.spec import SceneSpec, field_bounds
from synthgen.vocab import GAZE_ZONES, SPLITS, GazeZone, LightBand, Occluder

# Identity-level attributes are drawn once per identity (a person keeps age, gender and skin tone
# across their images); the others are drawn per image.
IDENTITY_ATTRIBUTES = ("age", "gender", "skin_tone")


def allowed(name: str) -> tuple[float, float] | list[Any]:
    """Allowed values of a SceneSpec attribute, read from the SceneSpec field itself (one source of truth)."""
    field = SceneSpec.model_fields[name]
    ann = field.annotation
    if typing.get_origin(ann) is Literal:
        return list(typing.get_args(ann))
    if ann is bool:
        return [False, True]
    return field_bounds(name)


class PlanAttributes(BaseModel):
    """One distribution per SceneSpec attribute. Defaults give a broad in-cabin mix."""

    model_config = ConfigDict(extra="forbid")

    age: Distribution = TruncNormal(mean=38, std=16, low=1, high=85)
    gender: Distribution = Categorical(values=["female", "male"])
    skin_tone: Distribution = Uniform(low=1, high=10)
    expression: Distribution = Categorical(
        values=["neutral", "happiness", "sadness", "surprise", "fear", "disgust", "anger"],
        weights=[3, 2, 1, 1, 1, 1, 1],
    )
    expression_intensity: Distribution = Uniform(low=0.6, high=1.0)
    gaze_yaw: Distribution = TruncNormal(mean=0, std=20, low=-50, high=50)
    gaze_pitch: Distribution = TruncNormal(mean=-5, std=12, low=-35, high=25)
    head_yaw: Distribution = TruncNormal(mean=0, std=15, low=-40, high=40)
    head_pitch: Distribution = TruncNormal(mean=0, std=8, low=-20, high=20)
    head_roll: Distribution = TruncNormal(mean=0, std=5, low=-15, high=15)
    eye_openness: Distribution = Categorical(values=[1.0, 0.6, 0.0], weights=[8, 1, 1])
    glasses: Distribution = Categorical(values=["none", "glasses", "sunglasses"], weights=[6, 3, 1])
    lighting: Distribution = Categorical(values=["rgb", "nir"], weights=[1, 1])
    light_intensity: Distribution = Uniform(low=0.7, high=1.3)
    light_azimuth: Distribution = Uniform(low=-60, high=60)
    light_elevation: Distribution = Uniform(low=0, high=45)
    camera: Distribution = Categorical(values=["rearview_mirror", "a_pillar", "instrument_cluster"])
    seat: Distribution = Categorical(values=["driver", "passenger"], weights=[3, 1])

    @field_validator("*")
    @classmethod
    def _within_allowed(cls, dist: Any, info: Any) -> Any:
        return check_allowed(info.field_name, dist)


def check_allowed(name: str, dist: Any) -> Any:
    """Reject a distribution that can give values the SceneSpec field ``name`` does not take."""
    ok = allowed(name)
    sup = dist.support()
    if isinstance(ok, list):
        if isinstance(sup, tuple):
            raise ValueError(f"takes one of {ok}; use dist: categorical or constant")
        bad = [v for v in sup if v not in ok]
        if bad:
            raise ValueError(f"unknown value(s) {bad}; allowed: {ok}")
    else:
        if isinstance(sup, list):
            bad = [v for v in sup if not isinstance(v, (int, float)) or isinstance(v, bool)
                   or not ok[0] <= v <= ok[1]]
        else:
            bad = [v for v in sup if not ok[0] <= v <= ok[1]]
        if bad:
            raise ValueError(
                f"{dist.dist} gives {bad} outside the allowed range [{ok[0]:g}, {ok[1]:g}]"
            )
    return dist


class ConditionAttributes(BaseModel):
    """Driver-monitoring conditions (docs/conditions.md), drawn per image from their own random
    stream. The defaults are constants at the SceneSpec defaults: plans made before these existed
    keep every spec and sample id."""

    model_config = ConfigDict(extra="forbid")

    occluder: Distribution = Constant(value="none")
    eye_state: Distribution = Constant(value="open")
    light_band: Distribution = Constant(value="cabin")
    motion_blur: Distribution = Constant(value=0.0)
    jpeg_quality: Distribution = Constant(value=0)
    seat_belt: Distribution = Constant(value=False)
    facial_hair: Distribution = Constant(value="identity")
    body_lean: Distribution = Constant(value=0.0)
    # A rolling readout and the motion it catches (synthgen.generate.procedural.rolling); clips set
    # them from the behaviour model (plan.sequence.readout_ms). Last: earlier conditions keep their draws.
    readout_ms: Distribution = Constant(value=0.0)
    head_yaw_rate: Distribution = Constant(value=0.0)
    head_pitch_rate: Distribution = Constant(value=0.0)
    head_roll_rate: Distribution = Constant(value=0.0)
    gaze_yaw_rate: Distribution = Constant(value=0.0)
    gaze_pitch_rate: Distribution = Constant(value=0.0)
    eye_openness_rate: Distribution = Constant(value=0.0)
    # Where a body lean carries the head (synthgen.cabin.lean_direction). Last: it draws after the others.
    lean_to: Distribution = Constant(value="centre")

    @field_validator("*")
    @classmethod
    def _within_allowed(cls, dist: Any, info: Any) -> Any:
        return check_allowed(info.field_name, dist)


class SequenceParams(BaseModel):
    """``plan.kind: sequence``: ``plan.n`` clips of ``frames`` frames at ``fps``, driven by the
    behaviour model of synthgen.plan.sequence."""

    model_config = ConfigDict(extra="forbid")

    frames: int = Field(100, ge=2, le=100_000, description="frames per clip")
    fps: float = Field(10.0, gt=0, le=240)
    kss: Distribution = Categorical(values=[2, 4, 6, 8, 9], weights=[3, 3, 2, 1, 1])
    glance_rate_per_min: float = Field(8.0, ge=0, le=60, description="glances away from the road per minute")
    phone_probability: float = Field(0.15, ge=0, le=1, description="share of clips with a phone episode")
    lean_share: float = Field(0.0, ge=0, le=1, description="share of glances away reached by a body lean, towards "
                              "the cabin centre, the door or forward as the target needs (cabin.lean_to_reach; "
                              "0 keeps the clips planned before leans existed)")
    readout_ms: float = Field(0.0, ge=0, le=100, description="rolling-shutter readout of the clip's camera (ms "
                              "from the first row to the last; 0 = global shutter, the clips planned before it existed). "
                              "Above 0 every frame also carries its head, gaze and lid rates")

    @field_validator("kss")
    @classmethod
    def _kss(cls, dist: Any) -> Any:
        return check_allowed("kss", dist)


class CoverageParams(BaseModel):
    """``plan.mode: coverage``: every cell of the Euro NCAP matrix (synthgen.ncap) over these values
    gets ``min_count`` specs; ``plan.n`` is then ignored."""

    model_config = ConfigDict(extra="forbid")

    min_count: int = Field(1, ge=1, le=10_000)
    # (pydantic copies list defaults per instance)
    glance_targets: list[GazeZone] = [cast(GazeZone, z) for z in GAZE_ZONES]
    movements: list[Literal["road", "owl", "lizard", "lean"]] = ["owl", "lizard"]
    occluders: list[Occluder] = ["none"]
    light_bands: list[LightBand] = ["cabin"]
    age_bands: list[Literal["<16", "16-29", "30-49", "50-64", "65-80", ">80"]] = ["16-29", "30-49", "50-64", "65-80"]
    skin_types: list[int] = [1, 2, 3, 4, 5, 6]

    @field_validator("skin_types")
    @classmethod
    def _fitz(cls, v: list[int]) -> list[int]:
        bad = [x for x in v if x not in (1, 2, 3, 4, 5, 6)]
        if bad:
            raise ValueError(f"Fitzpatrick skin types are 1..6, got {bad}")
        return v


class PlanParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n: int = Field(300, ge=1, le=10_000_000, description="number of scene specs (images)")
    identities: int = Field(60, ge=1, description="distinct synthetic people")
    shard_size: int = Field(100, ge=1, le=100_000, description="specs per shard (one task each)")
    splits: dict[Literal["train", "val", "test"], float] = {"train": 0.8, "val": 0.1, "test": 0.1}
    mode: Literal["random", "targeted", "coverage"] = "random"
    gaps: Path | None = Field(None, description="gaps.json from `analyze`, used by mode: targeted")
    max_eye_in_head_yaw: float = Field(35.0, gt=0, le=60)
    max_eye_in_head_pitch: float = Field(25.0, gt=0, le=45)
    attributes: PlanAttributes = PlanAttributes()
    conditions: ConditionAttributes = ConditionAttributes()
    kind: Literal["images", "sequence"] = "images"
    sequence: SequenceParams = SequenceParams()
    coverage: CoverageParams = CoverageParams()

    @field_validator("splits")
    @classmethod
    def _splits(cls, v: dict[str, float]) -> dict[str, float]:
        if any(f < 0 for f in v.values()) or sum(v.values()) <= 0:
            raise ValueError("fractions must be >= 0 with a positive sum")
        return {k: v[k] for k in SPLITS if k in v}

    @model_validator(mode="after")
    def _targeted_needs_gaps(self) -> "PlanParams":
        if self.mode == "targeted" and self.gaps is None:
            raise ValueError("mode 'targeted' needs plan.gaps (the gaps.json written by `analyze`)")
        if self.kind == "sequence" and self.mode != "random":
            raise ValueError("kind 'sequence' plans clips with mode 'random' only")
        return self


__all__ = ["PlanParams", "PlanAttributes", "IDENTITY_ATTRIBUTES", "allowed", "Constant"]


class PlanRun(RunParams, Protocol):
    """What the plan stage reads: its own section."""

    @property
    def plan(self) -> PlanParams: ...
