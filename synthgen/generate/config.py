"""The ``generate:`` section: which backend renders the specs, at what size."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, Field, create_model, field_validator

from synthgen.sections import RunParams, Section


class _GenerateFields(Section):
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

    def code_version(self) -> str:
        """The chosen backend's code version (its registry line names the constant): what, besides
        these params, decides the pixels and labels of a generated row."""
        from synthgen.generate.base import GENERATORS

        return GENERATORS.code_version(self.backend)

    def section(self, name: str) -> Any:
        """A backend's own sub-section (an instance of the class it declared in its registry line)."""
        if name not in type(self).model_fields or name in _GenerateFields.model_fields:
            raise KeyError(f"generate.{name}: no such backend section")
        return getattr(self, name)


def _with_backend_sections() -> type[_GenerateFields]:
    """The ``generate:`` section with one field per registered backend section
    (``generate.procedural:``, ``generate.diffusion:``), typed by the class each backend declared in
    its registry line: errors point at ``generate.<backend>.<key>``, and adding a backend needs no
    change here."""
    from synthgen.generate.base import GENERATORS

    fields: dict[str, Any] = {}
    for name in GENERATORS.sections():
        cls = GENERATORS.section(name)
        assert cls is not None  # sections() lists only names that declared a class
        fields[name] = (cls, Field(default_factory=cls))
    model: type[_GenerateFields] = create_model("GenerateParams", __base__=_GenerateFields,
                                                __module__=__name__, **fields)
    model.__doc__ = _with_backend_sections.__doc__
    return model


if TYPE_CHECKING:
    GenerateParams = _GenerateFields
else:
    GenerateParams = _with_backend_sections()


class GenerateRun(RunParams, Protocol):
    """What the generate stage reads: its section, and the plan section for the shards' fingerprint."""

    @property
    def plan(self) -> BaseModel: ...

    @property
    def generate(self) -> GenerateParams: ...
