"""Draw identities and scene specs from the distributions in params.yaml (the planners' primitives).

Every draw uses a generator seeded by (global seed, purpose, index), so spec ``i`` is the same
whatever ``n`` is: growing a dataset keeps the first specs and their sample ids.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from synthgen import cabin
from synthgen.errors import ConfigError
from synthgen.io import stable_hash
from synthgen.plan.config import IDENTITY_ATTRIBUTES, PlanParams
from synthgen.spec import CONDITION_DEFAULTS, SceneSpec

_IDENTITY, _SAMPLE, _SEED, _SPLIT, _CONDITIONS = 0, 1, 2, 3, 4
_INT_FIELDS = ("skin_tone", "jpeg_quality", "kss")


@dataclass(frozen=True)
class Identity:
    index: int
    seed: int
    split: str
    attributes: dict[str, Any]


def _clean(name: str, value: Any) -> Any:
    if name in _INT_FIELDS:
        return int(round(float(value)))
    if isinstance(value, (float, np.floating)):
        return round(float(value), 3)
    if isinstance(value, np.generic):
        return value.item()
    return value


def assign_splits(n_identities: int, fractions: Mapping[Any, float], seed: int) -> list[str]:
    """Split identities (not images) so no person appears in two splits. Counts follow the
    fractions by largest remainder, and every split with a positive fraction gets at least one
    identity when there are enough of them."""
    names = [k for k, f in fractions.items() if f > 0]
    w = np.array([fractions[k] for k in names], float)
    w /= w.sum()
    raw = w * n_identities
    counts = np.floor(raw).astype(int)
    for i in np.argsort(-(raw - counts), kind="stable")[: n_identities - counts.sum()]:
        counts[i] += 1
    if n_identities >= len(names):
        for i in range(len(names)):
            while counts[i] == 0:
                j = int(np.argmax(counts))
                counts[j] -= 1
                counts[i] += 1
    labels = np.repeat(np.array(names), counts)
    np.random.default_rng([seed, _SPLIT]).shuffle(labels)
    return [str(x) for x in labels]


def plan_identities(params: PlanParams, seed: int) -> list[Identity]:
    splits = assign_splits(params.identities, params.splits, seed)
    out = []
    for i in range(params.identities):
        rng = np.random.default_rng([seed, _IDENTITY, i])
        attrs = {a: _clean(a, getattr(params.attributes, a).sample(rng)) for a in IDENTITY_ATTRIBUTES}
        out.append(Identity(i, int(rng.integers(2**31 - 1)), splits[i], attrs))
    return out


def sample_spec(
    index: int,
    params: PlanParams,
    seed: int,
    identity: Identity,
    overrides: Mapping[str, Any] | None = None,
) -> SceneSpec:
    """Draw one spec. ``overrides`` pins attributes (the targeted planner fills gap bins with it)."""
    rng = np.random.default_rng([seed, _SAMPLE, index])
    overrides = dict(overrides or {})
    values: dict[str, Any] = dict(identity.attributes)
    for name in type(params.attributes).model_fields:
        if name in IDENTITY_ATTRIBUTES:
            continue
        # Draw even when overridden, so the other attributes keep their random stream.
        values[name] = _clean(name, getattr(params.attributes, name).sample(rng))
    # Conditions come from their own stream, so adding them leaves the attributes above unchanged.
    crng = np.random.default_rng([seed, _CONDITIONS, index])
    for name in type(params.conditions).model_fields:
        values[name] = _clean(name, getattr(params.conditions, name).sample(crng))
    values.update({k: _clean(k, v) for k, v in overrides.items()})
    if values.get("light_band") == "night_nir":
        values["lighting"] = "nir"  # at night the camera sees by its own NIR illumination
    # Eyes rotate at most so far inside the head: keep the requested gaze, move the head.
    for axis, limit in (("yaw", params.max_eye_in_head_yaw), ("pitch", params.max_eye_in_head_pitch)):
        gaze, head = values[f"gaze_{axis}"], values[f"head_{axis}"]
        values[f"head_{axis}"] = round(float(np.clip(head, gaze - limit, gaze + limit)), 3)
    sample_seed = int(np.random.default_rng([seed, _SEED, index]).integers(2**31 - 1))
    values.update(identity=identity.index, identity_seed=identity.seed)
    sample_id = stable_hash({"seed": seed, "index": index, **id_values(values)})
    return SceneSpec(sample_id=sample_id, index=index, seed=sample_seed, split=identity.split, **values)


def id_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """The values a sample id hashes: conditions at their defaults are left out, so plans made
    before conditions existed keep their sample ids."""
    return {k: v for k, v in values.items()
            if not (k in CONDITION_DEFAULTS and v == CONDITION_DEFAULTS[k])}


def plan_random(params: PlanParams, seed: int) -> list[SceneSpec]:
    identities = plan_identities(params, seed)
    return [sample_spec(i, params, seed, identities[i % len(identities)]) for i in range(params.n)]


# How far the head turns with a glance, by movement type (Euro NCAP): an owl glance turns the head
# through 80 % of the turn; a lean carries the head, which then makes half of the rest. (A lizard
# glance turns it only as far as the eyes cannot reach, which depends on the turn.)
HEAD_SHARE = {"owl": 0.8, "lean": 0.5}
LEAN_RANGE = (0.10, 0.20)  # metres of head travel of a planned lean


def lean_toward(zone: str, camera: str, seat: str, rng: np.random.Generator) -> tuple[float, float, float, str]:
    """A planned body lean towards ``zone``: (lean metres drawn in ``LEAN_RANGE``, gaze yaw, gaze
    pitch aimed from the leaned eye point, where the lean goes: ``cabin.lean_to_reach``, the
    centre for inboard targets, the door for that side's mirror and window, forward for the
    cluster and the lap). Raises ConfigError for a target no lean reaches, or one the camera cannot
    see the eyes turned to."""
    to = cabin.lean_to_reach(zone, seat)
    if to is None:
        raise ConfigError(f"no body lean reaches zone {zone!r} from the {seat} seat",
                          where="plan.coverage.movements", fix="drop 'lean' for this target")
    lean = round(float(rng.uniform(*LEAN_RANGE)), 3)
    yaw, pitch = cabin.gaze_angles_toward(zone, camera, seat, rng, lean, to)
    return lean, yaw, pitch, to
