"""``plan.mode: coverage``: fill every cell of the Euro NCAP matrix (synthgen.ncap) to a minimum count.

Cells are the product of ``plan.coverage``'s value lists, in a fixed order; cell ``j``'s ``r``-th spec
has index ``j * min_count + r``. Each spec pins its cell through ``sample_spec`` overrides: a new
identity with an age inside the band and a Monk tone of the skin type; the occluder and light band
directly; the gaze by aiming at a point of the target zone (``cabin.gaze_angles_toward``) and the head
by the movement (owl: 80% of the turn, lizard: the head stays forward, as far as the eyes allow; lean:
the body leans 10-20 cm towards the target (the cabin centre for inboard targets, the door for that
side's mirror and window, forward for the cluster and the lap: ``cabin.lean_to_reach``), the gaze aims
from the leaned eye point and the head makes half of the rest of the turn).
Every other attribute keeps its random distribution. A spec is checked against its cell with
``ncap.cell_of``, the rule the report counts by; a cell that no planned camera can reach (a lizard
glance too far for the eyes alone, a zone the camera cannot see the eyes turn to) is logged and left
empty, and the report shows it as planned 0.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from synthgen import ncap
from synthgen.cabin import gaze_angles_toward
from synthgen.errors import ConfigError
from synthgen.io import stable_hash
from synthgen.plan.config import PlanParams
from synthgen.plan.sampling import HEAD_SHARE, Identity, lean_toward, sample_spec
from synthgen.spec import SceneSpec

logger = logging.getLogger(__name__)
_CELL = 21


def coverage_cells(params: PlanParams) -> list[tuple[Any, ...]]:
    return ncap.matrix_cells(params.coverage)


def _identity(index: int, band: str, skin: int, params: PlanParams, seed: int, rng: np.random.Generator) -> Identity:
    lo, hi = ncap.age_band_range(band)
    age = round(float(rng.uniform(lo, np.nextafter(hi, lo))), 3)
    if ncap.age_band(age) != band:
        age = lo
    monks = ncap.FITZ_TO_MONK[skin]
    attrs = {"age": age, "gender": str(params.attributes.gender.sample(rng)),
             "skin_tone": int(monks[int(rng.integers(len(monks)))])}
    names = list(params.splits)
    p = np.asarray([params.splits[k] for k in names], float)
    split = names[int(rng.choice(len(names), p=p / p.sum()))]
    return Identity(index, int(rng.integers(2**31 - 1)), split, attrs)


def _pose(zone: str, move: str, camera: str, seat: str, rng: np.random.Generator) -> dict[str, float | str]:
    fy, fp = ncap.forward_angles(camera, seat)
    if move == "road":
        return {"gaze_yaw": fy + float(rng.uniform(-5, 5)), "gaze_pitch": fp + float(rng.uniform(-3, 3)),
                "head_yaw": fy, "head_pitch": fp}
    lean, to = 0.0, "centre"
    if move == "lean":
        lean, yaw, pitch, to = lean_toward(zone, camera, seat, rng)
    else:
        yaw, pitch = gaze_angles_toward(zone, camera, seat, rng)
    share = HEAD_SHARE.get(move, 0.0)
    out: dict[str, float | str] = {"gaze_yaw": yaw, "gaze_pitch": pitch, "head_yaw": fy + share * (yaw - fy),
                                   "head_pitch": fp + share * (pitch - fp)}
    return {**out, "body_lean": lean, "lean_to": to} if lean else out


def plan_coverage(params: PlanParams, seed: int) -> list[SceneSpec]:
    """``min_count`` specs in every reachable cell (``plan.n`` is not used)."""
    cseed = int(stable_hash({"seed": seed, "mode": "coverage"}, n=8), 16)
    cameras = [str(c) for c in params.attributes.camera.support()]
    out: list[SceneSpec] = []
    empty = []
    for j, cell in enumerate(coverage_cells(params)):
        zone, move, occluder, band, age_b, skin = cell
        for r in range(params.coverage.min_count):
            index = j * params.coverage.min_count + r
            rng = np.random.default_rng([cseed, _CELL, index])
            ident = _identity(index, age_b, skin, params, cseed, rng)
            spec = None
            for cam in [cameras[int(rng.integers(len(cameras)))]] + cameras:
                seat = "driver"
                try:
                    pose = _pose(zone, move, cam, seat, rng)
                except ConfigError:
                    continue
                over = {"camera": cam, "seat": seat, "occluder": occluder, "light_band": band, **pose}
                cand = sample_spec(index, params, cseed, ident, over)
                if ncap.cell_of(cand.model_dump()) == tuple(cell):
                    spec = cand
                    break
            if spec is None:
                empty.append(cell)
                break
            out.append(spec)
    if empty:
        logger.warning("coverage: %d of %d cells could not be filled with cameras %s (e.g. %s)",
                       len(empty), len(coverage_cells(params)), cameras, empty[0])
    if not out:
        raise ConfigError("no coverage cell can be planned", where="plan.coverage",
                          fix="allow more cameras in plan.attributes.camera or other glance targets / movements")
    return out
