"""Parameter-efficient adapters that live beside a frozen backbone: prompt (prefix) tokens and
MTLoRA's task-specific low-rank feature maps.

Both are ordinary ``nn.Module`` children of the network, so their weights are saved and loaded
with the rest of the model; the hooks that splice prompt tokens into the backbone's token
sequence are re-attached whenever :func:`synthgen.train.model.build_model` rebuilds a network.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TokenSequence:
    """Where a transformer backbone's token sequence can be extended with prompt tokens.

    ``entry``: a module whose output is the token sequence fed to the first block ([B, N, D]);
    ``blocks``: the transformer blocks in order; ``keep``: leading tokens to keep in front of the
    prompts (the class token, register tokens); ``dim``: token width.
    """

    entry: nn.Module
    blocks: Sequence[nn.Module]
    keep: int
    dim: int


def token_sequence(backbone: nn.Module) -> TokenSequence | None:
    """The backbone's token sequence, or None for a network without one (a CNN).

    A backbone may declare it (``prefix_points()``, as the CLIP wrapper does); timm's
    VisionTransformer family is recognised by its ``patch_embed``/``blocks``/``norm_pre`` parts.
    """
    declared = getattr(backbone, "prefix_points", None)
    if callable(declared):
        return declared()
    bb: Any = backbone
    parts = ("patch_embed", "blocks", "norm_pre", "num_prefix_tokens", "embed_dim")
    if all(hasattr(bb, p) for p in parts) and isinstance(bb.blocks, nn.Sequential):
        return TokenSequence(bb.norm_pre, list(bb.blocks), int(bb.num_prefix_tokens), int(bb.embed_dim))
    return None


class PromptTokens(nn.Module):
    """Learned prompt tokens (visual prompt tuning, Jia et al. 2022; prefix tuning's idea for images).

    ``deep``: every block gets its own ``n`` tokens (the previous block's outputs at those
    positions are replaced), as in VPT-deep and prefix tuning; otherwise the same tokens enter once,
    before the first block (VPT-shallow). The backbone stays frozen; only these tokens and the
    heads train. Prompts sit right after the class/register tokens, so the class-token pooling is
    untouched and timm's average pooling skips them (``num_prefix_tokens`` grows by ``n``).
    """

    def __init__(self, n: int, seq: TokenSequence, deep: bool) -> None:
        super().__init__()
        self.n, self.keep, self.deep = n, seq.keep, deep
        depth = len(seq.blocks) if deep else 1
        self.tokens = nn.Parameter(torch.zeros(depth, n, seq.dim))
        nn.init.trunc_normal_(self.tokens, std=0.02)
        self._handles: list[Any] = []

    def attach(self, backbone: nn.Module, seq: TokenSequence) -> None:
        self._handles.append(seq.entry.register_forward_hook(self._insert))
        if self.deep:
            for i, block in enumerate(seq.blocks[1:], start=1):
                self._handles.append(block.register_forward_pre_hook(self._replacer(i), with_kwargs=True))
        bb: Any = backbone
        if hasattr(bb, "num_prefix_tokens"):
            bb.num_prefix_tokens = int(bb.num_prefix_tokens) + self.n

    def _insert(self, module: nn.Module, inputs: Any, x: torch.Tensor) -> torch.Tensor:
        p = self.tokens[0].to(x.dtype).expand(x.shape[0], -1, -1)
        return torch.cat([x[:, : self.keep], p, x[:, self.keep :]], dim=1)

    def _replacer(self, i: int) -> Any:
        def hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            x = args[0] if args else kwargs["hidden_states"]
            p = self.tokens[i].to(x.dtype).expand(x.shape[0], -1, -1)
            x = torch.cat([x[:, : self.keep], p, x[:, self.keep + self.n :]], dim=1)
            if args:
                return (x, *args[1:]), kwargs
            return args, {**kwargs, "hidden_states": x}

        return hook


class LowRankMap(nn.Module):
    """``f + B(A(f)) * alpha / r`` on pooled features: one task's low-rank feature map.

    ``B`` starts at zero, so every task starts from the shared features and departs from them
    only as far as its own loss asks.
    """

    def __init__(self, dim: int, rank: int, alpha: float) -> None:
        super().__init__()
        self.down = nn.Linear(dim, rank, bias=False)
        self.up = nn.Linear(rank, dim, bias=False)
        nn.init.kaiming_uniform_(self.down.weight, a=5**0.5)
        nn.init.zeros_(self.up.weight)
        self.scale = alpha / rank

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return feats + self.up(self.down(feats)) * self.scale


def task_maps(tasks: Sequence[str], dim: int, rank: int, alpha: float) -> nn.ModuleDict:
    """MTLoRA's task-specific side: one :class:`LowRankMap` per task, before that task's head."""
    return nn.ModuleDict({t: LowRankMap(dim, rank, alpha) for t in tasks})
