"""The curate stage: accept or reject every labelled image, always with a reason code.

Names are loaded on first use (``synthgen.config`` imports ``synthgen.curate.config``)."""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "CurateParams": "synthgen.curate.config",
    "FILTERS": "synthgen.curate.base",
    "Filter": "synthgen.curate.base",
    "FilterResult": "synthgen.curate.base",
    "curate_table": "synthgen.curate.core",
    "reject_summary": "synthgen.curate.core",
    "controllability_report": "synthgen.curate.report",
    "write_controllability": "synthgen.curate.report",
    "run_curate": "synthgen.curate.stage",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'synthgen.curate' has no attribute {name!r}")
