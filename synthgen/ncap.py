"""The Euro NCAP driver-monitoring coverage matrix: which cell a row falls in, and counts per cell.

Dimensions (``DIMENSIONS``): glance target (the cabin gaze zone, synthgen.cabin), movement type (lean:
the body leans at least ``dsm.LEAN_MIN`` towards the target, owl: the head makes at least half of
the turn away from the road, lizard: the eyes make most of it, road: the gaze within ``ROAD_DEG``
of straight ahead), occluder, light band, age band (the protocol
asks for ages 16-80) and skin type (Fitzpatrick 1-6 from the Monk scale the renderer uses).

Pure functions over plain values, so the planner (``plan.mode: coverage``), the curate report and a
user's own rows agree on every cell.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from synthgen import cabin, dsm
from synthgen.geometry import angular_error, gaze_angles
from synthgen.vocab import AGE_MAX, band_of, band_range

DIMENSIONS = ("glance_target", "movement", "occluder", "light_band", "age_band", "skin_type")
MOVEMENTS = ("road", "owl", "lizard", "lean")
AGE_BANDS = ("<16", "16-29", "30-49", "50-64", "65-80", ">80")
_AGE_UPPER = (16, 30, 50, 65, 81)
SKIN_TYPES = (1, 2, 3, 4, 5, 6)
# Monk skin tone (1-10) -> Fitzpatrick type (1-6): Monk's lightest two are type I, its darkest two VI.
_MONK_TO_FITZ = {1: 1, 2: 1, 3: 2, 4: 3, 5: 3, 6: 4, 7: 4, 8: 5, 9: 6, 10: 6}
FITZ_TO_MONK = {f: [m for m, v in _MONK_TO_FITZ.items() if v == f] for f in SKIN_TYPES}
ROAD_DEG = 10.0


def age_band(age: float) -> str:
    return band_of(age, _AGE_UPPER, AGE_BANDS)


def age_band_range(band: str) -> tuple[float, float]:
    """[low, high) years of a band (the open bands end at 0 and 90)."""
    return band_range(band, _AGE_UPPER, AGE_BANDS, AGE_MAX)


def skin_type(monk: int) -> int:
    return _MONK_TO_FITZ[int(monk)]


def forward_angles(camera: str, seat: str) -> tuple[float, float]:
    """Camera-frame (yaw, pitch) of looking straight down the road from ``seat``."""
    rot, _ = cabin.camera_pose(camera, seat)
    return gaze_angles(rot @ np.array([0.0, 0.0, 1.0]))


def movement(camera: str, seat: str, gaze_yaw: float, gaze_pitch: float, head_yaw: float,
             head_pitch: float, body_lean: float = 0.0) -> str:
    """road / lean / owl / lizard: whether the body leans, else how far the head made the turn away
    from straight ahead."""
    fy, fp = forward_angles(camera, seat)
    turn = angular_error(gaze_yaw, gaze_pitch, fy, fp)
    if turn < ROAD_DEG:
        return "road"
    if body_lean >= dsm.LEAN_MIN:
        return "lean"
    head = angular_error(head_yaw, head_pitch, fy, fp)
    return "owl" if head >= 0.5 * turn else "lizard"


def cell_of(row: Mapping[str, Any]) -> tuple[Any, ...]:
    """The cell of a row with ``req_*`` columns (or SceneSpec attribute names without the prefix)."""
    def get(name: str) -> Any:
        return row[f"req_{name}"] if f"req_{name}" in row else row[name]

    camera, seat = get("camera"), get("seat")
    lean = row.get("req_body_lean", row.get("body_lean")) or 0.0  # rows made before leans existed: none
    to = row.get("req_lean_to", row.get("lean_to")) or "centre"  # rows made before door and forward leans: centre
    zone = row.get("req_gaze_zone") or cabin.zone_of_angles(camera, seat, get("gaze_yaw"), get("gaze_pitch"), lean, to)
    move = movement(camera, seat, get("gaze_yaw"), get("gaze_pitch"), get("head_yaw"), get("head_pitch"), lean)
    return (zone, move, get("occluder"), get("light_band"), age_band(get("age")), skin_type(get("skin_tone")))


def matrix(planned: Iterable[Mapping[str, Any]], rendered: Iterable[Mapping[str, Any]],
           accepted: Iterable[Mapping[str, Any]], cells: Iterable[tuple[Any, ...]] = (),
           min_count: int = 1) -> dict[str, Any]:
    """Planned / rendered / accepted counts per cell (every cell of ``cells`` listed even when empty),
    and how many cells reach ``min_count`` accepted rows."""
    counts: dict[tuple[Any, ...], list[int]] = {tuple(c): [0, 0, 0] for c in cells}
    for k, rows in enumerate((planned, rendered, accepted)):
        for r in rows:
            counts.setdefault(cell_of(r), [0, 0, 0])[k] += 1
    out_cells = [dict(zip(DIMENSIONS, c, strict=True), planned=v[0], rendered=v[1], accepted=v[2])
                 for c, v in sorted(counts.items(), key=lambda kv: tuple(str(x) for x in kv[0]))]
    filled = sum(1 for c in out_cells if c["accepted"] >= min_count)
    per_dim = {d: sorted({str(c[d]) for c in out_cells}) for d in DIMENSIONS}
    return {"dimensions": list(DIMENSIONS), "min_count": min_count, "cells": out_cells,
            "n_cells": len(out_cells), "cells_filled": filled,
            "fraction_filled": filled / max(len(out_cells), 1), "values": per_dim}


def matrix_cells(coverage: Any) -> list[tuple[Any, ...]]:
    """Every cell of the matrix a ``plan.coverage`` section asks for (glance target x movement x
    occluder x light band x age band x skin type). Base layer: the planner fills these cells and
    curation reports them, without either importing the other."""
    c = coverage
    return list(itertools.product(c.glance_targets, c.movements, c.occluders, c.light_bands, c.age_bands,
                                  c.skin_types))
