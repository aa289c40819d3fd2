"""Planned vs accepted coverage: per-attribute shares, their Jensen-Shannon divergence, and how many
extra renders each under-accepted bin needs.

Base layer (no stage imports): curation's report, the top-up rounds at the door, the shift report
and the dataset card all compute the same figures here.

Conventions:
- A *bin* is one class of a categorical attribute of the request (``req_age_group``,
  ``req_expression``, ``req_gaze_zone``, ...): curation accepts rows whose measurement agrees with
  the request, so the accepted set's requested attributes are what a user gets.
- JSD is the Jensen-Shannon divergence in bits (log base 2), so it lies in [0, 1]: 0 for the same
  distribution, 1 for disjoint ones. (SciPy's ``jensenshannon`` returns its square root, the
  distance; here it is squared back.)
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.spatial.distance import jensenshannon

from synthgen.vocab import CATEGORIES

logger = logging.getLogger(__name__)

JSD_BASE = 2


def counts(values: Iterable[object], classes: Sequence[str]) -> dict[str, int]:
    """How many values fall in each class (classes in vocabulary order; unknown values are ignored)."""
    out = dict.fromkeys(classes, 0)
    for v in values:
        if v in out:
            out[str(v)] += 1
    return out


def shares(count: Mapping[str, int]) -> dict[str, float]:
    total = sum(count.values())
    return {k: (v / total if total else 0.0) for k, v in count.items()}


def jsd(p: Mapping[str, float], q: Mapping[str, float]) -> float:
    """Jensen-Shannon divergence (bits) between two distributions over the same classes.

    Either one all zero (nothing planned or nothing accepted) gives 1.0, the worst value."""
    keys = list(dict.fromkeys([*p, *q]))
    a = np.array([p.get(k, 0.0) for k in keys], float)
    b = np.array([q.get(k, 0.0) for k in keys], float)
    if a.sum() <= 0 or b.sum() <= 0:
        return 1.0
    return float(jensenshannon(a, b, base=JSD_BASE) ** 2)


@dataclass(frozen=True)
class AttributeCoverage:
    """One attribute's planned vs accepted distribution."""

    attribute: str
    planned: dict[str, int]
    accepted: dict[str, int]
    requested: dict[str, int]  # every curated row, accepted or not

    @property
    def jsd(self) -> float:
        return jsd(shares(self.planned), shares(self.accepted))

    def acceptance(self) -> dict[str, float | None]:
        """Accepted share of the rows requested in each bin (None: none requested)."""
        return {k: (self.accepted[k] / n if n else None) for k, n in self.requested.items()}

    def as_dict(self) -> dict[str, object]:
        return {
            "jsd": round(self.jsd, 6),
            "planned_share": {k: round(v, 6) for k, v in shares(self.planned).items()},
            "accepted_share": {k: round(v, 6) for k, v in shares(self.accepted).items()},
            "planned": self.planned,
            "accepted": self.accepted,
            "requested": self.requested,
            "acceptance": {k: (None if v is None else round(v, 6)) for k, v in self.acceptance().items()},
        }


def coverage(attribute: str, planned: Iterable[object], requested: Sequence[object],
             accepted: Sequence[bool]) -> AttributeCoverage:
    """``planned``: the plan's values of the attribute; ``requested``/``accepted``: every curated
    row's requested value and decision, in the same order."""
    classes = CATEGORIES[attribute]
    return AttributeCoverage(
        attribute,
        planned=counts(planned, classes),
        accepted=counts((v for v, a in zip(requested, accepted, strict=True) if a), classes),
        requested=counts(requested, classes),
    )


def accepted_needed(planned: Mapping[str, int], accepted: Mapping[str, int]) -> dict[str, int]:
    """Accepted rows each bin still needs so that the accepted set, keeping every row it has, has
    the planned shares.

    The smallest such set has a total ``T`` fixed by the bins already at or above their share:
    ``T = (their accepted count) / (their planned share)``. Bins below ``p_b * T`` need
    ``ceil(p_b * T) - a_b``. A bin planned at 0 never needs anything."""
    p = shares(planned)
    a = dict(accepted)
    over = {k for k in p if p[k] > 0}
    while True:
        p_over = sum(p[k] for k in over)
        a_over = sum(a.get(k, 0) for k in over)
        if not over or p_over <= 0:
            return dict.fromkeys(p, 0)
        total = a_over / p_over
        below = {k for k in over if a.get(k, 0) < p[k] * total - 1e-9}
        if not below:
            break
        over -= below
    return {k: (max(0, int(np.ceil(p[k] * total - 1e-9)) - a.get(k, 0)) if p[k] > 0 else 0) for k in p}


def renders_needed(needed: Mapping[str, int], acceptance: Mapping[str, float | None],
                   min_rate: float, requested: Mapping[str, int] | None = None,
                   give_up_after: int | None = None) -> dict[str, int]:
    """Renders that should yield ``needed`` accepted rows per bin at the bin's observed acceptance
    rate, floored at ``min_rate`` (a bin that accepted little so far is tried at that rate).

    A bin that accepted nothing out of ``give_up_after`` or more requested rows gets none: the
    renderer and labellers do not agree on it, and more of the same renders would spend the budget
    without moving the accepted shares (``unreachable`` lists such bins)."""
    out = {}
    for k, n in needed.items():
        rate = acceptance.get(k)
        if (give_up_after is not None and requested is not None and rate == 0
                and requested.get(k, 0) >= give_up_after):
            out[k] = 0
            continue
        rate = max(min_rate, rate if rate is not None else min_rate)
        out[k] = int(np.ceil(n / rate)) if n > 0 else 0
    return out


def unreachable(needed: Mapping[str, int], acceptance: Mapping[str, float | None],
                requested: Mapping[str, int], give_up_after: int) -> list[str]:
    """Bins that need rows but accepted none of ``give_up_after`` or more requested."""
    return [k for k, n in needed.items()
            if n > 0 and acceptance.get(k) == 0 and requested.get(k, 0) >= give_up_after]
