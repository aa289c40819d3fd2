"""The base of params.yaml: the section model every stage's config derives from, the sections no
stage owns (dataset, publish, record), and ``RunParams``, the protocol a stage sees.

Base layer. The assembled ``synthgen.config.Params`` sits above the stages (it imports every
stage's section); a stage never imports it back. Each stage declares the sections it reads as a
protocol extending ``RunParams`` in its own ``config`` module, and the type checker proves at the
door (``synthgen.stages``) that ``Params`` provides them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, Self

from pydantic import BaseModel, ConfigDict, Field


class Section(BaseModel):
    """A params.yaml section: unknown keys are errors, not silently ignored typos."""

    model_config = ConfigDict(extra="forbid")


class DatasetParams(Section):
    name: str = Field("incabin-faces", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    version: str = Field(
        "auto",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        description="'auto' = a hash of the params that shape the data (same params, same version)",
    )


class PublishParams(Section):
    row_group_size: int = Field(100, ge=1, le=100_000)
    compression: str = "zstd"
    compression_level: int = Field(3, ge=1, le=22)


class RecordParams(Section):
    """How a finished flow run records the dataset version (DVC always; git optional)."""

    dvc_commit: bool = True
    git_commit: bool = False
    git_tag: bool = False


class RunParams(Protocol):
    """What every stage may read of the assembled params: the seed, where data lives, which dataset,
    how shards are written, and the sections that shape the data (for versions and fingerprints)."""

    @property
    def seed(self) -> int: ...
    @property
    def data_dir(self) -> Path: ...
    @property
    def dataset(self) -> DatasetParams: ...
    @property
    def publish(self) -> PublishParams: ...
    @property
    def record(self) -> RecordParams: ...

    def shaping_sections(self) -> dict[str, Any]: ...

    def code_versions(self) -> dict[str, Any]:
        """The code versions of the generator backend and the labellers these params choose (part
        of the dataset version, beside the params)."""
        ...

    def model_dump(self, *, mode: str = "python", exclude: Any = None) -> dict[str, Any]: ...

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self: ...
