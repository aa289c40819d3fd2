"""Categorical attributes of scene specs (no rendering): lets the closed loop be checked on plans."""

from __future__ import annotations

from collections.abc import Sequence

from synthgen.spec import SceneSpec


def spec_attributes(specs: Sequence[SceneSpec]) -> dict[str, list[str]]:
    """age_group, expression, gender and the gaze zone each spec's gaze hits (from its camera and seat)."""
    from synthgen.cabin import zone_of_angles

    return {
        "age_group": [s.age_group for s in specs],
        "expression": [s.expression for s in specs],
        "gender": [s.gender for s in specs],
        "gaze_zone": [zone_of_angles(s.camera, s.seat, s.gaze_yaw, s.gaze_pitch, s.body_lean, s.lean_to) for s in specs],
    }
