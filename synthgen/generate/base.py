"""The ``Generator`` protocol and the generator registry.

A generator turns a batch of SceneSpecs into images plus the exact geometric labels it knows.
Backends register by name (``@GENERATORS.register("name")``) and are chosen by
``generate.backend`` in params.yaml; the stages never import a backend directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from synthgen.registry import Registry
from synthgen.spec import SceneSpec


@dataclass
class GeneratedSample:
    """One rendered image. ``image``: HxWx3 uint8 RGB, or HxW uint8 for NIR (stored as grey PNG).
    ``labels``: geometric ``req_*`` columns (see synthgen.contract); ``prompt`` for text-driven backends."""

    sample_id: str
    image: np.ndarray
    control: np.ndarray | None = None
    labels: dict[str, Any] = field(default_factory=dict)
    prompt: str | None = None


@runtime_checkable
class Generator(Protocol):
    """``max_processes`` is what the backend declares about parallelism on one machine: ``None``
    for a CPU backend (one process per core), ``1`` for a backend that owns a device (several
    devices run one process each under ``accelerate launch``). Stage code reads the declaration and
    never asks which backend it holds."""

    name: str
    version: str
    max_processes: int | None

    def generate(self, specs: Sequence[SceneSpec]) -> list[GeneratedSample]:
        """Render the specs in order; same specs (same seeds) give the same pixels on the same backend."""
        ...


# Factories take the ``generate:`` params section (GenerateParams). A backend is one line in each
# mapping: the module that registers it, and the class of its own ``generate.<name>:`` section.
GENERATORS: Registry[Generator] = Registry(
    "generator",
    lazy={
        "procedural": "synthgen.generate.procedural.backend",
        "diffusion": "synthgen.generate.diffusion.backend",
    },
    sections={
        "procedural": "synthgen.generate.procedural.config:ProceduralParams",
        "diffusion": "synthgen.generate.diffusion.config:DiffusionParams",
    },
    # Part of every generated shard's fingerprint and of the dataset version: a backend whose
    # output changes gets new shards and a new version, never a mix of old and new rows.
    versions={
        "procedural": "synthgen.generate.procedural.backend:VERSION",
        "diffusion": "synthgen.generate.diffusion.backend:CODE_VERSION",
    },
)
