"""The label stage: independent face models measure what each image shows (``meas_*`` columns).

Names are loaded on first use: ``synthgen.config`` imports ``synthgen.label.config`` while the stage
modules import ``synthgen.config``, and importing a labeller should not load every model library.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "LABELERS": "synthgen.label.base",
    "FaceContext": "synthgen.label.base",
    "Labeler": "synthgen.label.base",
    "LabelParams": "synthgen.label.config",
    "build_labelers": "synthgen.label.pipeline",
    "label_rows": "synthgen.label.pipeline",
    "label_shard": "synthgen.label.stage",
    "run_label": "synthgen.label.stage",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'synthgen.label' has no attribute {name!r}")
