"""The multi-task network: one timm backbone, one small head per task, and the adaptation modes.

The network normalises its own input (uint8 RGB in, the backbone's mean/std inside), so a saved
model carries its preprocessing with it, as torchvision's weight enums do.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from synthgen.errors import ConfigError, ModelUnavailableError
from synthgen.train.config import TrainParams
from synthgen.train.tasks import TASK_SPECS

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
    def __init__(self, backbone: nn.Module, tasks: list[str], hidden: int, dropout: float,
                 mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.backbone = backbone
        self.tasks = list(tasks)
        nf = int(backbone.num_features)
        self.heads = nn.ModuleDict({t: _head(nf, TASK_SPECS[t].out_dim, hidden, dropout) for t in tasks})
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1) * 255.0, persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1) * 255.0, persistent=False)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        x = (images.float() - self.mean) / self.std
        feats = self.backbone(x)
        return {t: head(feats) for t, head in self.heads.items()}


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
        repo = (model.pretrained_cfg or {}).get("hf_hub_id")
        if not repo:
            raise ModelUnavailableError(
                f"timm has no published weights for {name!r}", where="train.backbone",
                fix="set train.weights to a local file or train.pretrained: false",
            )
        if _offline() and not _hub_cached(repo):
            raise ModelUnavailableError(
                f"pretrained weights for {name!r} ({repo}) are not cached and the hub is offline",
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


def build_model(cfg: TrainParams) -> MultiTaskNet:
    """Backbone + heads with the adaptation mode applied (which parameters train)."""
    backbone = create_backbone(cfg)
    pcfg = getattr(backbone, "pretrained_cfg", None) or {}
    mean = tuple(pcfg.get("mean", (0.485, 0.456, 0.406)))
    std = tuple(pcfg.get("std", (0.229, 0.224, 0.225)))
    net = MultiTaskNet(backbone, cfg.tasks, cfg.head_hidden, cfg.dropout, mean, std)
    apply_adaptation(net, cfg)
    return net


def lora_targets(cfg: TrainParams) -> list[str] | str:
    if cfg.lora.target_modules:
        return cfg.lora.target_modules
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
        from timm.models import group_parameters

        bb.requires_grad_(False)
        groups = group_parameters(bb, bb.group_matcher(coarse=False))
        ids = sorted(groups)[-cfg.partial_blocks :]
        names = {n for i in ids for n in groups[i]}
        for n, p in bb.named_parameters():
            if n in names:
                p.requires_grad_(True)
    elif mode == "lora":
        from peft import LoraConfig, inject_adapter_in_model

        bb.requires_grad_(False)
        lcfg = LoraConfig(r=cfg.lora.rank, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
                          target_modules=lora_targets(cfg))
        try:
            inject_adapter_in_model(lcfg, bb)
        except ValueError as err:
            raise ConfigError(f"LoRA could not be attached ({err})", where="train.lora.target_modules",
                              fix="name modules that exist in the backbone") from None
        for n, p in bb.named_parameters():
            p.requires_grad_("lora_" in n)
        if cfg.lora.train_norms:
            for m in bb.modules():
                if isinstance(m, _NORMS):
                    for p in m.parameters(recurse=False):
                        p.requires_grad_(True)
    net.heads.requires_grad_(True)


def count_parameters(net: nn.Module) -> tuple[int, int]:
    """(trainable, total)."""
    total = sum(p.numel() for p in net.parameters())
    trainable = sum(p.numel() for p in net.parameters() if p.requires_grad)
    return trainable, total
