"""Cabin geometry of a left-hand-drive car: seats, eye points, cameras and gaze zones.

One geometry serves the renderer (where the camera is, what the background shows), the planner
(which gaze angles land in which zone) and the labeller (which zone a measured gaze hits), so a
``req_gaze_zone`` and a measured zone are computed by the same rule.

Cabin frame (metres), chosen to match the OpenCV camera frame when the camera looks forward:
x towards the passenger side (right, for a left-hand-drive car), y down, z forward (driving
direction). Origin: between the two front seats, at the occupants' nominal eye height.

Zones are planar rectangles (a centre and two half-edge vectors). A gaze ray picks the zone it hits
first by priority (small targets that sit in front of large ones win: the rear-view mirror in front
of the windshield, side mirrors seen through the side windows), then by distance; a ray that hits no
zone gets the zone whose centre is nearest in angle, so every gaze has a vocabulary zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np

from synthgen.errors import ConfigError
from synthgen.geometry import gaze_angles, gaze_vector
from synthgen.vocab import CAMERA_POSITIONS, GAZE_ZONES, LEAN_TARGETS, SEATS

MAX_GAZE_YAW, MAX_GAZE_PITCH = 90.0, 60.0  # the SceneSpec limits of gaze_yaw / gaze_pitch
SEAT_X = {"driver": -0.37, "passenger": 0.37}
# Where a camera aims: a little below the mid-eye point, so the whole face sits in the image centre.
FACE_CENTRE_BELOW_EYES = 0.035


@dataclass(frozen=True)
class Zone:
    """A planar rectangle: points ``centre + a * u + b * v`` for a, b in [-1, 1]."""

    name: str
    centre: np.ndarray
    u: np.ndarray
    v: np.ndarray
    priority: int  # lower wins when a ray hits several zones

    @cached_property
    def normal(self) -> np.ndarray:
        """``u x v``, computed once: every gaze label and vergence fixation casts rays at the zones."""
        return np.cross(self.u, self.v)

    def hit(self, origin: np.ndarray, direction: np.ndarray) -> float | None:
        """Distance along the ray to the rectangle, or None when the ray misses it."""
        n = self.normal
        denom = float(direction @ n)
        if abs(denom) < 1e-12:
            return None
        t = float((self.centre - origin) @ n) / denom
        if t <= 0:
            return None
        p = origin + t * direction - self.centre
        a = float(p @ self.u) / float(self.u @ self.u)
        b = float(p @ self.v) / float(self.v @ self.v)
        return t if abs(a) <= 1.0 and abs(b) <= 1.0 else None

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        a, b = rng.uniform(-1.0, 1.0, size=2)
        return self.centre + a * self.u + b * self.v


def _v(*xs: float) -> np.ndarray:
    return np.array(xs, float)


# A phone held up at the chest and looked at (occluder ``phone_hand``): its centre relative to the
# user's mid-eye point (cabin axes, metres). The renderer draws it there; clips look at it.
PHONE_IN_HAND: tuple[float, float, float] = (0.08, 0.08, 0.24)


def _check(camera: str, seat: str) -> None:
    if camera not in CAMERA_POSITIONS:
        raise ConfigError(f"unknown camera position {camera!r}", fix=f"use one of {list(CAMERA_POSITIONS)}")
    if seat not in SEATS:
        raise ConfigError(f"unknown seat {seat!r}", fix=f"use one of {list(SEATS)}")


def seat_eye(seat: str) -> np.ndarray:
    """Nominal mid-eye point of an occupant of ``seat`` in cabin coordinates."""
    if seat not in SEATS:
        raise ConfigError(f"unknown seat {seat!r}", fix=f"use one of {list(SEATS)}")
    return _v(SEAT_X[seat], 0.0, 0.0)


# A body lean (Euro NCAP's third way of reaching a glance target, beside head and eye movement)
# carries the head towards the cabin centre, a little forward and down, as an occupant leans over
# the console towards the glovebox, the passenger footwell or the other occupant.
_LEAN = _v(1.0, 0.35, 0.3) / float(np.linalg.norm(_v(1.0, 0.35, 0.3)))
# Towards the door the head tilts out over the armrest, a little down and forward (to a side mirror
# or the side window); forward it moves over the wheel and down (to the cluster or the lap).
_LEAN_DOOR = _v(1.0, 0.25, 0.25) / float(np.linalg.norm(_v(1.0, 0.25, 0.25)))
_LEAN_FORWARD = _v(0.0, 0.45, 1.0) / float(np.linalg.norm(_v(0.0, 0.45, 1.0)))


def lean_direction(seat: str, to: str = "centre") -> np.ndarray:
    """Unit cabin-frame direction the head travels when the occupant of ``seat`` leans ``to`` the
    cabin centre, the door or forward (``vocab.LEAN_TARGETS``)."""
    inboard = -1.0 if SEAT_X[seat] > 0 else 1.0  # towards the cabin centre
    if to == "centre":
        return _LEAN * _v(inboard, 1.0, 1.0)
    if to == "door":
        return _LEAN_DOOR * _v(-inboard, 1.0, 1.0)
    if to == "forward":
        return _LEAN_FORWARD
    raise ConfigError(f"unknown lean direction {to!r}", fix=f"use one of {list(LEAN_TARGETS)}")


# The chest travels this share of the head's lean (the body pivots at the hips).
CHEST_LEAN_SHARE = 0.6


def chest_anchor(seat: str, lean: float = 0.0, to: str = "centre") -> np.ndarray:
    """The point the torso and the seat belt are placed from: the nominal mid-eye point, moved by
    the chest's share of a body lean."""
    return occupant_eye(seat, CHEST_LEAN_SHARE * lean, to)


