"""Checks on feature matrices before any metric: the reasons a metric is not computable."""

from __future__ import annotations

import numpy as np


class NotComputable(ValueError):
    """Raised by the pure metric functions; the runner turns it into a MetricValue with the reason."""


def check_features(real: np.ndarray, synth: np.ndarray, min_samples: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Return both sets as 2-D float64 arrays, or raise NotComputable saying what is wrong."""
    out = []
    for name, x in (("real", real), ("synthetic", synth)):
        x = np.asarray(x)
        if x.ndim != 2:
            raise NotComputable(f"{name} features must be a 2-D array (samples x dims), got shape {x.shape}")
        if x.shape[0] < min_samples:
            raise NotComputable(f"{name} set has {x.shape[0]} samples; at least {min_samples} needed")
        if not np.issubdtype(x.dtype, np.number):
            raise NotComputable(f"{name} features are not numeric ({x.dtype})")
        x = np.asarray(x, np.float64)
        bad = ~np.isfinite(x).all(axis=1)
        if bad.any():
            raise NotComputable(
                f"{name} features hold NaN/inf in {int(bad.sum())} of {x.shape[0]} rows "
                f"(first at row {int(np.argmax(bad))}); drop or re-extract those rows"
            )
        out.append(x)
    if out[0].shape[1] != out[1].shape[1]:
        raise NotComputable(
            f"feature dimensions differ: real {out[0].shape[1]}, synthetic {out[1].shape[1]} "
            "(both sides must use the same feature extractor)"
        )
    return out[0], out[1]
