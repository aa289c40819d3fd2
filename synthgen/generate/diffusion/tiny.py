"""Tiny random-weight SD / SDXL pipelines built from configs, the way diffusers tests itself.

They run the real pipeline code end to end on a CPU in well under a second per batch, so the
tests and ``benchmarks/bench_diffusion.py --cpu-tiny`` exercise the same loading and sampling
paths as full-size weights, without any download. Images from them are noise: use them for
plumbing, determinism and speed checks, never for quality.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import torch

TEXT_DIM = 32
SEED = 0


def _byte_symbols() -> list[str]:
    """The 256 printable stand-ins byte-level BPE uses for raw bytes (GPT-2 / CLIP mapping)."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars, extra = [], 0
    for b in range(256):
        if b in keep:
            chars.append(chr(b))
        else:
            chars.append(chr(256 + extra))
            extra += 1
    return chars


def tiny_tokenizer() -> Any:
    """A CLIP tokenizer with one token per byte (no merges): 514 tokens, no files needed."""
    from transformers import CLIPTokenizer

    symbols = _byte_symbols()
    vocab = {s: i for i, s in enumerate(symbols)}
    vocab.update({s + "</w>": 256 + i for i, s in enumerate(symbols)})
    vocab.update({"<|startoftext|>": 512, "<|endoftext|>": 513})
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)


def _text_config(projection: bool) -> Any:
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        bos_token_id=512, eos_token_id=513, pad_token_id=513, hidden_size=TEXT_DIM, intermediate_size=37,
        layer_norm_eps=1e-05, num_attention_heads=4, num_hidden_layers=2, vocab_size=1000,
        projection_dim=TEXT_DIM if projection else 512,
    )


def _vae() -> Any:
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        block_out_channels=(32, 64), in_channels=3, out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"), latent_channels=4, norm_num_groups=32,
    )


def _unet_kwargs(family: Literal["sd", "sdxl"]) -> dict[str, Any]:
    common: dict[str, Any] = dict(
        block_out_channels=(32, 64), layers_per_block=2, in_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), norm_num_groups=32,
    )
    if family == "sd":
        return common | dict(cross_attention_dim=TEXT_DIM, attention_head_dim=(2, 4))
    # SDXL: two text encoders concatenated (2 x 32) and the text_time added embedding
    # (6 time ids x 8 + the pooled projection of the second encoder).
    return common | dict(
        cross_attention_dim=2 * TEXT_DIM, attention_head_dim=(2, 4), use_linear_projection=True,
        addition_embed_type="text_time", addition_time_embed_dim=8, transformer_layers_per_block=(1, 2),
        projection_class_embeddings_input_dim=6 * 8 + TEXT_DIM,
    )


def _unzero(controlnet: Any) -> None:
    """A new ControlNet's output convolutions start at zero (so training starts from the base
    model); random values there make the control map change the output, as trained weights do."""
    zero_convs = [*controlnet.controlnet_down_blocks, controlnet.controlnet_mid_block,
                  controlnet.controlnet_cond_embedding.conv_out]
    with torch.no_grad():
        for conv in zero_convs:
            torch.nn.init.normal_(conv.weight, std=0.1)
            torch.nn.init.normal_(conv.bias, std=0.1)


def build_tiny(family: Literal["sd", "sdxl"] = "sd") -> tuple[dict[str, Any], Any]:
    """Components of a tiny pipeline of ``family`` and a matching ControlNetModel."""
    from diffusers import ControlNetModel, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(SEED)
    unet = UNet2DConditionModel(
        **_unet_kwargs(family), sample_size=32, out_channels=4, up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
    )
    torch.manual_seed(SEED)
    controlnet = ControlNetModel(**_unet_kwargs(family), conditioning_embedding_out_channels=(16, 32))
    _unzero(controlnet)
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              clip_sample=False, set_alpha_to_one=False, steps_offset=1)
    torch.manual_seed(SEED)
    vae = _vae()
    torch.manual_seed(SEED)
    components: dict[str, Any] = dict(unet=unet, scheduler=scheduler, vae=vae, tokenizer=tiny_tokenizer())
    if family == "sd":
        components.update(text_encoder=CLIPTextModel(_text_config(False)), safety_checker=None,
                          feature_extractor=None)
    else:
        components.update(
            text_encoder=CLIPTextModel(_text_config(False)),
            text_encoder_2=CLIPTextModelWithProjection(_text_config(True)),
            tokenizer_2=tiny_tokenizer(),
        )
    return components, controlnet


def save_tiny(root: str | Path, family: Literal["sd", "sdxl"] = "sd") -> tuple[Path, Path]:
    """Write a tiny pipeline and its ControlNet with save_pretrained; returns (pipeline, controlnet) folders."""
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    root = Path(root)
    components, controlnet = build_tiny(family)
    pipe: Any = (StableDiffusionPipeline(**components, requires_safety_checker=False) if family == "sd"
                 else StableDiffusionXLPipeline(**components))
    pipe.save_pretrained(root / f"tiny-{family}")
    controlnet.save_pretrained(root / f"tiny-{family}-controlnet")
    return root / f"tiny-{family}", root / f"tiny-{family}-controlnet"
