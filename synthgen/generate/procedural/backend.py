"""The ``procedural`` generator: synthgen's embedded CPU renderer, registered by name."""

from __future__ import annotations

from collections.abc import Sequence

from synthgen.generate.base import GENERATORS, GeneratedSample
from synthgen.generate.config import GenerateParams
from synthgen.generate.procedural.config import ProceduralParams
from synthgen.generate.procedural.renderer import render_spec
from synthgen.spec import SceneSpec

# Bump whenever the pixels or labels for the same spec change (rows record it as generator_version).
VERSION = "0.8.7"


class ProceduralGenerator:
    """Renders SceneSpecs with exact labels and a face-mesh control map; deterministic per spec."""

    name = "procedural"
    version = VERSION
    max_processes: int | None = None  # pure CPU: one process per core

    def __init__(self, width: int = 256, height: int = 256, params: ProceduralParams | None = None) -> None:
        self.width, self.height = width, height
        self.params = params or ProceduralParams()

    def render(self, spec: SceneSpec) -> GeneratedSample:
        out = render_spec(spec, self.width, self.height, self.params.supersample, self.params.face_fraction,
                          self.params.shading)
        return GeneratedSample(spec.sample_id, out.image, out.control, out.labels)

    def generate(self, specs: Sequence[SceneSpec]) -> list[GeneratedSample]:
        return [self.render(s) for s in specs]


@GENERATORS.register("procedural")
def create(cfg: GenerateParams) -> ProceduralGenerator:
    return ProceduralGenerator(cfg.width, cfg.height, cfg.section("procedural"))
