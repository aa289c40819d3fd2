"""The multi-task network: one backbone (timm, or CLIP's vision tower), one small head per task,
and the adaptation modes (which parameters train, which adapters are added).

The network normalises its own input (uint8 RGB in, the backbone's mean/std inside), so a saved
model carries its preprocessing with it, as torchvision's weight enums do.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from synthgen.errors import ConfigError, ModelUnavailableError
from synthgen.train import clip
from synthgen.train.adapters import PromptTokens, task_maps, token_sequence
from synthgen.train.config import TrainParams
from synthgen.train.tasks import TASK_SPECS

logger = logging.getLogger(__name__)

# LoRA targets per backbone family: attention and MLP projections of transformers, the 3x3
# convolutions of the last two stages of ResNets (where most task-specific features form).
_LORA_TARGETS: dict[str, list[str]] = {
    "vit": ["qkv", "proj", "fc1", "fc2"],
    "deit": ["qkv", "proj", "fc1", "fc2"],
    "eva": ["qkv", "proj", "fc1", "fc2"],
    "convnext": ["fc1", "fc2"],
}
_RESNET_LORA = r".*layer[34]\.\d+\.conv\d"
_NORMS = (nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm)


class MultiTaskNet(nn.Module):
    """Backbone -> (optional per-task low-rank feature map) -> one head per task.

    ``task_maps`` (MTLoRA) and ``prompts`` (prefix tuning) are the adapters that live outside
    the backbone; both are None for the other modes.
    """

    task_maps: nn.ModuleDict | None
    prompts: PromptTokens | None
    backbone: Any
    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, backbone: nn.Module, tasks: Sequence[str], hidden: int, dropout: float,
                 mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.backbone = backbone
        self.tasks = list(tasks)
        nf = int(_any(backbone).num_features)
        self.heads = nn.ModuleDict({t: _head(nf, TASK_SPECS[t].out_dim, hidden, dropout) for t in tasks})
        self.task_maps = None
        self.prompts = None
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1) * 255.0, persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1) * 255.0, persistent=False)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        x = (images.float() - self.mean) / self.std
        feats = self.backbone(x)
        if self.task_maps is not None:
            return {t: head(self.task_maps[t](feats)) for t, head in self.heads.items()}
        return {t: head(feats) for t, head in self.heads.items()}

    def adapter_parameters(self) -> list[nn.Parameter]:
        """Trainable parameters outside the backbone and the heads (prompts, task maps)."""
        mods = [m for m in (self.task_maps, self.prompts) if m is not None]
        return [p for m in mods for p in m.parameters() if p.requires_grad]


def _any(obj: object) -> Any:
    """timm/peft attributes that their type stubs do not declare (num_features, group_matcher, ...)."""
    return obj


def _head(nf: int, out: int, hidden: int, dropout: float) -> nn.Module:
    if hidden <= 0:
        return nn.Sequential(nn.Dropout(dropout), nn.Linear(nf, out))
    return nn.Sequential(nn.Dropout(dropout), nn.Linear(nf, hidden), nn.GELU(), nn.Linear(hidden, out))


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    obj = torch.load(str(path), map_location="cpu", weights_only=True)
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    return obj


def _hub_cached(repo_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    for fname in ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin"):
        hit = try_to_load_from_cache(repo_id, fname)
        if isinstance(hit, str):
            return True
    return False


def create_backbone(cfg: TrainParams) -> nn.Module:
    """timm backbone without its classifier; weights from a local file, the hub cache, or none.

    Offline, a missing weight fails here at once with ModelUnavailableError (timm would otherwise
    retry the hub for minutes).
    """
    import timm

    name = cfg.backbone
    if clip.is_clip(name):
        return clip.ClipVisionBackbone(clip.load_clip(name))
    if not timm.is_model(name):
        raise ConfigError(
            f"unknown backbone {name!r}",
            where="train.backbone",
            fix="choose a timm model, e.g. resnet18, resnet10t, vit_tiny_patch16_224 (timm.list_models())",
        )
    kwargs: dict[str, Any] = {"num_classes": 0}
    if any(name.startswith(p) for p in ("vit", "deit", "eva")):
        kwargs["img_size"] = cfg.image_size
    weights = cfg.weights
    if weights and weights.startswith("hf-hub:"):
        repo = weights.removeprefix("hf-hub:")
        if _offline() and not _hub_cached(repo):
            raise ModelUnavailableError(
                f"backbone weights {repo!r} are not in the local hub cache and the hub is offline",
                where="train.weights",
                fix="download them once online, or set train.weights to a local file, or train.pretrained: false",
            )
        return timm.create_model(f"hf-hub:{repo}", pretrained=True, **kwargs)
    if weights:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise ModelUnavailableError(
                "backbone weights file not found",
                where=str(path),
                fix="point train.weights to a .safetensors/.pth file, or set it to null for random init",
            )
        model = timm.create_model(name, pretrained=False, **kwargs)
        _load_backbone_weights(model, path)
        return model
    if cfg.pretrained:
        model = timm.create_model(name, pretrained=False, **kwargs)
        hub_id: str | None = (_any(model).pretrained_cfg or {}).get("hf_hub_id")
        if not hub_id:
            raise ModelUnavailableError(
                f"timm has no published weights for {name!r}", where="train.backbone",
                fix="set train.weights to a local file or train.pretrained: false",
            )
        if _offline() and not _hub_cached(hub_id):
            raise ModelUnavailableError(
                f"pretrained weights for {name!r} ({hub_id}) are not cached and the hub is offline",
                where="train.pretrained",
                fix="download them once online, set train.weights to a local file, or train.pretrained: false",
            )
        return timm.create_model(name, pretrained=True, **kwargs)
    return timm.create_model(name, pretrained=False, **kwargs)


def _load_backbone_weights(model: nn.Module, path: Path) -> None:
    try:
        state = _read_state_dict(path)
    except Exception as err:  # noqa: BLE001 - any reader failure means the same thing to the user
        raise ModelUnavailableError(f"cannot read backbone weights ({err})", where=str(path),
                                    fix="use a complete .safetensors or .pth state dict") from None
    classifier = (getattr(model, "pretrained_cfg", None) or {}).get("classifier", "fc")
    prefixes = tuple(c + "." for c in ([classifier] if isinstance(classifier, str) else classifier))
    state = {k.removeprefix("backbone."): v for k, v in state.items()}
    state = {k: v for k, v in state.items() if not k.startswith(prefixes)}
    fix = "use weights saved from the same timm architecture as train.backbone"
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as err:  # shape mismatches
        first = str(err).split("\n\t")[1:2] or [str(err)]
        raise ModelUnavailableError(f"backbone weights do not fit {type(model).__name__}: {first[0]}",
                                    where=str(path), fix=fix) from None
    if missing:
        raise ModelUnavailableError(
            f"backbone weights do not fit {type(model).__name__}: {len(missing)} missing tensors "
            f"(e.g. {missing[:3]}), {len(unexpected)} unexpected",
            where=str(path),
            fix=fix,
        )


def build_model(cfg: TrainParams) -> nn.Module:
    """Backbone + heads with the adaptation mode applied (which parameters train).

    ``zero_shot`` returns the CLIP prompt scorer instead: same inputs, same output layout.
    """
    if cfg.adaptation == "zero_shot":
        return clip.build_zero_shot(cfg.backbone, cfg.tasks)
    backbone = create_backbone(cfg)
    pcfg = getattr(backbone, "pretrained_cfg", None) or {}
    mean = tuple(pcfg.get("mean", (0.485, 0.456, 0.406)))
    std = tuple(pcfg.get("std", (0.229, 0.224, 0.225)))
    net = MultiTaskNet(backbone, cfg.tasks, cfg.head_hidden, cfg.dropout, mean, std)
    apply_adaptation(net, cfg)
    return net


def lora_targets(cfg: TrainParams, backbone: nn.Module | None = None) -> list[str] | str:
    if cfg.lora.target_modules:
        return cfg.lora.target_modules
    declared = getattr(backbone, "lora_targets", None)
    if declared:
        return list(declared)
    for prefix, targets in _LORA_TARGETS.items():
        if cfg.backbone.startswith(prefix):
            return targets
    if cfg.backbone.startswith(("resnet", "resnext", "seresnet")):
        return _RESNET_LORA
    raise ConfigError(
        f"no default LoRA target modules for backbone {cfg.backbone!r}",
        where="train.lora.target_modules",
        fix="list the Linear/Conv2d module names to adapt (print(model) shows them)",
    )


def apply_adaptation(net: MultiTaskNet, cfg: TrainParams) -> None:
    """Freeze/unfreeze or inject adapters. Heads always train."""
    bb = net.backbone
    mode = cfg.adaptation
    if mode == "full":
        bb.requires_grad_(True)
    elif mode == "linear":
        bb.requires_grad_(False)
    elif mode == "partial":
        _unfreeze_top_blocks(bb, cfg.partial_blocks)
    elif mode in ("lora", "dora", "mtlora"):
        _inject_lora(bb, cfg, use_dora=mode == "dora")
        if mode == "mtlora":
            net.task_maps = task_maps(net.tasks, int(bb.num_features), cfg.mtlora.task_rank, cfg.mtlora.task_alpha)
    elif mode == "prefix":
        _attach_prompts(net, cfg)
    net.heads.requires_grad_(True)


def _unfreeze_top_blocks(bb: nn.Module, blocks: int) -> None:
    from timm.models import group_parameters

    bb.requires_grad_(False)
    groups = group_parameters(bb, _any(bb).group_matcher(coarse=False))
    ids = sorted(groups)[-blocks:]
    names = {n for i in ids for n in groups[i]}
    for n, p in bb.named_parameters():
        if n in names:
            p.requires_grad_(True)


def _inject_lora(bb: nn.Module, cfg: TrainParams, use_dora: bool) -> None:
    """peft LoRA (or DoRA: a learned magnitude per output channel times the LoRA-updated direction,
    Liu et al. 2024) in the backbone's target modules; everything else in the backbone freezes."""
    from peft import LoraConfig, inject_adapter_in_model

    bb.requires_grad_(False)
    lcfg = LoraConfig(r=cfg.lora.rank, lora_alpha=_any(cfg.lora.alpha), lora_dropout=cfg.lora.dropout,
                      target_modules=lora_targets(cfg, bb), use_dora=use_dora)
    try:
        inject_adapter_in_model(lcfg, bb)
    except ValueError as err:
        raise ConfigError(f"LoRA could not be attached ({err})", where="train.lora.target_modules",
                          fix="name modules that exist in the backbone") from None
    for n, p in bb.named_parameters():
        p.requires_grad_("lora_" in n)  # lora_A / lora_B, and DoRA's lora_magnitude_vector
    if cfg.lora.train_norms:
        for m in bb.modules():
            if isinstance(m, _NORMS):
                for p in m.parameters(recurse=False):
                    p.requires_grad_(True)


def _attach_prompts(net: MultiTaskNet, cfg: TrainParams) -> None:
    seq = token_sequence(net.backbone)
    if seq is None:
        raise ConfigError(
            f"prefix tuning adds learned tokens to a transformer's token sequence; {cfg.backbone!r} "
            "is a convolutional network and has no tokens",
            where="train.adaptation",
            fix="use a ViT backbone (e.g. vit_tiny_patch16_224, clip:<folder>) for prefix, or "
            "lora / dora / mtlora / linear on this one",
        )
    net.backbone.requires_grad_(False)
    prompts = PromptTokens(cfg.prefix.tokens, seq, cfg.prefix.deep)
    prompts.attach(net.backbone, seq)
    net.prompts = prompts


def count_parameters(net: nn.Module) -> tuple[int, int]:
    """(trainable, total)."""
    total = sum(p.numel() for p in net.parameters())
    trainable = sum(p.numel() for p in net.parameters() if p.requires_grad)
    return trainable, total