def occupant_eye(seat: str, lean: float = 0.0, to: str = "centre") -> np.ndarray:
    """Mid-eye point (cabin frame) of an occupant of ``seat`` whose upper body leans ``lean`` metres
    ``to`` the cabin centre, the door or forward."""
    eye = seat_eye(seat)
    return eye if lean == 0 else eye + float(lean) * lean_direction(seat, to)


@lru_cache(maxsize=None)
def zones(seat: str) -> tuple[Zone, ...]:
    """The gaze zones for an occupant of ``seat`` (the lap is the occupant's own)."""
    sx = SEAT_X[seat]
    drv, psg = SEAT_X["driver"], SEAT_X["passenger"]
    other = psg if seat == "driver" else drv
    # Windshield: slanted, bottom edge at the dashboard (far, low), top edge at the roof (near, high).
    ws_bottom, ws_top = _v(0.0, 0.24, 0.95), _v(0.0, -0.30, 0.45)
    return (
        Zone("rearview_mirror", _v(0.0, -0.20, 0.62), _v(0.13, 0, 0), _v(0, 0.04, 0.005), 0),
        Zone("left_mirror", _v(-0.98, 0.10, 0.62), _v(0, 0, 0.11), _v(0, 0.07, 0), 1),
        Zone("right_mirror", _v(0.98, 0.10, 0.62), _v(0, 0, 0.11), _v(0, 0.07, 0), 1),
        Zone("instrument_cluster", _v(drv, 0.27, 0.68), _v(0.16, 0, 0), _v(0, 0.065, -0.02), 2),
        Zone("infotainment", _v(0.0, 0.33, 0.62), _v(0.12, 0, 0), _v(0, 0.08, -0.03), 2),
        Zone("lap", _v(sx, 0.45, 0.33), _v(0.20, 0, 0), _v(0, 0, 0.15), 3),
        # Euro NCAP glance targets on the passenger side: the glovebox (lower dashboard), the
        # passenger footwell (floor; from the passenger seat mostly hidden by the lap) and the other
        # front occupant's face (a vertical patch at that seat's eyes, facing across the cabin).
        Zone("glovebox", _v(psg + 0.03, 0.34, 0.60), _v(0.16, 0, 0), _v(0, 0.06, -0.02), 2),
        Zone("passenger_footwell", _v(psg + 0.03, 0.70, 0.65), _v(0.18, 0, 0), _v(0, 0, 0.15), 3),
        Zone("front_occupant", _v(other, 0.0, 0.04), _v(0, 0, 0.10), _v(0, 0.12, 0), 1),
        Zone("windshield", 0.5 * (ws_bottom + ws_top), _v(0.78, 0, 0), 0.5 * (ws_bottom - ws_top), 4),
        Zone("left_window", _v(-0.80, -0.02, 0.30), _v(0, 0, 0.35), _v(0, 0.24, 0), 4),
        Zone("right_window", _v(0.80, -0.02, 0.30), _v(0, 0, 0.35), _v(0, 0.24, 0), 4),
    )


