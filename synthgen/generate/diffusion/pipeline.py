"""Load a diffusers pipeline from checked local weights, place it, speed it up, and run batches.

One class of pipeline per (family, mode); the weights are the same folder for every mode, so
switching from txt2img to ControlNet or img2img changes only which components are attached.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from synthgen.errors import ConfigError, ModelUnavailableError
from synthgen.generate.diffusion.config import DiffusionParams
from synthgen.generate.diffusion.weights import ResolvedWeights

PIPELINES: dict[tuple[str, str], str] = {
    ("sd", "txt2img"): "StableDiffusionPipeline",
    ("sd", "controlnet"): "StableDiffusionControlNetPipeline",
    ("sd", "img2img"): "StableDiffusionImg2ImgPipeline",
    ("sd", "controlnet_img2img"): "StableDiffusionControlNetImg2ImgPipeline",
    ("sdxl", "txt2img"): "StableDiffusionXLPipeline",
    ("sdxl", "controlnet"): "StableDiffusionXLControlNetPipeline",
    ("sdxl", "img2img"): "StableDiffusionXLImg2ImgPipeline",
    ("sdxl", "controlnet_img2img"): "StableDiffusionXLControlNetImg2ImgPipeline",
}

# name -> (scheduler class, config overrides); built with from_config so the model's own
# betas / prediction type / timestep spacing carry over.
SCHEDULERS: dict[str, tuple[str, dict[str, Any]]] = {
    "ddim": ("DDIMScheduler", {}),
    "pndm": ("PNDMScheduler", {}),
    "dpm++": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++"}),
    "dpm++_karras": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "use_karras_sigmas": True}),
    "euler": ("EulerDiscreteScheduler", {}),
    "euler_a": ("EulerAncestralDiscreteScheduler", {}),
    "unipc": ("UniPCMultistepScheduler", {}),
}

# A byte-level BPE tokenizer holds at least the 256 byte symbols; fewer means its files were
# not found and transformers built a placeholder (seen offline with hub ids).
_MIN_TOKENS = 256


def resolve_device(name: str) -> torch.device:
    """``auto``: this process's GPU as accelerate assigns it (LOCAL_RANK under ``accelerate launch``)."""
    if name == "auto":
        if torch.cuda.is_available():
            from accelerate import PartialState

            return PartialState().device
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} asked for but CUDA is not available here",
                          where="generate.diffusion.device", fix="use device: auto or cpu")
    return device


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    if name == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    dtype = getattr(torch, name)
    if dtype is torch.float16 and device.type == "cpu":
        raise ConfigError("float16 on the CPU is slow and lacks kernels", where="generate.diffusion.dtype",
                          fix="use dtype: auto (float32 on CPU) or bfloat16")
    return dtype


def _load_error(what: str, err: Exception) -> ModelUnavailableError:
    return ModelUnavailableError(
        f"loading {what} failed: {err}", where="generate.diffusion",
        fix="check that the folder is complete (and has the requested variant), or re-save it with save_pretrained",
    )


def load_pipeline(params: DiffusionParams, weights: ResolvedWeights, dtype: torch.dtype) -> Any:
    """The diffusers pipeline for (family, mode), loaded from local folders only."""
    import diffusers

    cls = getattr(diffusers, PIPELINES[(weights.family, params.mode)])
    common = dict(dtype=dtype, local_files_only=True, variant=params.variant)
    extra: dict[str, Any] = {}
    try:
        if weights.controlnet is not None:
            extra["controlnet"] = diffusers.ControlNetModel.from_pretrained(weights.controlnet.path, **common)
        if weights.vae is not None:
            extra["vae"] = diffusers.AutoencoderKL.from_pretrained(weights.vae.path, **common)
    except (OSError, ValueError) as err:
        raise _load_error("ControlNet/VAE", err) from None
    if weights.family == "sd":
        # Face crops trip the NSFW classifier at random and it would blank rows; curation filters instead.
        extra.update(safety_checker=None, requires_safety_checker=False)
    try:
        pipe = cls.from_pretrained(weights.pipeline.path, **common, **extra)
    except (OSError, ValueError) as err:
        raise _load_error(f"{cls.__name__} from {weights.pipeline.path}", err) from None
    check_tokenizers(pipe, weights.pipeline.name)
    return pipe


def check_tokenizers(pipe: Any, model: str) -> None:
    for tok_name, enc_name in (("tokenizer", "text_encoder"), ("tokenizer_2", "text_encoder_2")):
        tok, enc = getattr(pipe, tok_name, None), getattr(pipe, enc_name, None)
        if tok is None or enc is None:
            continue
        n, vocab = len(tok), enc.config.vocab_size
        if not _MIN_TOKENS <= n <= vocab:
            raise ModelUnavailableError(
                f"{tok_name} of {model} has {n} tokens but its text encoder expects up to {vocab}: "
                "its vocabulary files were not found or do not belong to this model",
                where="generate.diffusion.model",
                fix=f"make sure {tok_name}/ in the model folder holds tokenizer.json (or vocab.json + merges.txt)",
            )


def set_scheduler(pipe: Any, name: str) -> None:
    if name == "default":
        return
    import diffusers

    cls_name, overrides = SCHEDULERS[name]
    pipe.scheduler = getattr(diffusers, cls_name).from_config(pipe.scheduler.config, **overrides)


