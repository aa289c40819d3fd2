"""The model card written beside the weights: what data, which config, how well, and the limits."""

from __future__ import annotations

from typing import Any

import yaml


def _table(metrics: dict[str, float], prefix: str) -> list[str]:
    rows = [(k[len(prefix) + 1 :], v) for k, v in sorted(metrics.items()) if k.startswith(prefix + ".")]
    if not rows:
        return ["(not evaluated)", ""]
    out = ["| metric | value |", "|---|---|"]
    out += [f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in rows]
    return out + [""]


def render_card(*, dataset: str, version: str, data_path: str, config: dict[str, Any],
                metrics: dict[str, float], rows: dict[str, int], params_trainable: int,
                params_total: int, task_weights: dict[str, float], ood_note: str,
                epochs: int, steps: int, synthgen_version: str) -> str:
    lines = [
        f"# Multi-task face model: {dataset} {version}",
        "",
        "Gaze (yaw/pitch + in-cabin zone), head pose (yaw/pitch/roll), age (years + 9 FairFace groups) "
        "and expression (7 classes) from one shared backbone, trained on a synthgen dataset version.",
        "",
        "## Data",
        f"- dataset: `{dataset}`, version `{version}` (`{data_path}`)",
        "- accepted rows used: " + ", ".join(f"{k} {v}" for k, v in rows.items()),
        f"- out-of-distribution set: {ood_note}",
        "",
        "## Training",
        f"- backbone `{config['backbone']}`, adaptation `{config['adaptation']}`, "
        f"{params_trainable:,} of {params_total:,} parameters trained",
        f"- {epochs} epochs, {steps} optimiser steps, image size {config['image_size']} px",
        "- final task weights: " + ", ".join(f"{t} {w:.3g}" for t, w in task_weights.items()),
        f"- synthgen {synthgen_version}",
        "",
        "## In-distribution metrics (held-out synthetic identities)",
    ]
    for split in ("val", "test"):
        lines += [f"### {split}", *_table(metrics, split)]
    lines += ["## Out-of-distribution metrics (real faces)", *_table(metrics, "ood")]
    lines += [
        "Metrics are computed only on rows that carry the target; `n` counts them. Angular error is the "
        "angle between predicted and true gaze directions.",
        "",
        "## Limits",
        "- Trained on synthetic faces; the out-of-distribution numbers are the honest estimate of "
        "real-world accuracy, and small real sets give wide error bars.",
        "- Labels come from the `req_*` (requested) or `meas_*` (measured) columns as configured below; "
        "measured labels inherit the labellers' errors.",
        "",
        "## Config (`train:` section)",
        "```yaml",
        yaml.safe_dump(config, sort_keys=True).rstrip(),
        "```",
        "",
    ]
    return "\n".join(lines)
