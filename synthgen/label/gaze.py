"""Geometric gaze: where the iris sits inside the eye, turned into a direction with the head pose.

No model in a wheel outputs gaze, so it is measured from geometry (every step is deterministic):
1. The mesh gives, per eye, the two corners, the lids and the iris centre (points 468 / 473), or,
   when ``mediapipe_iris`` ran before, the iris centre comes from MediaPipe's standalone iris
   network (``meas_gaze_labeler`` names which).
2. An eyeball model in head-local units (``label.gaze``): the pupil lies ``eyeball_radius`` x eye
   width from the eye's rotation centre, which sits ``corner_depth`` x eye width behind the
   corners' midpoint. Eye widths and corner positions come from the same 3D mean face the head pose
   is fitted to, so both share one scale.
3. For eye-in-head angles (yaw, pitch), rotate the pupil with the measured head rotation, project
   it with the same pinhole, and compare its offset from the projected corners' midpoint with the
   observed iris offset in pixels; a 2-parameter least-squares fit gives the angles.
4. The two eyes' directions are averaged and rotated into the camera frame; ``gaze_angles`` gives
   yaw/pitch in synthgen.geometry's convention. Eyes whose lid gap is below ``min_openness`` x
   width are skipped (the iris is hidden); with both closed the gaze is null.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import least_squares

from synthgen.geometry import gaze_angles, gaze_vector
from synthgen.label.base import LABELERS, FaceContext, installed
from synthgen.label.config import LabelParams
from synthgen.label.head_pose import mean_shape_68

# Bump the leading number when this labeller's output for the same image changes.
IRIS_GAZE_VERSION = "1+" + installed("scipy")

# MediaPipe mesh indices: (outer corner, inner corner, upper lid, lower lid) per eye.
MESH_EYES = {"right": (33, 133, 159, 145), "left": (263, 362, 386, 374)}
MESH_IRIS = (468, 473)
# iBUG-68 corners of the same eyes on the mean shape.
MODEL_EYES = {"right": (36, 39), "left": (45, 42)}


def _project(k: np.ndarray, p: np.ndarray) -> np.ndarray:
    q = k @ p
    return q[:2] / q[2]


def eye_in_head(
    observed: np.ndarray, corner_mid_model: np.ndarray, eye_width_model: float,
    rot: np.ndarray, t: np.ndarray, k: np.ndarray, radius: float, depth: float, bound: float,
) -> np.ndarray:
    """Unit gaze vector in head-local coordinates whose projected pupil offset matches ``observed``."""
    r, a = radius * eye_width_model, depth * eye_width_model
    mid_cam = rot @ corner_mid_model + t
    mid_px = _project(k, mid_cam)
    back = rot @ np.array([0.0, 0.0, a])

    def resid(ang: np.ndarray) -> np.ndarray:
        p = mid_cam + back + rot @ (r * gaze_vector(ang[0], ang[1]))
        return (_project(k, p) - mid_px) - observed

    sol = least_squares(resid, x0=np.zeros(2), bounds=([-bound, -bound], [bound, bound]), method="trf")
    return gaze_vector(sol.x[0], sol.x[1])


class IrisGaze:
    name = "iris_gaze"
    requires = ("mesh_xy", "head_rot")
    provides = ("meas_gaze_yaw", "meas_gaze_pitch", "meas_gaze_vector", "meas_gaze_zone", "meas_eye_openness")
    exports: tuple[str, ...] = ()
    model = "iris-geometric-v1"

    def __init__(self, params: LabelParams) -> None:
        self.p = params.gaze
        ms = mean_shape_68()
        self._model_eyes = {
            side: ((ms[i] + ms[j]) / 2, float(np.linalg.norm(ms[i] - ms[j])))
            for side, (i, j) in MODEL_EYES.items()
        }

    def label(self, ctx: FaceContext) -> None:
        ctx.meas["meas_gaze_labeler"] = self.model
        mesh, rot = ctx.extras.get("mesh_xy"), ctx.extras.get("head_rot")
        if mesh is None or rot is None:
            return
        t, k = ctx.extras["head_t"], ctx.extras["camera_k"]
        irises = [mesh[i] for i in MESH_IRIS]
        refined = ctx.extras.get("iris_xy")
        if refined is not None:
            ctx.meas["meas_gaze_labeler"] = f"{self.model}+mediapipe-iris"
        dirs, openness = [], []
        for side, (outer, inner, upper, lower) in MESH_EYES.items():
            mid = (mesh[outer] + mesh[inner]) / 2
            width = float(np.linalg.norm(mesh[outer] - mesh[inner]))
            if width < 1e-6:
                continue
            open_ratio = float(np.linalg.norm(mesh[upper] - mesh[lower])) / width
            openness.append(open_ratio)
            if open_ratio < self.p.min_openness:
                continue
            if refined is not None:
                if side not in refined:
                    continue
                iris = refined[side]
            else:
                iris = min(irises, key=lambda c: float(np.linalg.norm(c - mid)))
            corner_mid_model, width_model = self._model_eyes[side]
            offset = iris - mid
            if self.p.vertical_reference == "head_model":
                offset[1] = iris[1] - _project(k, rot @ corner_mid_model + t)[1]
            dirs.append(eye_in_head(offset, corner_mid_model, width_model, rot, t, k,
                                    self.p.eyeball_radius, self.p.corner_depth, self.p.max_eye_angle))
        if openness:
            ctx.meas["meas_eye_openness"] = float(np.mean(openness))
        if not dirs:
            return
        g_head = np.mean(dirs, axis=0)
        g_cam = rot @ (g_head / np.linalg.norm(g_head))
        yaw, pitch = gaze_angles(g_cam)
        ctx.meas.update(meas_gaze_yaw=yaw, meas_gaze_pitch=pitch,
                        meas_gaze_vector=[float(v) for v in g_cam])
        ctx.meas["meas_gaze_zone"] = zone_of(ctx.row, g_cam)


def zone_of(row: dict, g_cam: np.ndarray) -> str | None:
    """The cabin zone the gaze ray hits, for rows that say where the camera and the seat are."""
    camera, seat = row.get("req_camera"), row.get("req_seat")
    if not camera or not seat:
        return None
    from synthgen.cabin import gaze_zone

    return gaze_zone(camera, seat, np.asarray(g_cam, float))


@LABELERS.register("iris_gaze")
def _factory(params: LabelParams) -> IrisGaze:
    return IrisGaze(params)
