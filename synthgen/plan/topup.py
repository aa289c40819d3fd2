"""Top-up planning: extra specs for the bins that curation accepted below the plan's share.

A round asks for ``n`` specs and, per attribute, how many renders each bin asks for (``quotas``,
from ``synthgen.balance``). Each spec pins at most one attribute to one bin (``pin_slots``); its
other attributes keep their random distribution.

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
from synthgen.plan.sampling import Identity, sample_spec
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


def _pins(n: int, quota: Mapping[str, int]) -> list[str | None]:
    """``n`` slots: each bin's quota (scaled down together when they exceed ``n``), the rest None."""
    bins = [k for k, v in quota.items() if v > 0]
    want = [quota[k] for k in bins]
    total = sum(want)
    if total == 0:
        return [None] * n
    counts = allocate(min(n, total), want)
    slots: list[str | None] = [b for b, c in zip(bins, counts, strict=True) for _ in range(c)]
    return slots + [None] * (n - len(slots))


def pin_slots(n: int, quotas: Mapping[str, Mapping[str, int]], rng: np.random.Generator) -> list[tuple[str, str] | None]:
    """One pin at most per spec: the ``n`` specs are shared among the attributes in proportion to
    the renders each asks for, then among each attribute's bins by its quotas; shuffled.

    Pinning every attribute of a spec at once would multiply the bins' acceptance rates (a
    disgusted 70-year-old looking at the lap is rarely accepted); one pin per spec keeps each
    top-up render as likely to be accepted as its one hard bin allows."""
    names = sorted(a for a, q in quotas.items() if sum(q.values()) > 0)
    if not names or n <= 0:
        return [None] * max(n, 0)
    shares = allocate(n, [sum(quotas[a].values()) for a in names])
    slots: list[tuple[str, str] | None] = []
    for a, k in zip(names, shares, strict=True):
        slots += [None if b is None else (a, b) for b in _pins(k, quotas[a])]
    order = rng.permutation(len(slots))
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
    slots = pin_slots(n, quotas, np.random.default_rng([tseed, _PIN]))
    specs: list[SceneSpec] = []
    for j, slot in enumerate(slots):
        index = start + j
        rng = np.random.default_rng([tseed, _PICK, index])
        attr, value = slot if slot is not None else ("", "")
        pool = people
        if attr == "age_group":
            pool = [p for p in pool if age_group(float(p.attributes["age"])) == value] or pool
        elif attr == "gender":
            pool = [p for p in pool if p.attributes["gender"] == value] or pool
        ident = pool[int(rng.integers(len(pool)))]
        overrides: dict[str, Any] = {}
        if attr == "expression":
            overrides["expression"] = value
        elif attr == "gaze_zone":
            try:
                overrides.update(_gaze_override(value, params, overrides,
                                                np.random.default_rng([tseed, _GAZE, index])))
            except ConfigError as err:
                logger.warning("top-up: %s; spec %d keeps a random gaze", err.what, index)
        specs.append(sample_spec(index, params, tseed, ident, overrides))
    return specs
