"""The `train` stage's door for the CLI, DVC and the flows (``synthgen.stages.run_train``)."""

from __future__ import annotations

from synthgen.train.runner import TrainResult, load_model, run_train

__all__ = ["TrainResult", "load_model", "run_train"]
