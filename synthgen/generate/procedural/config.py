"""The ``generate.procedural:`` section."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ProceduralParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    supersample: int = Field(2, ge=1, le=4, description="render at N x size, then downsample (anti-aliasing)")
    shading: Literal["pixel", "sample"] = Field(
        "pixel",
        description="pixel: skin, head and body shaded once per output pixel, coverage per supersample "
        "(multisample anti-aliasing); sample: shaded at every supersample (slower, sharper skin detail)",
    )
    face_fraction: float = Field(
        0.42, ge=0.1, le=0.9,
        description="adult face width as a fraction of the image width (the crop around the occupant)",
    )
