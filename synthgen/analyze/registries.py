"""The analyze stage's registries: feature extractors and shift metrics, by name.

Declared here, apart from their implementations, so that params.yaml is checked against the
registered names at load time without importing torch, scipy or scikit-learn. Adding a metric or an
extractor is one line here plus its ``@register`` in the implementing module.
"""

from __future__ import annotations

from typing import Any

from synthgen.registry import Registry

EXTRACTORS: Registry[Any] = Registry(
    "feature extractor",
    lazy={name: "synthgen.analyze.features" for name in ("identity", "dinov2", "clip")},
)

# A metric is ``fn(real, synth, params, seed) -> list[MetricValue]``; ``METRIC_VALUES`` names the values it
# reports (prdc reports four), so that a metric that cannot be computed is reported as missing under
# each of them.
METRICS: Registry[list[Any]] = Registry(
    "shift metric",
    lazy={name: "synthgen.analyze.embedding" for name in ("fd", "kid", "prdc", "mmd", "domain_auc")},
)
METRIC_VALUES: dict[str, tuple[str, ...]] = {
    "fd": ("fd",),
    "kid": ("kid",),
    "prdc": ("precision", "recall", "density", "coverage"),
    "mmd": ("mmd",),
    "domain_auc": ("domain_auc",),
}


def metric_values(metrics: list[str] | tuple[str, ...]) -> list[str]:
    """The value names that these metrics report, in order."""
    return [v for m in metrics for v in METRIC_VALUES.get(m, (m,))]
