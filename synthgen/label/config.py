"""Parameters of the `label` stage (the `label:` section of params.yaml)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class LabelParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
