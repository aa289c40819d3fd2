"""Parameters of the `curate` stage (the `curate:` section of params.yaml)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class CurateParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
