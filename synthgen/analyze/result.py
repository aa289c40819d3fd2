"""Result objects of the shift analysis: every number carries its meaning, or the reason it is missing.

A metric that cannot be computed (too few samples, attribute missing on one side, NaN features) is
kept as a ``MetricValue`` with ``value=None`` and a ``reason``, so reports and DVC metrics show the gap
instead of a silent number or a crash.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from synthgen.io import write_json_atomic


@dataclass(frozen=True)
class MetricValue:
    """One metric: its value (or None with the reason), what it means, and extra figures
    (p-value, std, confidence interval) that belong to it."""

    name: str
    value: float | None
    meaning: str = ""
    reason: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    scope: str = "overall"

    @property
    def computable(self) -> bool:
        return self.value is not None

    @classmethod
    def missing(cls, name: str, reason: str, meaning: str = "", scope: str = "overall") -> "MetricValue":
        return cls(name=name, value=None, meaning=meaning, reason=reason, scope=scope)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "MetricValue":
        return cls(**d)


def finite_or_none(x: float) -> float | None:
    """JSON has no NaN: a non-finite number becomes None (callers then give a reason)."""
    x = float(x)
    return x if math.isfinite(x) else None


@dataclass
class AnalysisResult:
    """Everything ``analyze`` found. Saves to JSON and loads back; the report and the DVC
    metrics file are both views of this object."""

    metrics: list[MetricValue] = field(default_factory=list)
    distributions: dict[str, Any] = field(default_factory=dict)
    coverage: dict[str, Any] = field(default_factory=dict)
    gaps: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)

    def get(self, name: str, scope: str = "overall") -> MetricValue:
        for m in self.metrics:
            if m.name == name and m.scope == scope:
                return m
        raise KeyError(f"no metric {name!r} with scope {scope!r}")

    def flat_metrics(self) -> dict[str, float]:
        """Flat numbers for ``dvc metrics show``: ``<scope>.<name>`` -> value, computable ones only."""
        out: dict[str, float] = {}
        for m in self.metrics:
            if m.value is None:
                continue
            key = m.name if m.scope == "overall" else f"{m.scope}.{m.name}"
            out[key] = round(float(m.value), 6)
            for k, v in m.extra.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                    out[f"{key}_{k}"] = round(float(v), 6)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "metrics": [m.to_dict() for m in self.metrics],
            "distributions": self.distributions,
            "coverage": self.coverage,
            "gaps": self.gaps,
            "info": self.info,
            "files": self.files,
        }

    def save(self, path: str | Path) -> Path:
        return write_json_atomic(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> "AnalysisResult":
        d = json.loads(Path(path).read_text())
        d["metrics"] = [MetricValue.from_dict(m) for m in d.get("metrics", [])]
        return cls(**d)
