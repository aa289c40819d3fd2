"""The `train` stage's door for the CLI, DVC and the flows (``synthgen.stages.run_train``)."""

from __future__ import annotations

from synthgen.train.runner import OodSet, TrainResult, load_model, run_train

__all__ = ["OodSet", "TrainResult", "load_model", "run_train"]
