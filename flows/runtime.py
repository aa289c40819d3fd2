"""Prefect settings and a local API server shared by the flow and its worker processes.

Without ``PREFECT_API_URL`` Prefect starts a temporary server per process; shard tasks run in a
process pool, so each worker would start its own. Starting one here and exporting its URL makes
the workers report to the same server (and saves ~15 s per worker).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
    "PREFECT_LOGGING_TO_API_BATCH_INTERVAL": "0.3",
    "DVC_NO_ANALYTICS": "1",
    # synthgen's own loggers (stage summaries, rejects by reason) appear in the flow run's logs
    "PREFECT_LOGGING_EXTRA_LOGGERS": "synthgen",
    # ... and the same stage code logs outside any flow run too (the CLI's stage commands, a stage
    # called after a flow in one process): there the records go to stderr only, without a warning
    # per record that they could not be sent to the API.
    "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
}


def apply_defaults() -> None:
    for k, v in DEFAULTS.items():
        os.environ.setdefault(k, v)


def require_api(timeout: float = 5.0) -> str:
    """The configured Prefect API URL, checked to answer; a one-line SynthgenError otherwise.
    Serving needs a lasting server (deployments, schedules and triggers live there)."""
    apply_defaults()
    from synthgen.errors import SynthgenError

    url = os.environ.get("PREFECT_API_URL")
    if not url:
        from prefect.settings import PREFECT_API_URL

        url = PREFECT_API_URL.value()
    start = "start one with `prefect server start --host 127.0.0.1 &` and " \
            "`export PREFECT_API_URL=http://127.0.0.1:4200/api`"
    if not url:
        raise SynthgenError("PREFECT_API_URL is not set: serving needs a running Prefect server",
                            where="synthgen serve", fix=start)
    import httpx

    try:
        httpx.get(url.rstrip("/") + "/health", timeout=timeout).raise_for_status()
    except httpx.HTTPError as err:
        raise SynthgenError(f"no Prefect server answers at {url} ({type(err).__name__})",
                            where="synthgen serve", fix=start) from None
    return url


@contextlib.contextmanager
def prefect_api() -> Iterator[str]:
    """Yield the API URL in use: the configured one, or a local server started for the duration."""
    apply_defaults()
    from prefect.settings import PREFECT_API_URL

    configured = os.environ.get("PREFECT_API_URL") or PREFECT_API_URL.value()
    if configured:
        yield configured
        return
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()
    server.start(timeout=int(os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"]))
    os.environ["PREFECT_API_URL"] = server.api_url
    try:
        yield server.api_url
    finally:
        _flush_logs()
        os.environ.pop("PREFECT_API_URL", None)
        server.stop()


def _flush_logs() -> None:
    """Send buffered run logs and events while the temporary server still listens; otherwise
    their workers retry against a closed port for a minute or more before the process exits."""
    try:
        from prefect.events.worker import EventsWorker
        from prefect.logging.handlers import APILogWorker

        APILogWorker.drain_all(timeout=5)
        EventsWorker.drain_all(timeout=5)
    except Exception as err:  # noqa: BLE001 - logging must never fail the run
        import logging

        logging.getLogger(__name__).debug("could not flush Prefect logs: %s", err)
