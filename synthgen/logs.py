"""Logging for the package: every module logs to ``logging.getLogger(__name__)`` under ``synthgen``.

The CLI calls :func:`configure` once (INFO to stderr, one line a record). Prefect flow runs pick the same records up because ``flows.runtime`` sets
``PREFECT_LOGGING_EXTRA_LOGGERS=synthgen``: stage summaries then appear in the run's logs in the UI.
"""

from __future__ import annotations

import logging
import sys

ROOT = "synthgen"


def configure(level: int = logging.INFO) -> None:
    """Attach one stderr handler to the ``synthgen`` logger (idempotent)."""
    logger = logging.getLogger(ROOT)
    logger.setLevel(level)
    if any(getattr(h, "_synthgen", False) for h in logger.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler._synthgen = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
