"""Angle conventions shared by the renderer, the labellers and the planner.

Camera frame (OpenCV): x right, y down, z forward (away from the camera, into the cabin).
- Gaze (yaw, pitch) in degrees -> unit vector ``(-cos p sin y, -sin p, -cos p cos y)``
  (MPIIGaze / ETH-XGaze): (0, 0) looks straight into the camera, positive yaw towards the image's
  left (the subject's right), positive pitch up.
- Head pose: R = Ry(yaw) @ Rx(-pitch) @ Rz(roll) maps head-local coordinates to the camera frame.
  Head-local frame: x towards the image right when frontal (the subject's left), y down, the face
  looking along -z. So the head's forward vector R @ (0, 0, -1) uses the same yaw/pitch convention
  as gaze, and positive roll turns the face clockwise in the image.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

FORWARD = np.array([0.0, 0.0, -1.0])


def gaze_vector(yaw: ArrayLike, pitch: ArrayLike) -> np.ndarray:
    """Unit gaze vector(s): shape (3,) for scalar angles, (..., 3) for arrays of angles."""
    y, p = np.radians(yaw), np.radians(pitch)
    return np.stack([-np.cos(p) * np.sin(y), -np.sin(p), -np.cos(p) * np.cos(y)], axis=-1)


def gaze_angles(vec: np.ndarray) -> tuple[float, float]:
    """Inverse of :func:`gaze_vector` (the vector need not be normalised)."""
    v = np.asarray(vec, float)
    v = v / np.linalg.norm(v)
    pitch = np.degrees(np.arcsin(np.clip(-v[1], -1.0, 1.0)))
    yaw = np.degrees(np.arctan2(-v[0], -v[2]))
    return float(yaw), float(pitch)


def _rx(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _ry(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _rz(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def head_rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Head-local -> camera rotation for a head pose in degrees."""
    return _ry(np.radians(yaw)) @ _rx(-np.radians(pitch)) @ _rz(np.radians(roll))


def head_angles(rot: np.ndarray) -> tuple[float, float, float]:
    """Inverse of :func:`head_rotation`: (yaw, pitch, roll) in degrees."""
    r = np.asarray(rot, float)
    b = np.arcsin(np.clip(-r[1, 2], -1.0, 1.0))
    yaw = np.arctan2(r[0, 2], r[2, 2])
    roll = np.arctan2(r[1, 0], r[1, 1])
    return float(np.degrees(yaw)), float(-np.degrees(b)), float(np.degrees(roll))


def angular_error(yaw_a: ArrayLike, pitch_a: ArrayLike, yaw_b: ArrayLike, pitch_b: ArrayLike) -> np.ndarray:
    """Angle in degrees between gaze directions, element by element (a 0-d array for scalars).
    The one implementation that curation, the reports and training metrics share."""
    a, b = gaze_vector(yaw_a, pitch_a), gaze_vector(yaw_b, pitch_b)
    return np.degrees(np.arccos(np.clip(np.sum(a * b, axis=-1), -1.0, 1.0)))


def angle_diff(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """Signed a - b in degrees, wrapped into [-180, 180)."""
    return (np.asarray(a, float) - np.asarray(b, float) + 180.0) % 360.0 - 180.0
