"""Top-up planning: extra specs for the bins that curation accepted below the plan's share.

A round asks for ``n`` specs and, per attribute, how many of them to pin to each bin
(``quotas``, from ``synthgen.balance``); specs not pinned for an attribute keep its random
distribution. Each attribute's pins are shuffled on their own, so the attributes pair at random
rather than piling every pin onto the same specs.

The top-up reuses the plan's people: an age-group (or gender) pin picks an identity of the plan in
that group, so every identity keeps its split (no person in two splits) and its age, gender and
skin tone. Indices continue after the existing specs, starting on a shard boundary so a round
never changes an existing shard. The seed mixes the global seed with the round number, so the same
params, seed and curated rows give the same specs, and no round repeats another's sample ids.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from synthgen.errors import ConfigError
from synthgen.io import stable_hash
from synthgen.plan.config import PlanParams
from synthgen.plan.planner import Identity, sample_spec
from synthgen.plan.targeted import _gaze_override, allocate
from synthgen.spec import SceneSpec, n_shards
from synthgen.vocab import age_group

logger = logging.getLogger(__name__)

_PIN, _PICK, _GAZE = 21, 22, 23


def topup_seed(seed: int, round_: int) -> int:
    return int(stable_hash({"seed": seed, "mode": "topup", "round": round_}, n=8), 16)


def identities_of(specs: Sequence[SceneSpec]) -> list[Identity]:
    """The people of a plan (first spec of each identity wins), in identity order."""
    seen: dict[int, Identity] = {}
    for s in specs:
        if s.identity not in seen:
            seen[s.identity] = Identity(s.identity, s.identity_seed, s.split,
                                        {"age": s.age, "gender": s.gender, "skin_tone": s.skin_tone})
    return [seen[k] for k in sorted(seen)]


def first_free_index(specs: Sequence[SceneSpec], shard_size: int) -> int:
    """The first index on a shard boundary after every existing spec."""
    last = max((s.index for s in specs), default=-1)
    return n_shards(last + 1, shard_size) * shard_size


def _pins(n: int, quota: Mapping[str, int], rng: np.random.Generator) -> list[str | None]:
    """``n`` slots: each bin's quota (scaled down together when they exceed ``n``), the rest None."""
    bins = [k for k, v in quota.items() if v > 0]
    want = [quota[k] for k in bins]
    total = sum(want)
    if total == 0:
        return [None] * n
    counts = allocate(min(n, total), want)
    slots: list[str | None] = [b for b, c in zip(bins, counts) for _ in range(c)]
    slots += [None] * (n - len(slots))
    order = rng.permutation(n)
    return [slots[i] for i in order]


def plan_topup(params: PlanParams, seed: int, round_: int, existing: Sequence[SceneSpec],
               quotas: Mapping[str, Mapping[str, int]], n: int) -> list[SceneSpec]:
    """``n`` specs for top-up round ``round_`` (1-based), after ``existing`` (the plan and earlier rounds).

    ``quotas``: attribute (age_group, expression, gaze_zone, gender) -> bin -> specs to pin there."""
    if n <= 0:
        return []
    unknown = set(quotas) - {"age_group", "expression", "gaze_zone", "gender"}
    if unknown:
        raise ConfigError(f"cannot top up attribute(s) {sorted(unknown)}", where="curate.topup.attributes",
                          fix="use age_group, expression, gaze_zone or gender")
    tseed = topup_seed(seed, round_)
    people = identities_of(existing)
    if not people:
        raise ConfigError("the plan has no specs to top up", where="plan.n", fix="plan at least one spec")
    start = first_free_index(existing, params.shard_size)
    pins = {a: _pins(n, q, np.random.default_rng([tseed, _PIN, i])) for i, (a, q) in enumerate(sorted(quotas.items()))}
    specs: list[SceneSpec] = []
    for j in range(n):
        index = start + j
        rng = np.random.default_rng([tseed, _PICK, index])
        pool = people
        group, gender = pins.get("age_group", [None] * n)[j], pins.get("gender", [None] * n)[j]
        if group is not None:
            pool = [p for p in pool if age_group(float(p.attributes["age"])) == group] or pool
        if gender is not None:
            pool = [p for p in pool if p.attributes["gender"] == gender] or pool
        ident = pool[int(rng.integers(len(pool)))]
        overrides: dict[str, Any] = {}
        expression = pins.get("expression", [None] * n)[j]
        if expression is not None:
            overrides["expression"] = expression
        zone = pins.get("gaze_zone", [None] * n)[j]
        if zone is not None:
            try:
                overrides.update(_gaze_override(zone, params, overrides,
                                                np.random.default_rng([tseed, _GAZE, index])))
            except ConfigError as err:
                logger.warning("top-up: %s; spec %d keeps a random gaze", err.what, index)
        specs.append(sample_spec(index, params, tseed, ident, overrides))
    return specs