def _zone(name: str, seat: str) -> Zone:
    for z in zones(seat):
        if z.name == name:
            return z
    raise ConfigError(f"unknown gaze zone {name!r}", fix=f"use one of {list(GAZE_ZONES)}")


# Physical camera positions in the cabin. The A-pillar camera sits on the pillar of the seat's side.
def camera_centre(camera: str, seat: str) -> np.ndarray:
    """Optical centre of ``camera`` (cabin coordinates) when it watches ``seat``."""
    _check(camera, seat)
    if camera == "rearview_mirror":
        return _v(0.0, -0.15, 0.58)
    if camera == "a_pillar":
        side = -1.0 if seat == "driver" else 1.0
        return _v(side * 0.70, -0.16, 0.52)
    return _v(SEAT_X["driver"], 0.22, 0.62)  # instrument_cluster: above the cluster, under the wheel rim


@lru_cache(maxsize=None)
def _pose(camera: str, seat: str) -> tuple[np.ndarray, np.ndarray]:
    c = camera_centre(camera, seat)
    target = seat_eye(seat) + _v(0.0, FACE_CENTRE_BELOW_EYES, 0.0)
    z = target - c
    z /= np.linalg.norm(z)
    x = np.cross(_v(0.0, 1.0, 0.0), z)  # image x: horizontal in the cabin (no camera roll)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    rot = np.stack([x, y, z])
    return rot, -rot @ c


def camera_pose(camera: str, seat: str) -> tuple[np.ndarray, np.ndarray]:
    """(R, t) with ``x_cam = R @ x_cabin + t``: the camera looks at the seat's face, upright."""
    _check(camera, seat)
    rot, t = _pose(camera, seat)
    return rot.copy(), t.copy()


def to_camera(camera: str, seat: str, points_cabin: np.ndarray) -> np.ndarray:
    """Cabin points (..., 3) -> camera frame."""
    rot, t = _pose(camera, seat)
    return np.asarray(points_cabin, float) @ rot.T + t


def to_cabin(camera: str, seat: str, points_cam: np.ndarray) -> np.ndarray:
    """Camera-frame points (..., 3) -> cabin frame."""
    rot, t = _pose(camera, seat)
    return (np.asarray(points_cam, float) - t) @ rot


def eye_position(camera: str, seat: str, lean: float = 0.0, to: str = "centre") -> np.ndarray:
    """Mid-eye point of the seat's occupant in the CAMERA frame (metres): nominal, or after a body
    lean of ``lean`` metres ``to`` the centre, the door or forward."""
    _check(camera, seat)
    return to_camera(camera, seat, occupant_eye(seat, lean, to))


def intrinsics(camera: str, seat: str, width: int, height: int, face_fraction: float = 0.42,
               lean: float = 0.0, to: str = "centre") -> np.ndarray:
    """Pinhole matrix K for a ``width`` x ``height`` image in which a 14 cm wide face at the seat
    spans ``face_fraction`` of the width: the image is the camera's view cropped and scaled around
    the occupant, as driver-monitoring pipelines crop it. With a body lean the crop follows the
    face, as a face-tracking crop does: the same focal length (the face grows or shrinks with its
    distance), the principal point moved so the leaned mid-eye point lands where the nominal one does."""
    _check(camera, seat)
    nominal = eye_position(camera, seat)
    f = face_fraction * width * float(np.linalg.norm(nominal)) / 0.14
    k = np.array([[f, 0.0, width / 2.0], [0.0, f, height / 2.0], [0.0, 0.0, 1.0]])
    if lean:
        leaned = eye_position(camera, seat, lean, to)
        k[:2, 2] += f * (nominal[:2] / nominal[2] - leaned[:2] / leaned[2])
    return k


def _zone_hit(seat: str, origin: np.ndarray, direction: np.ndarray) -> str | None:
    best: tuple[int, float, str] | None = None
    for z in zones(seat):
        t = z.hit(origin, direction)
        if t is not None and (best is None or (z.priority, t) < best[:2]):
            best = (z.priority, t, z.name)
    return None if best is None else best[2]


