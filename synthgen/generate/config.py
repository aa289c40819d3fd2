"""The ``generate:`` section: which backend renders the specs, at what size."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from synthgen.generate.diffusion.config import DiffusionParams
from synthgen.generate.procedural.config import ProceduralParams


class GenerateParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    backend: str = Field("procedural", description="a registered generator: procedural, diffusion")
    width: int = Field(256, ge=64, le=2048)
    height: int = Field(256, ge=64, le=2048)
    workers: int = Field(0, ge=0, le=256, description="processes for shard-parallel work; 0 = one per core")
    procedural: ProceduralParams = ProceduralParams()
    diffusion: DiffusionParams = DiffusionParams()

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, v: str) -> str:
        # Checked when params load, before any stage touches its output folder.
        from synthgen.generate.base import GENERATORS

        if v not in GENERATORS.names():
            raise ValueError(f"unknown generator {v!r}; choose one of: {', '.join(GENERATORS.names())}")
        return v
