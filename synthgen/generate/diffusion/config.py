"""The ``generate.diffusion:`` section."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class DiffusionParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
