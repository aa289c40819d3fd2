"""Cabin geometry: camera poses, eye points and gaze zones agree with each other."""

from __future__ import annotations

import numpy as np
import pytest

from synthgen import cabin
from synthgen.errors import ConfigError
from synthgen.geometry import gaze_vector
from synthgen.vocab import CAMERA_POSITIONS, GAZE_ZONES, SEATS

# An A-pillar camera watches its own side: gazes at the far side's mirror/window face away from it.
HIDDEN = {
    ("a_pillar", "driver"): {"right_mirror", "right_window", "front_occupant"},
    ("a_pillar", "passenger"): {"left_mirror", "left_window", "front_occupant"},
}


@pytest.mark.parametrize("camera", CAMERA_POSITIONS)
@pytest.mark.parametrize("seat", SEATS)
def test_pose_is_a_rotation_looking_at_the_occupant(camera: str, seat: str) -> None:
    rot, t = cabin.camera_pose(camera, seat)
    assert np.allclose(rot @ rot.T, np.eye(3), atol=1e-9) and np.isclose(np.linalg.det(rot), 1.0)
    eye = cabin.eye_position(camera, seat)
    assert np.allclose(eye, rot @ cabin.seat_eye(seat) + t)
    assert 0.3 < eye[2] < 1.5  # in front of the camera, at arm's length
    assert abs(eye[0]) < 0.01 and -0.06 < eye[1] < 0  # near the optical axis, slightly above centre
    # The camera is upright: the cabin's down direction maps to the image's down half.
    assert (rot @ np.array([0.0, 1.0, 0.0]))[1] > 0.8


@pytest.mark.parametrize("camera", CAMERA_POSITIONS)
@pytest.mark.parametrize("seat", SEATS)
def test_zones_round_trip(camera: str, seat: str) -> None:
    rng = np.random.default_rng(0)
    hidden = HIDDEN.get((camera, seat), set())
    for zone in GAZE_ZONES:
        if zone in hidden:
            with pytest.raises(ConfigError, match=zone):
                cabin.gaze_angles_toward(zone, camera, seat, rng)
            continue
        for _ in range(10):
            yaw, pitch = cabin.gaze_angles_toward(zone, camera, seat, rng)
            assert abs(yaw) <= 90 and abs(pitch) <= 60
            assert cabin.gaze_zone(camera, seat, gaze_vector(yaw, pitch)) == zone
            assert cabin.zone_of_angles(camera, seat, yaw, pitch) == zone


@pytest.mark.parametrize("camera", CAMERA_POSITIONS)
@pytest.mark.parametrize("seat", SEATS)
def test_straight_ahead_hits_the_windshield(camera: str, seat: str) -> None:
    rot, _ = cabin.camera_pose(camera, seat)
    forward_cam = rot @ np.array([0.0, 0.0, 1.0])
    assert cabin.gaze_zone(camera, seat, forward_cam) == "windshield"


def test_looking_into_the_mirror_camera_is_the_rearview_mirror_zone() -> None:
    # gaze (0, 0) looks straight into the camera, which sits just below the rear-view mirror.
    assert cabin.zone_of_angles("rearview_mirror", "driver", 0.0, 2.0) == "rearview_mirror"


def test_rays_that_hit_nothing_still_get_a_zone() -> None:
    rot, _ = cabin.camera_pose("rearview_mirror", "driver")
    up = rot @ np.array([0.0, -1.0, 0.0])  # straight at the roof
    assert cabin.gaze_zone("rearview_mirror", "driver", up) in GAZE_ZONES
    back = rot @ np.array([0.0, 0.0, -1.0])
    assert cabin.gaze_zone("rearview_mirror", "driver", back) in GAZE_ZONES


def test_eye_offset_changes_the_ray_origin() -> None:
    eye = cabin.eye_position("rearview_mirror", "driver")
    yaw, pitch = cabin.gaze_angles_toward("left_mirror", "rearview_mirror", "driver", np.random.default_rng(1))
    g = gaze_vector(yaw, pitch)
    assert cabin.gaze_zone("rearview_mirror", "driver", g, eye) == "left_mirror"


def test_bad_names_are_clear_errors() -> None:
    with pytest.raises(ConfigError, match="unknown camera"):
        cabin.camera_pose("dashboard", "driver")
    with pytest.raises(ConfigError, match="unknown seat"):
        cabin.eye_position("a_pillar", "rear")
    with pytest.raises(ConfigError, match="unknown gaze zone"):
        cabin.gaze_angles_toward("sunroof", "a_pillar", "driver", np.random.default_rng(0))
