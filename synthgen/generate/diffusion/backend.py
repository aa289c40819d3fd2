"""The ``diffusion`` generator: Stable Diffusion / SDXL, steered by the procedural render.

For every spec the procedural backend first renders the exact geometry (image, face-mesh
control map, geometric labels). The diffusion model then paints a realistic face on it:
from the control map (ControlNet), from the render itself (img2img), or both; the text prompt
carries what geometry cannot (age, skin tone, expression, glasses, lighting). Rows keep the
procedural geometry labels, since those are what was asked for; the labellers measure how
closely the painted face follows them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from synthgen.errors import ConfigError
from synthgen.generate.base import GENERATORS, GeneratedSample, Generator
from synthgen.generate.config import GenerateParams
from synthgen.generate.diffusion.config import DiffusionParams
from synthgen.generate.diffusion.prompts import build_prompt, facial_hair_asked
from synthgen.generate.diffusion.weights import ResolvedWeights, resolve_weights
from synthgen.generate.procedural.backend import VERSION as PROCEDURAL_VERSION
from synthgen.io import stable_hash
from synthgen.spec import SceneSpec

BACKEND_VERSION = "1.0"
# The code version in the generator registry: this backend's and the procedural renderer's, whose
# control maps steer every image and whose exact labels every row carries.
CODE_VERSION = f"{BACKEND_VERSION}+procedural-{PROCEDURAL_VERSION}"
logger = logging.getLogger(__name__)


def check_size(cfg: GenerateParams) -> None:
    for key in ("width", "height"):
        value = getattr(cfg, key)
        if value % 8:
            raise ConfigError(f"{value} is not a multiple of 8 (the VAE works on 8x8 pixel blocks)",
                              where=f"generate.{key}", fix=f"use {value // 8 * 8} or {value // 8 * 8 + 8}")


def backend_version(params: DiffusionParams, weights: ResolvedWeights) -> str:
    """Backend version plus a digest of what decides the pixels (weights and sampling, and the
    procedural renderer's version: its control maps and labels), so rows made with different models
    or renderers never share a generator_version."""
    shaping = params.model_dump(
        include={"model", "controlnet", "controlnet_subfolder", "vae", "variant", "revision", "mode",
                 "scheduler", "steps", "guidance_scale", "controlnet_scale", "strength"}
    )
    return f"{BACKEND_VERSION}+{weights.family}.{stable_hash({**shaping, 'procedural': PROCEDURAL_VERSION}, n=8)}"


class DiffusionGenerator:
    """Renders specs in batches of ``batch_size``; each sample's noise comes from its own seed."""

    name = "diffusion"
    max_processes: int | None = 1  # one pipeline per device; more devices: `accelerate launch`

    def __init__(self, cfg: GenerateParams, renderer: Generator | None = None) -> None:
        self.cfg = cfg
        self.params: DiffusionParams = cfg.section("diffusion")
        check_size(cfg)
        # Resolve weights first: a missing model fails here in milliseconds, before torch loads.
        self.weights = resolve_weights(self.params)
        self.version = backend_version(self.params, self.weights)
        self.renderer = renderer if renderer is not None else GENERATORS.create("procedural", cfg)
        from synthgen.generate.diffusion.pipeline import DiffusionRunner

        self.runner = DiffusionRunner.build(self.params, self.weights)
        # Largest batch that fitted so far: an out-of-memory batch is split and this shrinks, so
        # later batches start at the size that worked. Same pixels at any size (per-sample seeds).
        self.max_batch = self.params.batch_size

    @property
    def gpu_slots(self) -> int:
        """GPUs a shard occupies: one on CUDA, none on CPU (schedulers size GPU limits from it)."""
        return 1 if self.runner.device.type == "cuda" else 0

    def generate(self, specs: Sequence[SceneSpec]) -> list[GeneratedSample]:
        size = self.params.batch_size
        chunks = [specs[i:i + size] for i in range(0, len(specs), size)]
        out: list[GeneratedSample] = []
        if not chunks:
            return out
        # The procedural render of the next batch (CPU) overlaps the diffusion of this one (GPU).
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="procedural") as pool:
            pending = pool.submit(self.renderer.generate, chunks[0])
            for i, chunk in enumerate(chunks):
                renders = pending.result()
                if i + 1 < len(chunks):
                    pending = pool.submit(self.renderer.generate, chunks[i + 1])
                out.extend(self._paint(chunk, renders))
        return out

    def _paint(self, specs: Sequence[SceneSpec], renders: Sequence[GeneratedSample]) -> list[GeneratedSample]:
        from synthgen.generate.diffusion.pipeline import to_grey

        prompts = [build_prompt(s, self.params) for s in specs]
        control: list[np.ndarray] | None = None
        if self.params.uses_controlnet:
            missing = [r.sample_id for r in renders if r.control is None]
            if missing:
                raise ConfigError(
                    f"the procedural backend drew no control map for {len(missing)} sample(s)",
                    where="generate.diffusion.mode", fix="use mode img2img or txt2img, or enable control maps",
                )
            control = [r.control for r in renders if r.control is not None]
        init = [r.image for r in renders] if self.params.uses_init_image else None
        images = self._diffuse(list(range(len(specs))), [p.positive for p in prompts],
                               [p.negative for p in prompts], [s.seed for s in specs], control, init)
        samples = []
        for spec, render, prompt, image in zip(specs, renders, prompts, images, strict=True):
            if spec.lighting == "nir":
                image = to_grey(image)
            # the prompt, not the procedural identity's look, decides the facial hair painted
            labels = {**render.labels, "req_facial_hair": facial_hair_asked(spec)}
            samples.append(GeneratedSample(spec.sample_id, image, control=render.control,
                                           labels=labels, prompt=prompt.positive))
        return samples


    def _diffuse(self, idx: list[int], pos: list[str], neg: list[str], seeds: list[int],
                 control: list[Any] | None, init: list[Any] | None) -> list[Any]:
        """Run the samples ``idx`` in batches of at most ``max_batch``; on CUDA out-of-memory,
        halve the batch and retry (a batch of one that still fails raises)."""
        from synthgen.generate.diffusion.pipeline import (
            is_out_of_memory,
            release_cached_memory,
        )

        if len(idx) > self.max_batch:
            step = self.max_batch  # fixed for this split: a part may lower max_batch further
            out: list[Any] = []
            for i in range(0, len(idx), step):
                out.extend(self._diffuse(idx[i:i + step], pos, neg, seeds, control, init))
            return out
        try:
            return self.runner(
                [pos[i] for i in idx], [neg[i] for i in idx], [seeds[i] for i in idx],
                width=self.cfg.width, height=self.cfg.height,
                control=None if control is None else [control[i] for i in idx],
                init=None if init is None else [init[i] for i in idx],
            )
        except Exception as err:
            if not is_out_of_memory(err) or len(idx) == 1:
                raise
            release_cached_memory()
            self.max_batch = max(1, len(idx) // 2)
            logger.warning("out of GPU memory on a batch of %d: retrying in batches of %d", len(idx),
                           self.max_batch)
            return self._diffuse(idx, pos, neg, seeds, control, init)


@GENERATORS.register("diffusion")
def create_diffusion(cfg: GenerateParams) -> DiffusionGenerator:
    return DiffusionGenerator(cfg)
