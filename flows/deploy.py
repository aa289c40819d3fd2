"""Deployments: the generate flow on a cron schedule, and (when available) the training flow
triggered by each publish. ``synthgen serve`` runs :func:`serve_all` from the project root."""

from __future__ import annotations

from typing import Any

from flows.runtime import apply_defaults

apply_defaults()


def generate_deployment(params_path: str, cron: str = "0 3 * * *") -> Any:
    from flows.generate_dataset import generate_dataset_flow

    return generate_dataset_flow.to_deployment(
        name="scheduled",
        cron=cron,
        parameters={"params_path": params_path},
        description="Regenerate, curate, publish and analyse the dataset from params.yaml.",
        tags=["synthgen"],
    )


def serve_all(params_path: str, cron: str = "0 3 * * *", with_training: bool = True) -> None:
    """Serve until interrupted (needs PREFECT_API_URL, e.g. a `prefect server start`)."""
    from prefect import serve

    deployments = [generate_deployment(params_path, cron)]
    if with_training:
        from flows.train_flow import train_deployment

        deployments.append(train_deployment())
    serve(*deployments)
