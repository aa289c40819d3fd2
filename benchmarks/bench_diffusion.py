"""Throughput of the diffusion backend: plain diffusers defaults vs the backend's optimised settings.

GPU (the real question)::

    python benchmarks/bench_diffusion.py --device cuda

builds the full-size SD 1.5 UNet + face-mesh-sized ControlNet + VAE + CLIP ViT-L text encoder
from their public configs with random weights (no download; speed does not depend on weight
values), and measures images/s for ControlNet generation at 512x512, 20 steps, batch 1..16:

- ``plain``: diffusers as it comes: float32, default attention processor, no compile;
- ``optimised``: what the backend does with ``dtype: auto`` (bfloat16, or float16 without bf16),
  ``attention: sdpa``, ``channels_last: true``, ``compile: true``, per-sample generators.
  Classifier-free guidance runs batched (uncond + cond in one UNet call) in both: that is
  diffusers' own behaviour.

It prints the speed-up and the fraction of the GPU's peak dense bf16 FLOP/s reached, counting
UNet + ControlNet FLOPs of one denoising step with ``torch.utils.flop_counter.FlopCounterMode``.

CPU smoke version on the tiny test pipeline (same code paths, 64x64)::

    python benchmarks/bench_diffusion.py --cpu-tiny
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

# Public configs of runwayml/stable-diffusion-v1-5 (unet/, vae/, text_encoder/) and of the SD 1.5
# ControlNets (lllyasviel/sd-controlnet-*, CrucibleAI/ControlNetMediaPipeFace diffusion_sd15).
SD15_UNET: dict[str, Any] = {
    "act_fn": "silu", "attention_head_dim": 8, "block_out_channels": [320, 640, 1280, 1280],
    "center_input_sample": False, "cross_attention_dim": 768,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "downsample_padding": 1, "flip_sin_to_cos": True, "freq_shift": 0, "in_channels": 4, "layers_per_block": 2,
    "mid_block_scale_factor": 1, "norm_eps": 1e-05, "norm_num_groups": 32, "out_channels": 4, "sample_size": 64,
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
}
SD15_CONTROLNET: dict[str, Any] = {
    "act_fn": "silu", "attention_head_dim": 8, "block_out_channels": [320, 640, 1280, 1280],
    "class_embed_type": None, "conditioning_embedding_out_channels": [16, 32, 96, 256],
    "controlnet_conditioning_channel_order": "rgb", "cross_attention_dim": 768,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "downsample_padding": 1, "flip_sin_to_cos": True, "freq_shift": 0, "in_channels": 4, "layers_per_block": 2,
    "mid_block_scale_factor": 1, "norm_eps": 1e-05, "norm_num_groups": 32, "num_class_embeds": None,
    "only_cross_attention": False, "resnet_time_scale_shift": "default", "upcast_attention": False,
    "use_linear_projection": False,
}
SD15_VAE: dict[str, Any] = {
    "act_fn": "silu", "block_out_channels": [128, 256, 512, 512],
    "down_block_types": ["DownEncoderBlock2D"] * 4, "in_channels": 3, "latent_channels": 4,
    "layers_per_block": 2, "norm_num_groups": 32, "out_channels": 3, "sample_size": 512,
    "up_block_types": ["UpDecoderBlock2D"] * 4, "scaling_factor": 0.18215,
}
SD15_TEXT: dict[str, Any] = {  # openai/clip-vit-large-patch14 text tower
    "hidden_size": 768, "intermediate_size": 3072, "num_attention_heads": 12, "num_hidden_layers": 12,
    "max_position_embeddings": 77, "vocab_size": 49408, "hidden_act": "quick_gelu", "projection_dim": 768,
    "bos_token_id": 0, "eos_token_id": 2, "pad_token_id": 1,
}

# Dense (no sparsity) bf16 tensor-core peaks from the vendors' data sheets, in TFLOP/s.
PEAK_BF16_TFLOPS = {"H200": 989.0, "H100 PCIe": 756.0, "H100 NVL": 835.0, "H100": 989.0, "A100": 312.0,
                    "L40S": 362.0, "L4": 121.0, "A10": 125.0, "RTX 4090": 165.0}

PROMPT = "a 34-year-old woman, brown skin, smiling, eyes open, RAW photo, in-cabin camera"
NEGATIVE = "cartoon, drawing, blurry"


@dataclass
class Row:
    setting: str
    batch: int
    images_per_s: float
    seconds_per_batch: float
    tflops_per_s: float | None = None
    peak_fraction: float | None = None


def build_pipeline(tiny: bool) -> Any:
    """A StableDiffusionControlNetPipeline in float32 with random weights."""
    from diffusers import (
        AutoencoderKL,
        ControlNetModel,
        StableDiffusionControlNetPipeline,
        UNet2DConditionModel,
        UniPCMultistepScheduler,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    from synthgen.generate.diffusion.tiny import build_tiny, tiny_tokenizer

    scheduler = UniPCMultistepScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")
    if tiny:
        components, controlnet = build_tiny("sd")
        components["scheduler"] = scheduler
        return StableDiffusionControlNetPipeline(**components, controlnet=controlnet, requires_safety_checker=False)
    torch.manual_seed(0)
    return StableDiffusionControlNetPipeline(
        vae=AutoencoderKL.from_config(SD15_VAE), text_encoder=CLIPTextModel(CLIPTextConfig(**SD15_TEXT)),
        tokenizer=tiny_tokenizer(), unet=UNet2DConditionModel.from_config(SD15_UNET),
        controlnet=ControlNetModel.from_config(SD15_CONTROLNET), scheduler=scheduler,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )


def control_image(size: int) -> np.ndarray:
    """A face-mesh-like drawing: outlines and two pupils on black, as the procedural backend draws."""
    import cv2

    img = np.zeros((size, size, 3), np.uint8)
    c, r = size // 2, size // 4
    cv2.ellipse(img, (c, c), (r, int(r * 1.3)), 0, 0, 360, (10, 200, 10), max(1, size // 256))
    for dx, color in ((-r // 2, (10, 200, 250)), (r // 2, (250, 200, 10))):
        cv2.circle(img, (c + dx, c - r // 4), max(1, size // 128), color, -1)
    cv2.ellipse(img, (c, c + r // 2), (r // 3, r // 8), 0, 0, 360, (10, 180, 10), max(1, size // 256))
    return img


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def step_flops(pipe: Any, batch: int, size: int, device: torch.device, dtype: torch.dtype) -> int:
    """FLOPs of one denoising step (ControlNet + UNet) for ``batch`` images with batched CFG."""
    from torch.utils.flop_counter import FlopCounterMode

    latent = size // pipe.vae_scale_factor
    n = 2 * batch  # unconditional + conditional
    x = torch.randn(n, 4, latent, latent, device=device, dtype=dtype)
    text = torch.randn(n, 77, pipe.unet.config.cross_attention_dim, device=device, dtype=dtype)
    cond = torch.rand(n, 3, size, size, device=device, dtype=dtype)
    t = torch.tensor(500, device=device)
    unet = getattr(pipe.unet, "_orig_mod", pipe.unet)
    controlnet = getattr(pipe.controlnet, "_orig_mod", pipe.controlnet)
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        down, mid = controlnet(x, t, encoder_hidden_states=text, controlnet_cond=cond, return_dict=False)
        unet(x, t, encoder_hidden_states=text, down_block_additional_residuals=down,
             mid_block_additional_residual=mid)
    return int(counter.get_total_flops())


def peak_tflops(device: torch.device, override: float | None) -> float | None:
    if override:
        return override
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, value in PEAK_BF16_TFLOPS.items():  # most specific names first
        if key in name:
            return value
    return None


def time_call(fn: Any, device: torch.device, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        best = min(best, time.perf_counter() - start)
    return best


def run(args: argparse.Namespace) -> list[Row]:
    from synthgen.generate.diffusion.config import DiffusionParams
    from synthgen.generate.diffusion.pipeline import DiffusionRunner, optimise, resolve_dtype, set_scheduler

    device = torch.device(args.device)
    size = args.size
    ctrl = control_image(size)
    peak = peak_tflops(device, args.peak_tflops)
    rows: list[Row] = []
    flops_per_step_per_image: float | None = None

    # --- plain diffusers defaults ------------------------------------------------------------
    pipe = build_pipeline(args.cpu_tiny).to(device)
    pipe.set_progress_bar_config(disable=True)
    from PIL import Image

    pil = Image.fromarray(ctrl)
    flops_per_step_per_image = step_flops(pipe, 1, size, device, torch.float32) / 1
    print(f"ControlNet + UNet per denoising step and image (CFG, 2 passes): "
          f"{flops_per_step_per_image / 1e9:.1f} GFLOP")
    for b in args.batch_sizes:
        def plain(b: int = b) -> None:
            pipe(prompt=[PROMPT] * b, negative_prompt=[NEGATIVE] * b, image=[pil] * b, height=size, width=size,
                 num_inference_steps=args.steps, generator=torch.Generator(device).manual_seed(0),
                 output_type="np")
        plain()  # warm-up
        secs = time_call(plain, device, args.repeats)
        rows.append(_row("plain", b, secs, args.steps, flops_per_step_per_image, peak))
        print(_fmt(rows[-1]), flush=True)
    del pipe
    if device.type == "cuda":
        torch.cuda.empty_cache()

    # --- the backend's optimised settings -------------------------------------------------------
    params = DiffusionParams(
        model="unused/benchmark", mode="controlnet", steps=args.steps, scheduler="unipc", dtype="auto",
        attention="sdpa", channels_last=True, compile=args.compile, compile_mode=args.compile_mode,
        device=str(device),
    )
    dtype = resolve_dtype(params.dtype, device)
    pipe = build_pipeline(args.cpu_tiny).to(device)
    if dtype != torch.float32:
        pipe = pipe.to(dtype=dtype)
    set_scheduler(pipe, params.scheduler)
    pipe.set_progress_bar_config(disable=True)
    optimise(pipe, params)
    runner = DiffusionRunner(pipe, params, device, dtype)
    for b in args.batch_sizes:
        def fast(b: int = b) -> None:
            runner([PROMPT] * b, [NEGATIVE] * b, list(range(b)), size, size, control=[ctrl] * b)
        fast()  # warm-up (and compilation for this shape)
        if args.compile:
            fast()
        secs = time_call(fast, device, args.repeats)
        rows.append(_row(f"optimised ({str(dtype).removeprefix('torch.')})", b, secs, args.steps,
                         flops_per_step_per_image, peak))
        print(_fmt(rows[-1]), flush=True)
    return rows


def _row(setting: str, batch: int, secs: float, steps: int, flops: float | None, peak: float | None) -> Row:
    ips = batch / secs
    tflops = None if flops is None else ips * steps * flops / 1e12
    frac = None if tflops is None or peak is None else tflops / peak
    return Row(setting, batch, ips, secs, tflops, frac)


def _fmt(r: Row) -> str:
    extra = "" if r.tflops_per_s is None else f"  {r.tflops_per_s:8.3f} TFLOP/s"
    if r.peak_fraction is not None:
        extra += f"  {100 * r.peak_fraction:5.1f}% of peak bf16"
    speed = f"{r.images_per_s:8.3f} img/s  ({r.seconds_per_batch:.3f} s/batch)"
    return f"{r.setting:24s} batch {r.batch:3d}: {speed}{extra}"


def summary(rows: list[Row]) -> None:
    plain = {r.batch: r for r in rows if r.setting == "plain"}
    print("\nbatch  plain img/s  optimised img/s  speed-up")
    for r in rows:
        if r.setting != "plain" and r.batch in plain:
            print(f"{r.batch:5d}  {plain[r.batch].images_per_s:11.3f}  {r.images_per_s:15.3f}  "
                  f"{r.images_per_s / plain[r.batch].images_per_s:7.2f}x")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--cpu-tiny", action="store_true", help="tiny random pipeline on the CPU at 64x64")
    ap.add_argument("--batch-sizes", type=lambda s: [int(x) for x in s.split(",")], default=None)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--size", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--compile", choices=["auto", "on", "off"], default="auto",
                    help="torch.compile in the optimised setting; auto = on for CUDA, off for --cpu-tiny "
                    "(inductor on a shared 2-core CPU costs minutes)")
    ap.add_argument("--compile-mode", default="max-autotune-no-cudagraphs")
    ap.add_argument("--peak-tflops", type=float, default=None, help="override the GPU's dense bf16 peak")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (CPU)")
    ap.add_argument("--json", default=None, help="also write the rows here")
    args = ap.parse_args(argv)
    if args.cpu_tiny:
        args.device = "cpu"
        args.size = args.size or 64
        args.batch_sizes = args.batch_sizes or [1, 2, 4, 8]
    else:
        args.size = args.size or 512
        args.batch_sizes = args.batch_sizes or [1, 2, 4, 8, 16]
    args.compile = args.compile == "on" or (args.compile == "auto" and not args.cpu_tiny)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"device {args.device}" + (f" ({torch.cuda.get_device_name()})" if args.device.startswith("cuda") else "")
          + f", {args.size}x{args.size}, {args.steps} steps, torch {torch.__version__}")
    rows = run(args)
    summary(rows)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump([asdict(r) for r in rows], fh, indent=2)


if __name__ == "__main__":
    main()
