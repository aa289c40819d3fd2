"""The ``Filter`` protocol and the filter registry.

A filter looks at the labelled rows (a polars DataFrame of the small columns: no images) and says,
for each of its reason codes, which rows it rejects. ``row`` filters judge each row alone; ``set``
filters (near duplicates) judge rows against each other and see the reasons the row filters gave,
so that a duplicate cluster keeps a member that is otherwise acceptable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

import numpy as np
import polars as pl

from synthgen.curate.config import CurateParams
from synthgen.registry import Registry


@dataclass
class FilterResult:
    """Reason code -> boolean mask over the rows (True = rejected for that reason), plus notes on
    what was skipped and why (shown in the report, never silent)."""

    masks: dict[str, np.ndarray] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@runtime_checkable
class Filter(Protocol):
    name: str
    kind: Literal["row", "set"]
    #: every reason code this filter can give, in the order they are reported
    reasons: tuple[str, ...]

    def apply(self, frame: pl.DataFrame, prior: list[list[str]]) -> FilterResult:
        """Masks for ``frame``'s rows; ``prior`` holds the reasons earlier filters gave each row."""
        ...


FILTERS: Registry[Filter] = Registry("filter", lazy={
    name: "synthgen.curate.filters"
    for name in ("label_error", "face_count", "low_quality", "mismatch", "near_duplicate", "identity_leak")
} | {"conditions": "synthgen.curate.conditions"})


def build_filters(params: CurateParams) -> list[Filter]:
    """Row filters first, then set filters, each group in the configured order."""
    filters = [FILTERS.create(name, params) for name in params.filters]
    return [f for f in filters if f.kind == "row"] + [f for f in filters if f.kind == "set"]
