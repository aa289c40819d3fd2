"""Parameters of the `train` stage (the `train:` section of params.yaml)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class TrainParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
