"""Parameters of the `analyze` stage (the `analyze:` section of params.yaml)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class AnalyzeParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
