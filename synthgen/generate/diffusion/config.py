"""The ``generate.diffusion:`` section.

Kept free of torch/diffusers imports: params.yaml is validated by every stage, and only the
generate stage with ``backend: diffusion`` should pay for loading the deep-learning stack.
"""

from __future__ import annotations

import string
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Mode = Literal["txt2img", "controlnet", "img2img", "controlnet_img2img"]
Family = Literal["auto", "sd", "sdxl"]
SchedulerName = Literal["default", "ddim", "pndm", "dpm++", "dpm++_karras", "euler", "euler_a", "unipc"]
DType = Literal["auto", "float32", "float16", "bfloat16"]

# Placeholders a prompt template may use; filled by synthgen.generate.diffusion.prompts.
PROMPT_FIELDS: tuple[str, ...] = (
    "look",
    "age",
    "age_words",
    "age_group",
    "person",
    "gender",
    "skin",
    "expression",
    "eyes",
    "gaze",
    "glasses",
    "facial_hair",
    "seat",
    "camera",
    "scene",
)

# CLIP text encoders read 77 tokens: the attributes come first so that a long prompt loses the
# scene words, never the face.
DEFAULT_PROMPT = "{age_words} {person}, {skin} skin, {expression}, {eyes}, {gaze}, {glasses}, {facial_hair}, {look}, {camera}"
DEFAULT_NEGATIVE = (
    "cartoon, drawing, 3d render, deformed, disfigured, extra eyes, cross-eyed, blurry, lowres, watermark, text"
)
DEFAULT_RGB_LOOK = "RAW photo, in-cabin camera, natural light"
DEFAULT_NIR_LOOK = "near-infrared grayscale photo, IR illumination, in-cabin camera"


def _template_fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


class DiffusionParams(BaseModel):
    """Which weights, how to condition them on the procedural render, and how to run them.

    Defaults target SD 1.5 with the MediaPipe face-mesh ControlNet (the control map the
    procedural backend draws); weights must be present locally unless ``allow_download``."""

    model_config = ConfigDict(extra="forbid")

    # --- weights ---------------------------------------------------------------------------
    model: str = Field(
        "stable-diffusion-v1-5/stable-diffusion-v1-5",
        description="hub id or local folder of a diffusers SD 1.5/2.1 or SDXL pipeline",
    )
    family: Family = Field("auto", description="sd (1.x/2.x) or sdxl; auto reads the model's model_index.json")
    controlnet: str | None = Field(
        "CrucibleAI/ControlNetMediaPipeFace",
        description="hub id or local folder of a ControlNetModel (modes controlnet, controlnet_img2img)",
    )
    controlnet_subfolder: str | None = Field(
        "diffusion_sd15", description="folder inside the ControlNet repo holding config.json + weights"
    )
    vae: str | None = Field(None, description="optional AutoencoderKL replacing the pipeline's own")
    variant: str | None = Field(None, description="weight file variant, e.g. fp16")
    revision: str | None = Field(None, description="hub revision (branch, tag or commit) of every hub id")
    cache_dir: str | None = Field(None, description="Hugging Face cache folder; None = HF_HUB_CACHE")
    allow_download: bool = Field(
        False, description="fetch missing hub weights; when false only local folders and the HF cache are used"
    )

    # --- sampling --------------------------------------------------------------------------
    mode: Mode = "controlnet"
    scheduler: SchedulerName = "unipc"
    steps: int = Field(25, ge=1, le=500)
    guidance_scale: float = Field(6.0, ge=0.0, le=30.0, description="<= 1 disables classifier-free guidance")
    controlnet_scale: float = Field(1.0, ge=0.0, le=3.0)
    strength: float = Field(
        0.6, description="img2img: how much of the procedural render is re-noised, in (0, 1]"
    )

    # --- prompts ---------------------------------------------------------------------------
    prompt: str = Field(DEFAULT_PROMPT, description=f"str.format template; fields: {', '.join(PROMPT_FIELDS)}")
    negative_prompt: str = Field(DEFAULT_NEGATIVE, description="same placeholders as prompt")
    rgb_look: str = Field(DEFAULT_RGB_LOOK, description="{look} for RGB specs")
    nir_look: str = Field(DEFAULT_NIR_LOOK, description="{look} for NIR specs (the output is also made grey)")
    nir_negative: str = Field("color, colorful, saturated", description="appended to the negative prompt for NIR")

    # --- runtime ---------------------------------------------------------------------------
    batch_size: int = Field(4, ge=1, le=256)
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:\d+)?|mps)$",
                        description="auto = this process's GPU (LOCAL_RANK under accelerate launch), else cpu")
    dtype: DType = Field("auto", description="auto = bfloat16 (or float16) on CUDA, float32 elsewhere")
    generator_device: Literal["cpu", "device"] = Field(
        "cpu", description="where per-sample noise is drawn; cpu gives the same start noise on any machine"
    )
    attention: str = Field(
        "sdpa",
        pattern=r"^[a-z0-9_]+$",
        description="sdpa (torch scaled_dot_product_attention), eager, xformers, or a diffusers "
        "attention-dispatch backend name (models whose processors support it)",
    )
    channels_last: bool = False
    compile: bool = Field(False, description="torch.compile the UNet (and ControlNet); pays off on long runs")
    compile_mode: str = Field("max-autotune-no-cudagraphs", description="torch.compile mode")

    @field_validator("strength")
    @classmethod
    def _strength_in_range(cls, v: float) -> float:
        if not 0.0 < v <= 1.0:
            raise ValueError("must be in (0, 1]: 1 ignores the procedural render, small values keep it")
        return v

    @field_validator("prompt", "negative_prompt")
    @classmethod
    def _known_placeholders(cls, v: str) -> str:
        try:
            names = _template_fields(v)
        except ValueError as err:
            raise ValueError(f"not a valid str.format template ({err}); write literal braces as {{{{ }}}}") from None
        unknown = sorted(n for n in names if n not in PROMPT_FIELDS)
        if unknown or "" in names:
            raise ValueError(f"unknown placeholder(s) {unknown or ['{}']}; allowed: {', '.join(PROMPT_FIELDS)}")
        return v

    @model_validator(mode="after")
    def _mode_needs(self) -> "DiffusionParams":
        if self.mode in ("controlnet", "controlnet_img2img") and not self.controlnet:
            raise ValueError(f"mode {self.mode!r} needs generate.diffusion.controlnet (hub id or folder)")
        if self.mode in ("img2img", "controlnet_img2img") and int(self.steps * self.strength) < 1:
            raise ValueError(
                f"steps x strength = {self.steps} x {self.strength} runs no denoising step; "
                "raise steps or strength"
            )
        return self

    @property
    def uses_controlnet(self) -> bool:
        return self.mode in ("controlnet", "controlnet_img2img")

    @property
    def uses_init_image(self) -> bool:
        return self.mode in ("img2img", "controlnet_img2img")
