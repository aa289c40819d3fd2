"""dlib: 68 iBUG points (shape predictor) and the 128-d ResNet identity embedding.

Both models come from the face-recognition-models wheel. The predictor runs inside the detected
box; on the astronaut photo a BlazeFace box and a dlib HOG box give points 0.3 px apart, so the
predictor does not need dlib's own detector.
"""

from __future__ import annotations

import numpy as np

from synthgen.label.base import LABELERS, FaceContext, installed
from synthgen.label.config import LabelParams
from synthgen.models.paths import package_file

# Bump the leading number when this labeller's output for the same image changes.
DLIB_VERSION = "1+" + installed("dlib-bin", "face-recognition-models")

PACKAGE = "face_recognition_models"
SHAPE_68 = "models/shape_predictor_68_face_landmarks.dat"
RESNET = "models/dlib_face_recognition_resnet_model_v1.dat"


class DlibFace:
    name = "dlib"
    requires = ("meas_face_box",)
    provides = ("meas_landmarks_68", "meas_identity_embedding")
    exports: tuple[str, ...] = ("lm68",)

    def __init__(self, params: LabelParams) -> None:
        import dlib

        self._dlib = dlib
        self._shape = dlib.shape_predictor(str(package_file(PACKAGE, SHAPE_68)))
        self._rec = dlib.face_recognition_model_v1(str(package_file(PACKAGE, RESNET)))
        self.model = f"dlib-{dlib.__version__}-shape68+resnet_v1"

    def label(self, ctx: FaceContext) -> None:
        ctx.meas["meas_landmarks_labeler"] = self.model
        ctx.meas["meas_identity_labeler"] = self.model
        box = ctx.box
        if box is None:
            return
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        img = np.ascontiguousarray(ctx.image)
        shape = self._shape(img, self._dlib.rectangle(x0, y0, x1, y1))
        pts = np.array([(p.x, p.y) for p in shape.parts()], float)
        ctx.meas["meas_landmarks_68"] = pts.astype(np.float32).ravel().tolist()
        ctx.extras["lm68"] = pts
        emb = np.asarray(self._rec.compute_face_descriptor(img, shape), np.float32)
        ctx.meas["meas_identity_embedding"] = emb.tolist()


@LABELERS.register("dlib")
def _factory(params: LabelParams) -> DlibFace:
    return DlibFace(params)
