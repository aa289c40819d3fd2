"""Joint coverage of attribute bins (e.g. age group x expression x gaze zone) and the gaps list that
feeds the targeted planner.

A bin is under-covered when the synthetic set holds fewer than ``coverage_ratio`` of its target:
the real share of the bin times ``max(synthetic samples inside the real support, real samples)``,
and at least ``min_per_bin``. Synthetic samples in bins the real data never shows do not raise the
targets (they are reported as synthetic-only bins instead), so a round of targeted samples narrows
the gaps instead of chasing a target that grows with every off-support sample. ``needed`` says how
many synthetic samples would bring a bin to its target.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from synthgen.gaps import GAPS_VERSION
from synthgen.vocab import CATEGORIES


@dataclass
class Coverage:
    attributes: list[str]
    bins: list[tuple[str, ...]]
    real_counts: np.ndarray
    synth_counts: np.ndarray
    dropped: dict[str, str] = field(default_factory=dict)
    unknown_rows: dict[str, int] = field(default_factory=dict)

    @property
    def n_real(self) -> int:
        return int(self.real_counts.sum())

    @property
    def n_synth(self) -> int:
        return int(self.synth_counts.sum())

    def real_only(self) -> list[tuple[str, ...]]:
        """Bins the real data has and the synthetic data lacks."""
        return [b for b, r, s in zip(self.bins, self.real_counts, self.synth_counts) if r > 0 and s == 0]

    def synth_only(self) -> list[tuple[str, ...]]:
        return [b for b, r, s in zip(self.bins, self.real_counts, self.synth_counts) if s > 0 and r == 0]

    def to_dict(self) -> dict[str, Any]:
        occupied = [i for i, (r, s) in enumerate(zip(self.real_counts, self.synth_counts)) if r or s]
        return {
            "attributes": self.attributes,
            "dropped": self.dropped,
            "unknown_rows": self.unknown_rows,
            "bins": [list(self.bins[i]) for i in occupied],
            "real_counts": [int(self.real_counts[i]) for i in occupied],
            "synth_counts": [int(self.synth_counts[i]) for i in occupied],
            "real_only": [list(b) for b in self.real_only()],
            "synth_only": [list(b) for b in self.synth_only()],
        }


def joint_coverage(
    real: Mapping[str, Sequence[Any] | None],
    synth: Mapping[str, Sequence[Any] | None],
    attributes: Sequence[str],
) -> Coverage:
    """Count both sides over the product of the attributes' classes. An attribute absent (None) or
    entirely unknown on either side is dropped from the product, with the reason in ``dropped``."""
    used, dropped = [], {}
    for a in attributes:
        if a not in CATEGORIES:
            dropped[a] = f"{a!r} is not a categorical attribute (choose from {sorted(CATEGORIES)})"
            continue
        for side, data in (("real", real), ("synthetic", synth)):
            col = data.get(a)
            if col is None:
                dropped[a] = f"absent from the {side} data"
                break
            if not any(v is not None and v == v for v in col):
                dropped[a] = f"no known values in the {side} data"
                break
        else:
            used.append(a)
    bins: list[tuple[str, ...]] = list(itertools.product(*(CATEGORIES[a] for a in used))) if used else [()]
    index = {b: i for i, b in enumerate(bins)}
    counts, unknown = [], {}
    for side, data in (("real", real), ("synthetic", synth)):
        c = np.zeros(len(bins), np.int64)
        cols = [list(data[a] or ()) for a in used]
        lengths = [len(v) for v in data.values() if v is not None]
        n = len(cols[0]) if cols else (lengths[0] if lengths else 0)
        miss = 0
        for i in range(n):
            key = tuple(str(col[i]) if col[i] is not None else None for col in cols)
            j = None if None in key else index.get(key)  # type: ignore[arg-type]  # None rules out a bin
            if j is None:
                miss += 1
            else:
                c[j] += 1
        unknown[side] = miss
        counts.append(c)
    return Coverage(used, bins, counts[0], counts[1], dropped, unknown)


@dataclass
class Gap:
    key: dict[str, str]
    real_count: int
    synthetic_count: int
    target: float
    needed: int


def find_gaps(cov: Coverage, coverage_ratio: float = 0.5, min_per_bin: int = 5) -> list[Gap]:
    """Under-covered bins, the most needed first. Only bins the real data holds count: a bin the
    real data never shows is not a gap (there is no evidence anyone needs it)."""
    if cov.n_real == 0:
        return []
    gaps = []
    share = cov.real_counts / cov.n_real
    in_support = int(cov.synth_counts[cov.real_counts > 0].sum())
    scale = max(in_support, cov.n_real)
    for b, r, s, p in zip(cov.bins, cov.real_counts, cov.synth_counts, share):
        if r == 0:
            continue
        target = max(p * scale, float(min_per_bin))
        if s < coverage_ratio * target:
            gaps.append(Gap(dict(zip(cov.attributes, b)), int(r), int(s), round(float(target), 3), int(math.ceil(target - s))))
    gaps.sort(key=lambda g: (-g.needed, tuple(g.key.values())))
    return gaps


def gaps_document(cov: Coverage, gaps: Sequence[Gap], coverage_ratio: float, min_per_bin: int, reference: str) -> dict[str, Any]:
    """The gaps.json payload: what the targeted planner reads."""
    return {
        "version": GAPS_VERSION,
        "attributes": cov.attributes,
        "dropped": cov.dropped,
        "reference": reference,
        "n_real": cov.n_real,
        "n_synthetic": cov.n_synth,
        "coverage_ratio": coverage_ratio,
        "min_per_bin": min_per_bin,
        "total_needed": int(sum(g.needed for g in gaps)),
        "bins": [g.__dict__ for g in gaps],
    }
