"""Test-wide settings: everything offline, every tool's state in temp folders."""

from __future__ import annotations

import os
import tempfile

_STATE = tempfile.mkdtemp(prefix="synthgen-test-state-")
os.environ.update(
    {
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "PREFECT_HOME": os.path.join(_STATE, "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
        "DVC_NO_ANALYTICS": "1",
        "DVC_SITE_CACHE_DIR": os.path.join(_STATE, "dvc-site"),
        "MPLBACKEND": "Agg",
        "TQDM_DISABLE": "1",
    }
)
os.environ.pop("PREFECT_API_URL", None)
