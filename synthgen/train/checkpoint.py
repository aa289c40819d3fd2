"""Checkpoints in safetensors, written atomically, and everything a resume needs.

safetensors holds tensors only, so the optimiser's state is flattened to ``optim.<param>.<key>``
tensors and its param groups go to the JSON metadata, together with epoch, step, the config hash
and the torch RNG state. A checkpoint is written to a temp file and renamed, so a killed run
leaves either the previous checkpoint or the new one, never half of one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from synthgen.errors import DataError
from synthgen.io import atomic_path

FORMAT = "synthgen-train/1"


class CheckpointError(DataError):
    """A checkpoint exists but cannot be used (corrupt, truncated, or from another model)."""


def save_safetensors_atomic(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str]) -> Path:
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return path


def _read(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from safetensors import safe_open

    fix = f"delete {path} (training then starts over) or set train.resume: false"
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"checkpoint is corrupt or truncated ({err})", where=str(path), fix=fix) from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"not a synthgen training checkpoint (format {meta.get('format')!r})",
                              where=str(path), fix=fix)
    return tensors, meta


@dataclass
class TrainState:
    epoch: int  # epochs completed
    step: int  # optimiser steps taken
    config_hash: str


def save_checkpoint(path: Path, model: torch.nn.Module, loss: torch.nn.Module,
                    optimizer: torch.optim.Optimizer, state: TrainState) -> Path:
    tensors: dict[str, torch.Tensor] = {}
    tensors.update({f"model.{k}": v for k, v in model.state_dict().items()})
    tensors.update({f"loss.{k}": v for k, v in loss.state_dict().items()})
    osd = optimizer.state_dict()
    scalars: dict[str, dict[str, Any]] = {}
    for pid, st in osd["state"].items():
        for key, val in st.items():
            if torch.is_tensor(val):
                tensors[f"optim.{pid}.{key}"] = val
            else:
                scalars.setdefault(str(pid), {})[key] = val
    tensors["rng.torch"] = torch.get_rng_state()
    meta = {
        "format": FORMAT,
        "epoch": str(state.epoch),
        "step": str(state.step),
        "config_hash": state.config_hash,
        "optim_groups": json.dumps(osd["param_groups"]),
        "optim_scalars": json.dumps(scalars),
    }
    return save_safetensors_atomic(tensors, path, meta)


def peek_checkpoint(path: Path) -> TrainState:
    """Read a checkpoint's bookkeeping (raises CheckpointError when unreadable)."""
    _, meta = _read(path)
    return TrainState(int(meta["epoch"]), int(meta["step"]), meta.get("config_hash", ""))


def load_checkpoint(path: Path, model: torch.nn.Module, loss: torch.nn.Module,
                    optimizer: torch.optim.Optimizer) -> TrainState:
    tensors, meta = _read(path)
    fix = f"delete {path} (training then starts over) or set train.resume: false"
    try:
        model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        loss.load_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("loss.")})
        state: dict[int, dict[str, Any]] = {}
        for k, v in tensors.items():
            if k.startswith("optim."):
                _, pid, key = k.split(".", 2)
                state.setdefault(int(pid), {})[key] = v
        for pid, extra in json.loads(meta["optim_scalars"]).items():
            state.setdefault(int(pid), {}).update(extra)
        optimizer.load_state_dict({"state": state, "param_groups": json.loads(meta["optim_groups"])})
        torch.set_rng_state(tensors["rng.torch"])
    except (KeyError, RuntimeError, ValueError) as err:
        raise CheckpointError(f"checkpoint does not match this model/config ({err})"[:600],
                              where=str(path), fix=fix) from None
    return TrainState(int(meta["epoch"]), int(meta["step"]), meta.get("config_hash", ""))


def save_model(path: Path, model: torch.nn.Module, metadata: dict[str, str]) -> Path:
    """The deliverable: model weights only, with the config that rebuilds the network."""
    return save_safetensors_atomic(dict(model.state_dict()), path, {"format": FORMAT + "-model", **metadata})
