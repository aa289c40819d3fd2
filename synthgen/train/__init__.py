"""Downstream multi-task training (gaze, head pose, age, expression) on a published dataset version.

``run_train`` and friends are loaded on first use: importing this package (as ``synthgen.config``
does for ``TrainParams``) must not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from synthgen.train.runner import TrainResult, load_model, run_train

__all__ = ["TrainResult", "load_model", "run_train"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from synthgen.train import runner

        return getattr(runner, name)
    raise AttributeError(f"module 'synthgen.train' has no attribute {name!r}")