def lean_reaches(zone: str, seat: str) -> bool:
    """Whether leaning towards the cabin centre brings the occupant of ``seat`` nearer to ``zone``:
    true for targets inboard of the seat (console, glovebox, footwell, the other occupant)."""
    return float((_zone(zone, seat).centre[0] - seat_eye(seat)[0]) * lean_direction(seat)[0]) > 0


# How far a target must lie out to the door side (x) or below the eyes (y) for a lean that way to reach it.
_DOOR_REACH, _FORWARD_REACH = 0.05, 0.10


def lean_to_reach(zone: str, seat: str) -> str | None:
    """The lean that brings the occupant of ``seat`` nearer to ``zone``: towards the cabin centre
    for targets inboard of the seat (``lean_reaches``, as before door and forward leans existed),
    towards the door for targets out on the door side (that side's mirror and window), forward for
    targets ahead and below the eyes (the cluster, the lap); None for a target none of them brings
    nearer (no zone of this cabin: the windshield and the rear-view mirror lie inboard of both seats,
    so a centre lean reaches them, as it did before door and forward leans existed)."""
    if lean_reaches(zone, seat):
        return "centre"
    d = _zone(zone, seat).centre - seat_eye(seat)
    if float(d[0] * lean_direction(seat, "door")[0]) > _DOOR_REACH:
        return "door"
    if d[1] > _FORWARD_REACH and d[2] > 0:
        return "forward"
    return None


def gaze_zone(camera: str, seat: str, gaze_vec_cam: np.ndarray, eye_cam: np.ndarray | None = None) -> str:
    """The zone a gaze ray (camera frame) from ``eye_cam`` (default: the nominal eye point) hits;
    the zone nearest in angle when it hits none."""
    _check(camera, seat)
    rot, _ = _pose(camera, seat)
    d = rot.T @ np.asarray(gaze_vec_cam, float)
    d /= np.linalg.norm(d)
    origin = seat_eye(seat) if eye_cam is None else to_cabin(camera, seat, eye_cam)
    name = _zone_hit(seat, origin, d)
    if name is not None:
        return name
    best, best_cos = GAZE_ZONES[0], -2.0
    for z in zones(seat):
        to = z.centre - origin
        c = float(d @ to) / float(np.linalg.norm(to))
        if c > best_cos:
            best, best_cos = z.name, c
    return best


def zone_of_angles(camera: str, seat: str, yaw: float, pitch: float, lean: float = 0.0, to: str = "centre") -> str:
    """The zone hit by a camera-frame gaze (yaw, pitch) in degrees from the eye point (nominal, or
    after a body lean of ``lean`` metres ``to`` the centre, the door or forward)."""
    return gaze_zone(camera, seat, gaze_vector(yaw, pitch), eye_position(camera, seat, lean, to) if lean else None)


def gaze_angles_toward(zone: str, camera: str, seat: str, rng: np.random.Generator,
                       lean: float = 0.0, to: str = "centre") -> tuple[float, float]:
    """Camera-frame (yaw, pitch) in degrees of a gaze from the eye point (nominal, or after a body
    lean of ``lean`` metres) towards a point drawn uniformly in ``zone``. Points hidden behind a higher-priority zone (the windshield behind the
    rear-view mirror) are redrawn, so the returned gaze always lands in ``zone``; so are points whose
    angles a SceneSpec cannot hold (|yaw| > 90, |pitch| > 60: the eyes would face away from the camera)."""
    _check(camera, seat)
    target = _zone(zone, seat)
    eye = occupant_eye(seat, lean, to)
    rot, _ = _pose(camera, seat)
    for _ in range(200):
        d = target.sample(rng) - eye
        d /= np.linalg.norm(d)
        if _zone_hit(seat, eye, d) == zone:
            yaw, pitch = gaze_angles(rot @ d)
            if abs(yaw) <= MAX_GAZE_YAW and abs(pitch) <= MAX_GAZE_PITCH:
                return yaw, pitch
    raise ConfigError(
        f"no gaze from the {seat} seat towards zone {zone!r} is visible from camera {camera!r} "
        f"(within |yaw| <= {MAX_GAZE_YAW:g}, |pitch| <= {MAX_GAZE_PITCH:g})",
        where="synthgen.cabin.gaze_angles_toward",
        fix="target this zone with another camera position",
    )
