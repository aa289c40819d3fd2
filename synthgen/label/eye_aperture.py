"""Measured eye opening: the eye-aspect ratio (EAR) of each eye from the measured landmarks.

Why EAR: it is what a plain blink detector uses (Soukupova & Cech 2016), so ``meas_ear`` per frame
is directly comparable with the exact ``req_ear`` and turns a clip into blink events with
synthgen.dsm. The MediaPipe mesh's six eye points (the iBUG-68 eye points' mesh vertices) are used
when the mesh ran; dlib's 68 points otherwise.
"""

from __future__ import annotations

import numpy as np

from synthgen.dsm import eye_aspect_ratio
from synthgen.label.base import LABELERS, FaceContext
from synthgen.label.config import LabelParams

# Bump the leading number when this labeller's output for the same image changes.
EYE_APERTURE_VERSION = "1"

# MediaPipe mesh vertices of the iBUG-68 points 36-47 (p1..p6 of the subject's right, then left eye).
MESH_EYES_68 = (33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380)


class EyeAperture:
    name = "eye_aperture"
    model = "ear-soukupova2016"
    requires: tuple[str, ...] = ("meas_face_box",)
    provides = ("meas_ear",)
    exports: tuple[str, ...] = ()

    def __init__(self, params: LabelParams) -> None:
        pass

    def label(self, ctx: FaceContext) -> None:
        lm68 = None
        source = ""
        if "mesh_xy" in ctx.extras:
            lm68 = np.zeros((68, 2))
            lm68[36:48] = np.asarray(ctx.extras["mesh_xy"])[list(MESH_EYES_68)]
            source = "mediapipe_mesh"
        elif "lm68" in ctx.extras:
            lm68 = np.asarray(ctx.extras["lm68"], float).reshape(68, 2)
            source = "dlib68"
        ctx.meas["meas_ear_labeler"] = f"{self.model}:{source}" if source else self.model
        if lm68 is None:
            return
        ctx.meas["meas_ear"] = [float(v) for v in eye_aspect_ratio(lm68)]


@LABELERS.register("eye_aperture")
def _factory(params: LabelParams) -> EyeAperture:
    return EyeAperture(params)
