"""The ``generate:`` section: which backend renders the specs, at what size."""

from __future__ import annotations

from typing import Any, Protocol, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from synthgen.sections import RunParams, Section


class GenerateParams(Section):
    """The ``generate:`` section. Besides the fields below it holds one sub-section per registered
    backend (``generate.procedural:``, ``generate.diffusion:``), validated by the class the backend
    declared in its registry line, so adding a backend needs no change here."""

    model_config = ConfigDict(extra="allow")

    backend: str = Field("procedural", description="a registered generator: procedural, diffusion")
    width: int = Field(256, ge=64, le=2048)
    height: int = Field(256, ge=64, le=2048)
    workers: int = Field(0, ge=0, le=256, description="processes for shard-parallel work; 0 = one per core")

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, v: str) -> str:
        # Checked when params load, before any stage touches its output folder.
        from synthgen.generate.base import GENERATORS

        if v not in GENERATORS.names():
            raise ValueError(f"unknown generator {v!r}; choose one of: {', '.join(GENERATORS.names())}")
        return v

    @model_validator(mode="after")
    def _backend_sections(self) -> Self:
        from synthgen.generate.base import GENERATORS

        extra = self.__pydantic_extra__ if self.__pydantic_extra__ is not None else {}
        unknown = sorted(set(extra) - set(GENERATORS.sections()))
        if unknown:
            raise ValueError(f"unknown key(s) {', '.join(unknown)}; backend sections: {', '.join(GENERATORS.sections())}")
        for name in GENERATORS.sections():
            cls = GENERATORS.section(name)
            assert cls is not None
            value = extra.get(name)
            extra[name] = value if isinstance(value, cls) else cls.model_validate(value or {})
        return self

    def section(self, name: str) -> Any:
        """The backend's own sub-section (an instance of the class it declared)."""
        extra = self.__pydantic_extra__ or {}
        if name not in extra:
            raise KeyError(f"generate.{name}: no such backend section")
        return extra[name]


class GenerateRun(RunParams, Protocol):
    """What the generate stage reads: its section, and the plan section for the shards' fingerprint."""

    @property
    def plan(self) -> BaseModel: ...

    @property
    def generate(self) -> GenerateParams: ...
