"""Geometric head pose: the 68 measured points fitted to insightface's 3D mean face with solvePnP.

The mean shape (``insightface/data/objects/meanshape_68.pkl``) is stored x right, y down, z towards
the viewer (nose tip z > 0), a left-handed frame; negating z gives synthgen's head-local frame
(x right, y down, face looking along -z), so the PnP rotation is exactly the head -> camera rotation
of ``synthgen.geometry.head_rotation`` and ``head_angles`` reads yaw/pitch/roll off it.
The pinhole: a row that names its cabin camera (``req_camera``/``req_seat``) uses that camera's
calibrated intrinsics (``synthgen.cabin.intrinsics``, as a calibrated in-cabin camera would); other
rows (real photos) get a focal length of ``focal_scale x max(width, height)``, centred.
"""

from __future__ import annotations

import pickle
from functools import lru_cache

import cv2
import numpy as np

from synthgen.geometry import head_angles
from synthgen.label.base import LABELERS, FaceContext, installed
from synthgen.label.config import LabelParams
from synthgen.models.paths import package_file

# Bump the leading number when this labeller's output for the same image changes.
HEAD_POSE_VERSION = "1+" + installed("opencv-python-headless")


@lru_cache(maxsize=1)
def mean_shape_68() -> np.ndarray:
    """68 x 3 model points in synthgen's head-local frame."""
    with open(package_file("insightface", "data/objects/meanshape_68.pkl"), "rb") as fh:
        pts = np.asarray(pickle.load(fh), float)  # noqa: S301 - file from the installed wheel
    if pts.shape != (68, 3):
        raise ValueError(f"unexpected mean shape {pts.shape}")
    return pts * np.array([1.0, 1.0, -1.0])


def camera_matrix(width: int, height: int, focal_scale: float) -> np.ndarray:
    f = focal_scale * max(width, height)
    return np.array([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1]], float)


def row_camera_matrix(row: dict, width: int, height: int, focal_scale: float, cabin: bool) -> np.ndarray:
    """The row's own calibrated intrinsics when it carries them (``req_camera_matrix``), else the
    cabin camera it names, else a generic pinhole."""
    k = row.get("req_camera_matrix")
    if cabin and k is not None and len(k) == 9:
        return np.asarray(k, float).reshape(3, 3)
    camera, seat = row.get("req_camera"), row.get("req_seat")
    if cabin and camera and seat:
        from synthgen.cabin import intrinsics

        return intrinsics(camera, seat, width, height)
    return camera_matrix(width, height, focal_scale)


def fit_head_pose(lm68: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(R, t, K) of the mean face that best projects onto ``lm68`` through camera ``k``; None when
    the fit fails."""
    model = mean_shape_68()
    img = np.asarray(lm68, float).reshape(68, 2)
    ok, rvec, tvec = cv2.solvePnP(model, img, k, None, flags=cv2.SOLVEPNP_EPNP)
    if not ok:
        return None
    ok, rvec, tvec = cv2.solvePnP(model, img, k, None, rvec, tvec, useExtrinsicGuess=True,
                                  flags=cv2.SOLVEPNP_ITERATIVE)
    if not ok or tvec[2, 0] <= 0:
        return None
    rot, _ = cv2.Rodrigues(rvec)
    return rot, tvec.ravel(), k


class HeadPose:
    name = "head_pose"
    requires = ("lm68",)
    provides = ("meas_head_yaw", "meas_head_pitch", "meas_head_roll")
    exports: tuple[str, ...] = ("head_rot",)
    model = "pnp-meanshape68"

    def __init__(self, params: LabelParams) -> None:
        self.p = params.head_pose
        mean_shape_68()

    def label(self, ctx: FaceContext) -> None:
        ctx.meas["meas_head_pose_labeler"] = self.model
        lm = ctx.extras.get("lm68")
        if lm is None:
            return
        k = row_camera_matrix(ctx.row, ctx.width, ctx.height, self.p.focal_scale, self.p.cabin_intrinsics)
        fit = fit_head_pose(lm, k)
        if fit is None:
            return
        rot, t, k = fit
        yaw, pitch, roll = head_angles(rot)
        ctx.meas.update(meas_head_yaw=yaw, meas_head_pitch=pitch, meas_head_roll=roll)
        ctx.extras.update(head_rot=rot, head_t=t, camera_k=k)


@LABELERS.register("head_pose")
def _factory(params: LabelParams) -> HeadPose:
    return HeadPose(params)