def denoisers(pipe: Any) -> list[torch.nn.Module]:
    mods = [pipe.unet]
    if getattr(pipe, "controlnet", None) is not None:
        mods.append(pipe.controlnet)
    return mods


def set_attention(pipe: Any, name: str) -> None:
    """sdpa: torch's fused attention (diffusers' default with torch 2); eager: the plain matmul
    reference; xformers; otherwise a diffusers attention-dispatch backend, where supported."""
    from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

    mods: list[Any] = denoisers(pipe)
    if name in ("sdpa", "eager"):
        for m in mods:
            m.set_attn_processor(AttnProcessor2_0() if name == "sdpa" else AttnProcessor())
        return
    if name == "xformers":
        try:
            pipe.enable_xformers_memory_efficient_attention()
        except (ImportError, ModuleNotFoundError, ValueError) as err:
            raise ConfigError(f"xformers attention unavailable: {err}", where="generate.diffusion.attention",
                              fix="pip install xformers matching your torch build, or use attention: sdpa") from None
        return
    try:
        for m in mods:
            m.set_attention_backend(name)
    except (ValueError, ImportError, RuntimeError) as err:
        raise ConfigError(f"attention backend {name!r}: {err}", where="generate.diffusion.attention",
                          fix="use sdpa, eager or xformers") from None
    dispatched = any(hasattr(p, "_attention_backend") for p in pipe.unet.attn_processors.values())
    if not dispatched:
        raise ConfigError(
            f"attention backend {name!r} has no effect: this UNet's attention processors do not use "
            "diffusers' attention dispatcher", where="generate.diffusion.attention",
            fix="use sdpa (the fused torch kernel, chosen by torch per GPU), eager or xformers",
        )


def optimise(pipe: Any, params: DiffusionParams) -> None:
    set_attention(pipe, params.attention)
    if params.channels_last:
        for m in [*denoisers(pipe), pipe.vae]:
            m.to(memory_format=torch.channels_last)
    if params.compile:
        pipe.unet = torch.compile(pipe.unet, mode=params.compile_mode)
        if getattr(pipe, "controlnet", None) is not None:
            pipe.controlnet = torch.compile(pipe.controlnet, mode=params.compile_mode)


@dataclass
class DiffusionRunner:
    """A placed, configured pipeline plus how to call it for one batch."""

    pipe: Any
    params: DiffusionParams
    device: torch.device
    dtype: torch.dtype

    @classmethod
    def build(cls, params: DiffusionParams, weights: ResolvedWeights) -> "DiffusionRunner":
        device = resolve_device(params.device)
        dtype = resolve_dtype(params.dtype, device)
        pipe = load_pipeline(params, weights, dtype)
        set_scheduler(pipe, params.scheduler)
        pipe.to(device)
        pipe.set_progress_bar_config(disable=True)
        optimise(pipe, params)
        return cls(pipe, params, device, dtype)

    def generators(self, seeds: Sequence[int]) -> list[torch.Generator]:
        """One generator per sample, so a sample's noise (start latents, VAE sampling, ancestral
        steps) depends on its own seed only, never on its batch neighbours."""
        dev = "cpu" if self.params.generator_device == "cpu" else self.device
        return [torch.Generator(dev).manual_seed(int(s)) for s in seeds]

    def __call__(
        self,
        prompts: Sequence[str],
        negatives: Sequence[str],
        seeds: Sequence[int],
        width: int,
        height: int,
        control: Sequence[np.ndarray] | None = None,
        init: Sequence[np.ndarray] | None = None,
    ) -> list[np.ndarray]:
        """HxWx3 uint8 RGB images, one per prompt, in order."""
        p = self.params
        kwargs: dict[str, Any] = dict(
            prompt=list(prompts), negative_prompt=list(negatives), num_inference_steps=p.steps,
            guidance_scale=p.guidance_scale, generator=self.generators(seeds), output_type="np",
        )
        if p.uses_controlnet:
            if control is None:
                raise ValueError(f"mode {p.mode} needs control images")
            key = "control_image" if p.uses_init_image else "image"
            kwargs[key] = [to_pil(c) for c in control]
            kwargs["controlnet_conditioning_scale"] = p.controlnet_scale
        if p.uses_init_image:
            if init is None:
                raise ValueError(f"mode {p.mode} needs init images")
            kwargs["image"] = [to_pil(i) for i in init]
            kwargs["strength"] = p.strength
        else:
            kwargs.update(width=width, height=height)
        with torch.inference_mode():
            out = self.pipe(**kwargs).images
        return [np.asarray((img * 255).round().clip(0, 255), dtype=np.uint8) for img in out]


def to_pil(image: np.ndarray) -> Any:
    """uint8 grey or RGB array -> RGB PIL image (pipelines expect 3 channels)."""
    from PIL import Image

    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    return Image.fromarray(np.ascontiguousarray(image[:, :, :3]), "RGB")


def to_grey(image: np.ndarray) -> np.ndarray:
    """RGB -> single-channel grey (ITU-R BT.601 luma), the way a NIR camera's frames are stored."""
    import cv2

    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


