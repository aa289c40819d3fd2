"""Targeted planning (closed loop): sample specs into the bins that ``analyze`` found under-covered.

``gaps.json`` lists bins (e.g. age group x expression x gaze zone) with how many samples each
needs. The ``n`` specs are shared among the bins in proportion to that need; each spec pins the
bin's attributes through ``sample_spec`` overrides: the expression directly, the gaze by aiming at
a point inside the gap's zone (``cabin.gaze_angles_toward``), and the age group by choosing an
identity whose age falls in it (a new identity is drawn inside the group when the plan has none).
Every other attribute keeps its random distribution.

The planning seed mixes the global seed with the gaps file's content, so a targeted round never
repeats the sample ids of the random round (or of a round made from other gaps), and the same gaps
and seed give the same specs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from synthgen.errors import ConfigError
from synthgen.gaps import read_gaps
from synthgen.io import stable_hash
from synthgen.plan.config import PlanParams
from synthgen.plan.sampling import Identity, plan_identities, sample_spec
from synthgen.spec import SceneSpec
from synthgen.vocab import age_group, age_group_range

_PICK, _NEW_IDENTITY, _GAZE = 11, 12, 13
# bin attributes a SceneSpec override can pin directly
DIRECT = ("expression", "glasses", "lighting", "camera", "seat")


def allocate(n: int, needed: Sequence[int]) -> list[int]:
    """Split ``n`` in proportion to ``needed`` by largest remainder (sums to exactly ``n``)."""
    w = np.asarray(needed, float)
    raw = w / w.sum() * n
    counts = np.floor(raw).astype(int)
    for i in np.argsort(-(raw - counts), kind="stable")[: n - int(counts.sum())]:
        counts[i] += 1
    return counts.tolist()


def targeted_seed(seed: int, gaps: Mapping[str, Any]) -> int:
    return int(stable_hash({"seed": seed, "mode": "targeted", "gaps": gaps["bins"]}, n=8), 16)


def _new_identity(index: int, group: str, gender: str | None, params: PlanParams, seed: int) -> Identity:
    rng = np.random.default_rng([seed, _NEW_IDENTITY, index])
    lo, hi = age_group_range(group)
    age = round(float(rng.uniform(lo, np.nextafter(hi, lo))), 3)
    if age_group(age) != group:  # rounding pushed it over the upper edge
        age = lo
    attrs = {
        "age": age,
        "gender": gender or str(params.attributes.gender.sample(rng)),
        "skin_tone": int(round(float(params.attributes.skin_tone.sample(rng)))),
    }
    names = list(params.splits)
    p = np.asarray([params.splits[k] for k in names], float)
    split = names[int(rng.choice(len(names), p=p / p.sum()))]
    return Identity(index, int(rng.integers(2**31 - 1)), split, attrs)


def _gaze_override(zone: str, params: PlanParams, overrides: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    from synthgen.cabin import gaze_angles_toward

    camera = overrides.get("camera") or str(params.attributes.camera.sample(rng))
    seat = overrides.get("seat") or str(params.attributes.seat.sample(rng))
    cameras = [camera] + [c for c in params.attributes.camera.support() if c != camera]
    last: ConfigError | None = None
    for cam in cameras if "camera" not in overrides else [camera]:
        try:
            yaw, pitch = gaze_angles_toward(zone, cam, seat, rng)
            return {"camera": cam, "seat": seat, "gaze_yaw": yaw, "gaze_pitch": pitch}
        except ConfigError as err:
            last = err
    raise ConfigError(f"cannot aim a gaze at zone {zone!r} from any planned camera ({last.what if last else ''})",
                      where="plan.gaps", fix="allow more camera positions in plan.attributes.camera")


def plan_targeted(params: PlanParams, seed: int) -> list[SceneSpec]:
    """``params.n`` specs filling the gaps of ``params.gaps``."""
    if params.gaps is None:
        raise ConfigError("mode 'targeted' needs plan.gaps", where="plan.gaps", fix="point it at the gaps.json from `analyze`")
    doc = read_gaps(params.gaps)
    bins = [b for b in doc["bins"] if b["needed"] > 0]
    if not bins:
        raise ConfigError("the gaps file lists no under-covered bin", where=str(params.gaps),
                          fix="nothing to fill: use plan.mode: random")
    tseed = targeted_seed(seed, doc)
    identities = plan_identities(params, tseed)
    by_group: dict[str, list[Identity]] = {}
    for ident in identities:
        by_group.setdefault(age_group(float(ident.attributes["age"])), []).append(ident)
    extra: dict[tuple[str, str | None], list[Identity]] = {}
    next_index = len(identities)
    specs: list[SceneSpec] = []
    index = 0
    for b, count in zip(bins, allocate(params.n, [b["needed"] for b in bins]), strict=True):
        key: dict[str, str] = b["key"]
        for _ in range(count):
            rng = np.random.default_rng([tseed, _PICK, index])
            gender = key.get("gender")
            pool = identities
            if "age_group" in key:
                pool = by_group.get(key["age_group"], [])
            if gender:
                pool = [i for i in pool if i.attributes["gender"] == gender]
            if not pool:
                # a few fresh identities per bin, reused across its specs (a person has many images)
                k = (key.get("age_group", ""), gender)
                made = extra.setdefault(k, [])
                if len(made) < max(1, count // 5):
                    group = key.get("age_group") or age_group(float(params.attributes.age.sample(rng)))
                    made.append(_new_identity(next_index, group, gender, params, tseed))
                    next_index += 1
                pool = made
            ident = pool[int(rng.integers(len(pool)))]
            overrides: dict[str, Any] = {a: key[a] for a in DIRECT if a in key}
            if "gaze_zone" in key:
                overrides.update(_gaze_override(key["gaze_zone"], params, overrides, np.random.default_rng([tseed, _GAZE, index])))
            specs.append(sample_spec(index, params, tseed, ident, overrides))
            index += 1
    return specs
