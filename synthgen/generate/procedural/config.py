"""The ``generate.procedural:`` section."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ProceduralParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    supersample: int = Field(2, ge=1, le=4, description="render at N x size, then downsample (anti-aliasing)")
