"""Masked multi-task loss with fixed or learned (homoscedastic uncertainty) task weights.

A target that is missing (NaN / -1) contributes nothing, and a task with no target in a batch
drops out of that step entirely, including its uncertainty term: otherwise its log-variance
would drift on batches that say nothing about it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from synthgen.train.tasks import CLS_NAMES, CLS_VOCAB, REG_SCALE, REG_SHIFT, TASK_SPECS


def split_output(task: str, out: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """A head's output -> (normalised regression [B, r], [logits per classification target])."""
    spec = TASK_SPECS[task]
    r = len(spec.reg)
    logits, start = [], r
    for c in spec.cls:
        k = len(CLS_VOCAB[CLS_NAMES[c]])
        logits.append(out[:, start : start + k])
        start += k
    return out[:, :r], logits


class MultiTaskLoss(nn.Module):
    fixed: torch.Tensor
    shift: torch.Tensor
    scale: torch.Tensor

    def __init__(self, tasks: Sequence[str], weighting: str, task_weights: dict[str, float]) -> None:
        super().__init__()
        self.tasks = list(tasks)
        self.weighting = weighting
        self.register_buffer(
            "fixed", torch.tensor([float(task_weights.get(t, 1.0)) for t in tasks]), persistent=False
        )
        self.register_buffer("shift", torch.from_numpy(REG_SHIFT.copy()), persistent=False)
        self.register_buffer("scale", torch.from_numpy(REG_SCALE.copy()), persistent=False)
        # s_t = log sigma_t^2, one per task; zeros = the fixed weights at the start.
        self.log_vars = nn.Parameter(torch.zeros(len(tasks)), requires_grad=weighting == "uncertainty")

    def task_loss(self, task: str, out: torch.Tensor, reg: torch.Tensor, cls: torch.Tensor) -> torch.Tensor | None:
        spec = TASK_SPECS[task]
        pred_reg, logits = split_output(task, out.float())
        parts: list[torch.Tensor] = []
        if spec.reg:
            idx = list(spec.reg)
            target = (reg[:, idx] - self.shift[idx]) / self.scale[idx]
            mask = torch.isfinite(target)
            if mask.any():
                parts.append(F.smooth_l1_loss(pred_reg[mask], target[mask]))
        for c, lg in zip(spec.cls, logits, strict=True):
            y = cls[:, c]
            if (y >= 0).any():
                parts.append(F.cross_entropy(lg, y, ignore_index=-1))
        return torch.stack(parts).sum() if parts else None

    def forward(
        self, outputs: dict[str, torch.Tensor], reg: torch.Tensor, cls: torch.Tensor
    ) -> tuple[torch.Tensor | None, dict[str, float]]:
        total: torch.Tensor | None = None
        logs: dict[str, float] = {}
        for i, t in enumerate(self.tasks):
            if t not in outputs:  # a model without this task (zero-shot has no gaze/head pose)
                continue
            lt = self.task_loss(t, outputs[t], reg, cls)
            if lt is None:
                continue
            logs[t] = float(lt.detach())
            if self.weighting == "uncertainty":
                term = self.fixed[i] * (0.5 * torch.exp(-self.log_vars[i]) * lt + 0.5 * self.log_vars[i])
            else:
                term = self.fixed[i] * lt
            total = term if total is None else total + term
        return total, logs

    def weights(self) -> dict[str, float]:
        """Effective weight of each task right now (what the model card reports)."""
        if self.weighting == "uncertainty":
            w = self.fixed * 0.5 * torch.exp(-self.log_vars.detach())
        else:
            w = self.fixed
        return {t: float(v) for t, v in zip(self.tasks, w, strict=True)}
